/**
 * What makes a run reproducible, stored with it: the suite (name, kind, format, hash), the product,
 * the prompt template and few-shot, the parameters, the extraction or judge, the seed, and the hub's
 * version. Two runs with the same manifest ask the same prompts the same way; a rerun of an
 * unfinished run with the same manifest resumes it.
 */
import { readFileSync } from 'node:fs';
import type { ExtractionSettings } from '../scoring/extract.ts';
import type { JudgeSettings } from '../scoring/judge.ts';
import { canonicalJson, sha256Hex } from '../suites/canonical-json.ts';
import type { SuiteKind } from '../suites/items.ts';
import type { PromptSpec } from '../suites/prompts.ts';
import type { LoadedSuite } from '../suites/suite-load.ts';
import type { CallParameters } from '../suites/suite-spec.ts';

export interface RunManifest {
  suite: {
    name: string;
    description: string | null;
    kind: SuiteKind;
    format: string;
    hash: string;
    itemCount: number;
  };
  model: string;
  prompt: PromptSpec;
  parameters: CallParameters;
  extraction: ExtractionSettings | null;
  judge: (JudgeSettings & { parameters: CallParameters }) | null;
  seed: number;
  hubVersion: string;
}

/** The hub's version, from its package.json. */
export const HUB_VERSION: string = (
  JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

export function buildManifest(suite: LoadedSuite, model: string): RunManifest {
  return {
    suite: {
      name: suite.name,
      description: suite.description,
      kind: suite.kind,
      format: suite.format,
      hash: suite.hash,
      itemCount: suite.prepared.length,
    },
    model,
    prompt: suite.prompt,
    parameters: suite.parameters,
    extraction: suite.extraction,
    judge: suite.judge,
    seed: suite.seed,
    hubVersion: HUB_VERSION,
  };
}

export function manifestHash(manifest: RunManifest): string {
  return sha256Hex(canonicalJson(manifest));
}
