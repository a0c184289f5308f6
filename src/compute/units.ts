import { DAY_MS } from '../billing/programmes.ts';

/**
 * Units of compute: GPUs, whole servers and teraflops; KST days; GPU-seconds and their cost. Pure
 * functions, so the rounding rules are in one place and tested (units.test.ts).
 */

const KST_OFFSET_MS = 9 * 3600_000;

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

/** The KST day number of an instant: days since 1970-01-01 in Seoul. */
export function dayIndex(ms: number): number {
  return Math.floor((ms + KST_OFFSET_MS) / DAY_MS);
}

/** Midnight in Seoul of a day number. */
export function dayStartMs(index: number): number {
  return index * DAY_MS - KST_OFFSET_MS;
}

/** `2026-11-30` of a day number. */
export function dayText(index: number): string {
  return new Date(index * DAY_MS).toISOString().slice(0, 10);
}

/** The day number of `2026-11-30` (KST). */
export function dayOfText(text: string): number {
  return Math.floor(Date.parse(`${text}T00:00:00Z`) / DAY_MS);
}

/** `2026-11` of a KST day text. */
export const monthOfDay = (day: string): string => day.slice(0, 7);

/** The first and the last-plus-one day numbers of a KST month `2026-11`. */
export function monthDays(month: string): { first: number; end: number } {
  const [y, m] = month.split('-').map(Number) as [number, number];
  const first = Math.floor(Date.UTC(y, m - 1, 1) / DAY_MS);
  const end = Math.floor(Date.UTC(m === 12 ? y + 1 : y, m === 12 ? 0 : m, 1) / DAY_MS);
  return { first, end };
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
