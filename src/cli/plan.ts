/**
 * A CLI command as one HTTP request to /admin/v1 (a Plan), and the helpers every command family uses
 * to build one: parsing the rest of the line, the flags it accepts, and how its answer prints.
 */
import { buildBody, COMMON_FLAGS, type FieldSpec, type ParsedArgs, parseArgv, UsageError } from './flags.ts';
import type { Row } from './resources.ts';
import { type Column, renderRecord, renderTable } from './table.ts';

export interface Plan {
  parsed: ParsedArgs;
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  path: string;
  body?: unknown;
  render(result: unknown): string;
  /** The fields this command has flags for, to point at the flag when the hub rejects a field. */
  fields?: readonly FieldSpec[];
  /** Said once on stderr after success, so stdout stays clean for scripts. */
  notice?: string;
  /** A download: the answer's bytes go to stdout as they are (redirect them to a file). */
  raw?: boolean;
  /** Work the request started: followed with GETs until it ends; its end is what prints. */
  follow?: (
    started: unknown,
    get: (path: string) => Promise<unknown>,
    err: NodeJS.WritableStream,
  ) => Promise<unknown>;
}

export const list = (columns: Column<Row>[]) => (result: unknown) => {
  const rows = (result as { data: Row[] }).data;
  return rows.length === 0 ? '(없음 / none)\n' : renderTable(columns, rows);
};
export const record = (result: unknown) => renderRecord(result as Row);

export function flagSet(...groups: (readonly string[] | readonly FieldSpec[])[]): Set<string> {
  const set = new Set<string>(COMMON_FLAGS);
  for (const group of groups) for (const item of group) set.add(typeof item === 'string' ? item : item.flag);
  return set;
}

/** Parses the rest of the line and checks the positional arguments, named for the error message. */
export function parse(
  args: string[],
  known: Set<string>,
  positionals: string[],
  switches: ReadonlySet<string> = new Set(),
): ParsedArgs {
  const parsed = parseArgv(args, known, switches);
  if (parsed.positionals.length !== positionals.length) {
    const expected = positionals.map((p) => `<${p}>`).join(' ') || '(없음 / none)';
    const got = parsed.positionals.join(' ') || '(없음 / none)';
    throw new UsageError(`인자 / arguments: expected ${expected}, got ${got}`);
  }
  return parsed;
}

export function updateBody(specs: FieldSpec[], parsed: ParsedArgs): Record<string, unknown> {
  const body = buildBody(specs, parsed);
  if (Object.keys(body).length === 0) {
    throw new UsageError('바꿀 필드가 없습니다 / nothing to update: give field flags or --data');
  }
  return body;
}

/** `/users/usr_…/tokens`: each id percent-encoded, as typed. */
export const pathOf = (...parts: string[]) =>
  parts.map((p, i) => (i % 2 === 1 ? encodeURIComponent(p) : p)).join('/');
