/**
 * Uncertainty of a score. The standard error of a mean is s/√n with the sample standard deviation
 * (n − 1 in its denominator; lm-evaluation-harness does the same); for accuracy that is
 * √(p(1 − p)/(n − 1)). Undefined (null) below two values.
 */
import { seededRandom } from '../seeded-random.ts';

export function mean(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

export function standardError(values: readonly number[]): number | null {
  const n = values.length;
  if (n < 2) return null;
  const m = mean(values)!;
  let squares = 0;
  for (const v of values) squares += (v - m) * (v - m);
  return Math.sqrt(squares / (n - 1)) / Math.sqrt(n);
}

/** z of a two-sided 95% normal interval. */
export const Z95 = 1.959963984540054;

/** mean ± 1.96·SE, kept within the metric's range. */
export function normalInterval(m: number, se: number, range: { min: number; max: number }): [number, number] {
  return [Math.max(range.min, m - Z95 * se), Math.min(range.max, m + Z95 * se)];
}

/**
 * A 95% percentile bootstrap interval of the mean: `resamples` resamples with replacement drawn by a
 * generator seeded with `seed`, so the same values and seed always give the same interval.
 */
export function bootstrapInterval(
  values: readonly number[],
  seed: number,
  resamples = 1000,
): [number, number] | null {
  const n = values.length;
  if (n < 2) return null;
  const random = seededRandom(seed);
  const means = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += values[Math.floor(random() * n)]!;
    means[r] = sum / n;
  }
  means.sort();
  return [means[Math.floor(0.025 * resamples)]!, means[Math.ceil(0.975 * resamples) - 1]!];
}
