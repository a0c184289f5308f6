/** `--a=1 --flag` → `{ a: '1', flag: 'true' }`; `--help` prints `help` and exits; an unknown option throws. */
export function rawOptions(argv: readonly string[], help: string): Record<string, string | undefined>;
/** `raw[key]` as a positive number, `fallback` when absent; anything else throws, naming the option. */
export function positiveOption(
  raw: Record<string, string | undefined>,
  key: string,
  fallback: number,
): number;
export function log(msg: string): void;
/** NaN for no values. */
export function median(xs: readonly number[]): number;
