/**
 * Units of compute: GPUs, whole servers and teraflops; GPU-seconds and their cost. Pure functions, so
 * the rounding rules are in one place and tested (units.test.ts).
 */

/** What an application asks in: GPUs of the pool's model, whole servers of it, or teraflops. */
export type ComputeUnit = 'gpu' | 'server' | 'tf';

/**
 * Whole GPUs for a request. Teraflops are **rounded up** to whole GPUs (⌈TF ÷ TF per GPU⌉): a grant
 * delivers at least the teraflops asked, never less — 160 TF on a 312-TF A100 is one GPU (312 TF),
 * 320 TF is two (624 TF). A server is `gpusPerServer` GPUs.
 */
export function gpusFor(
  unit: ComputeUnit,
  quantity: number,
  pool: { tfPerGpu: number; gpusPerServer: number },
): number {
  if (unit === 'gpu') return quantity;
  if (unit === 'server') return quantity * pool.gpusPerServer;
  return Math.ceil(quantity / pool.tfPerGpu);
}

const SECONDS_PER_HOUR = 3600n;

/**
 * The cost of GPU-seconds at a price per GPU-hour (µ₩): seconds × price ÷ 3600, rounded half up to the
 * µ₩. Charged on an allocation-day's total, so the rounding happens once per allocation and day.
 */
export function gpuCost(gpuSeconds: bigint, microKrwPerGpuHour: bigint): bigint {
  return (gpuSeconds * microKrwPerGpuHour + SECONDS_PER_HOUR / 2n) / SECONDS_PER_HOUR;
}

/** GPU-seconds as GPU-hours, exact (`1.5`, `0.000278` rounded to six decimals, half up). */
export function gpuHoursText(gpuSeconds: number | bigint): string {
  const micro = (BigInt(gpuSeconds) * 1_000_000n + SECONDS_PER_HOUR / 2n) / SECONDS_PER_HOUR;
  const whole = micro / 1_000_000n;
  const fraction = (micro % 1_000_000n).toString().padStart(6, '0').replace(/0+$/, '');
  return fraction ? `${whole}.${fraction}` : `${whole}`;
}

/** Basis points of a ratio, rounded down (a utilisation of 29.999 % is below a 30 % line). */
export function basisPoints(part: bigint, whole: bigint): number {
  if (whole <= 0n) return 0;
  return Number((part * 10_000n) / whole);
}
