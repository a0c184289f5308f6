import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';

// Required at the first YAML text, not imported at the top: the hub's start bundle hoists a bundled
// module's package imports to its own top, so every hub loaded `yaml` (≈ 1 MB of heap, 73 modules)
// for the evaluation suites and the CLI that read it.
const requirePackage = createRequire(import.meta.url);
let yaml: typeof Yaml | undefined;

/** YAML (JSON is YAML too) to a value, as `yaml`'s `parse`. */
export function parseYaml(text: string): unknown {
  yaml ??= requirePackage('yaml') as typeof Yaml;
  return yaml.parse(text);
}
