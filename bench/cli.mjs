// What both benchmarks' command lines share: `--name=value` options, progress lines on stderr, medians.

/**
 * `--a=1 --flag` → `{ a: '1', flag: 'true' }`; `--help` prints `help` and exits; an option `help`
 * does not name, or anything else, throws.
 */
export function rawOptions(argv, help) {
  const known = new Set([...help.matchAll(/--([a-z][a-z0-9-]*)/g)].map((m) => m[1]));
  const raw = {};
  for (const a of argv) {
    if (a === '--help' || a === '-h') {
      process.stdout.write(help);
      process.exit(0);
    }
    const m = /^--([^=]+)(?:=(.*))?$/.exec(a);
    if (!m || !known.has(m[1])) throw new Error(`unexpected argument ${a}\n${help}`);
    raw[m[1]] = m[2] ?? 'true';
  }
  return raw;
}

/** `raw[key]` as a positive number, `fallback` when absent; anything else is an error naming the option. */
export function positiveOption(raw, key, fallback) {
  if (raw[key] === undefined) return fallback;
  const v = Number(raw[key]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${key} must be a positive number, not ${raw[key]}`);
  return v;
}

export function log(msg) {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

/** NaN for no values. */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return Number.NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
