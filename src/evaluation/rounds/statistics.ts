/**
 * The little statistics a round needs: a mean with its standard error, and Student's t quantile for
 * a panel's interval (a panel of five experts is far from the normal approximation: t₀.₉₇₅,₄ = 2.776,
 * not 1.96).
 */

export interface Estimate {
  value: number;
  /** Standard error; 0 when there is nothing to estimate it from (one panel member). */
  stderr: number;
  lower: number;
  upper: number;
}

export const Z_95 = 1.959963984540054;

/** ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9): 15 significant digits, plenty for a quantile. */
function logGamma(x: number): number {
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const y = x - 1;
  let a = c[0]!;
  const t = y + 7.5;
  for (let i = 1; i < 9; i++) a += c[i]! / (y + i);
  return 0.5 * Math.log(2 * Math.PI) + (y + 0.5) * Math.log(t) - t + Math.log(a);
}

/** The continued fraction of the incomplete beta function (modified Lentz). */
function betaFraction(a: number, b: number, x: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 300; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-15) break;
  }
  return h;
}

/** The regularised incomplete beta function I_x(a, b). */
function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  if (x < (a + 1) / (a + b + 2)) return (front * betaFraction(a, b, x)) / a;
  return 1 - (front * betaFraction(b, a, 1 - x)) / b;
}

/** P(T ≤ t) for Student's t with `df` degrees of freedom. */
export function studentCdf(t: number, df: number): number {
  const tail = 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

/** The p-quantile of Student's t (p > 0.5), by bisection: exact enough for an interval's width. */
export function studentQuantile(p: number, df: number): number {
  if (!(p > 0.5 && p < 1)) throw new RangeError('p must be in (0.5, 1)');
  if (!(df > 0)) throw new RangeError('df must be > 0');
  let lo = 0;
  let hi = 1;
  while (studentCdf(hi, df) < p) hi *= 2;
  for (let i = 0; i < 100; i++) {
    const mid = (lo + hi) / 2;
    if (studentCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** The mean of a sample with its standard error and t interval; one value: no spread to measure. */
export function meanEstimate(values: readonly number[], confidence = 0.95): Estimate {
  const n = values.length;
  if (n === 0) throw new RangeError('no values');
  const mean = values.reduce((s, v) => s + v, 0) / n;
  if (n === 1) return { value: mean, stderr: 0, lower: mean, upper: mean };
  const variance = values.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1);
  const stderr = Math.sqrt(variance / n);
  const half = studentQuantile(1 - (1 - confidence) / 2, n - 1) * stderr;
  return { value: mean, stderr, lower: mean - half, upper: mean + half };
}

/** A normal interval around a value with a standard error. */
export function normalEstimate(value: number, stderr: number): Estimate {
  return { value, stderr, lower: value - Z_95 * stderr, upper: value + Z_95 * stderr };
}

/** Whether two closed intervals share a point. */
export const overlaps = (x: { lower: number; upper: number }, y: { lower: number; upper: number }) =>
  x.lower <= y.upper && y.lower <= x.upper;
