/**
 * Command-line flags for the operator CLI. Each API field has a kebab-case flag derived from its
 * camelCase name (`priceInputPer1M` ↔ `--price-input-per-1m`), so the CLI never drifts from the API
 * by hand-written spellings; `--data '<json>'` carries anything the flags do not.
 */

/** A bad command line: printed with a pointer to the help, exit 1. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** How a flag's text becomes a JSON value: as is, a number, or a comma-separated list. */
export type FieldKind = 'string' | 'number' | 'list' | 'boolean';

export interface FieldSpec {
  field: string;
  flag: string;
  kind: FieldKind;
}

export function toFlag(field: string): string {
  return field.replace(/([a-z])([A-Z0-9])/g, '$1-$2').toLowerCase();
}

/** `'name parameters:number purposes:list'` → specs; compact enough to read a resource at a glance. */
export function fieldSpecs(spec: string): FieldSpec[] {
  return spec
    .trim()
    .split(/\s+/)
    .map((item) => {
      const [field, kind = 'string'] = item.split(':') as [string, FieldKind | undefined];
      return { field, flag: toFlag(field), kind };
    });
}

/** Flags every admin command takes (`--help` is answered before any parsing). */
export const COMMON_FLAGS = ['url', 'token', 'json'] as const;

export interface ParsedArgs {
  positionals: string[];
  /** flag name (without `--`) → its text, the last one winning. */
  values: Map<string, string>;
  json: boolean;
}

/** `--flag value` or `--flag=value`; `--json` and the `switches` stand alone (a switch reads as `true`). */
export function parseArgv(
  args: readonly string[],
  known: ReadonlySet<string>,
  switches: ReadonlySet<string> = new Set(),
): ParsedArgs {
  const parsed: ParsedArgs = { positionals: [], values: new Map(), json: false };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('--')) {
      parsed.positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    if (!known.has(name)) {
      const options = [...known].map((f) => `--${f}`).join(' ');
      throw new UsageError(`알 수 없는 옵션 / unknown flag --${name} (가능 / known: ${options})`);
    }
    if (name === 'json' || switches.has(name)) {
      if (eq !== -1) throw new UsageError(`--${name} takes no value`);
      if (name === 'json') parsed.json = true;
      else parsed.values.set(name, 'true');
      continue;
    }
    let value: string | undefined;
    if (eq !== -1) value = arg.slice(eq + 1);
    else if (i + 1 < args.length && !args[i + 1]!.startsWith('--')) value = args[++i];
    if (value === undefined) throw new UsageError(`--${name} 값이 필요합니다 / --${name} needs a value`);
    parsed.values.set(name, value);
  }
  return parsed;
}

function convert(spec: FieldSpec, text: string): unknown {
  if (spec.kind === 'list') {
    return text
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  }
  // Anything that is not plainly a number goes as text, so the hub, which owns validation, names
  // the field and says what it expected.
  if (spec.kind === 'number' && /^-?\d+(\.\d+)?$/.test(text.trim())) return Number(text);
  if (spec.kind === 'boolean' && (text === 'true' || text === 'false')) return text === 'true';
  return text;
}

/** The JSON body: `--data` first, then each field flag on top of it. */
export function buildBody(specs: readonly FieldSpec[], parsed: ParsedArgs): Record<string, unknown> {
  let body: Record<string, unknown> = {};
  const data = parsed.values.get('data');
  if (data !== undefined) {
    let value: unknown;
    try {
      value = JSON.parse(data);
    } catch (error) {
      throw new UsageError(`--data: JSON이 올바르지 않습니다 / not valid JSON (${(error as Error).message})`);
    }
    if (!value || typeof value !== 'object' || Array.isArray(value)) {
      throw new UsageError('--data: JSON 객체여야 합니다 / must be a JSON object');
    }
    body = { ...(value as Record<string, unknown>) };
  }
  for (const spec of specs) {
    const text = parsed.values.get(spec.flag);
    if (text !== undefined) body[spec.field] = convert(spec, text);
  }
  return body;
}

/** `?organizationId=…&groupBy=day` from the flags given, in spec order. */
export function buildQuery(specs: readonly FieldSpec[], parsed: ParsedArgs): string {
  const query = new URLSearchParams();
  for (const spec of specs) {
    const text = parsed.values.get(spec.flag);
    if (text !== undefined) query.set(spec.field, text);
  }
  const text = query.toString();
  return text ? `?${text}` : '';
}
