import { dayIndex, dayStartMs } from '../kst.ts';
import type { SqlExecutor, SqlValue } from '../storage/database.ts';
import type { Commitment } from './ranking.ts';

/**
 * What holds GPUs: allocations offered, scheduled, live or ending, until their end. Read by whoever
 * changes a commitment with the call and its pools locked (compute/selection.ts), so the sums they
 * check cannot change under them.
 */
export const HOLDING = ['offered', 'scheduled', 'provisioning', 'active', 'ending'] as const;
export const HOLDING_SQL = HOLDING.map((s) => `'${s}'`).join(', ');

/**
 * The commitments touching [fromMs, toMs) on these pools, and of this call on any pool, as selection
 * counts them (days, GPUs, the call and track they belong to). `exceptAllocation`: an allocation being
 * extended counts as its new self, not twice.
 */
export async function commitments(
  tx: SqlExecutor,
  poolIds: readonly string[],
  callId: string,
  fromMs: number,
  toMs: number,
  exceptAllocation?: string,
): Promise<Commitment[]> {
  const params: SqlValue[] = [...poolIds, callId, toMs, fromMs];
  const rows = await tx.all<{
    organization_id: string;
    pool_id: string;
    call_id: string;
    track_id: string;
    gpus: number;
    starts_at: number | string;
    ends_at: number | string;
  }>(
    `SELECT l.organization_id, l.pool_id, l.call_id, a.track_id, l.gpus, l.starts_at, l.ends_at
     FROM compute_allocations l JOIN compute_applications a ON a.id = l.application_id
     WHERE (l.pool_id IN (${poolIds.map(() => '?').join(', ') || "''"}) OR l.call_id = ?)
       AND l.status IN (${HOLDING_SQL}) AND l.starts_at < ? AND l.ends_at > ?
       ${exceptAllocation === undefined ? '' : 'AND l.id <> ?'}`,
    exceptAllocation === undefined ? params : [...params, exceptAllocation],
  );
  return rows.map((r) => ({
    organizationId: r.organization_id,
    poolId: r.pool_id,
    callId: r.call_id,
    trackId: r.track_id,
    gpus: Number(r.gpus),
    startDay: dayIndex(Number(r.starts_at)),
    endDay: dayIndex(Number(r.ends_at) - 1) + 1,
  }));
}

/** The most GPUs held at once from `fromMs` on, by allocations matching `where` (a pool's, a call's). */
export async function peakHeld(
  tx: SqlExecutor,
  where: 'pool_id' | 'call_id',
  id: string,
  fromMs: number,
): Promise<number> {
  const rows = await tx.all<{ gpus: number; starts_at: number | string; ends_at: number | string }>(
    `SELECT gpus, starts_at, ends_at FROM compute_allocations WHERE ${where} = ? AND status IN (${HOLDING_SQL})
       AND ends_at > ?`,
    [id, fromMs],
  );
  const events: [number, number][] = rows.flatMap((r) => [
    [Math.max(Number(r.starts_at), fromMs), Number(r.gpus)] as [number, number],
    [Number(r.ends_at), -Number(r.gpus)] as [number, number],
  ]);
  // at one instant, ends before starts: back-to-back grants do not add up
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let held = 0;
  let peak = 0;
  for (const [, d] of events) {
    held += d;
    peak = Math.max(peak, held);
  }
  return peak;
}

/** GPUs held and free on each KST day of [fromDay, endDay) of a pool with `gpuCount` GPUs. */
export async function dailyAvailability(
  tx: SqlExecutor,
  poolId: string,
  gpuCount: number,
  fromDay: number,
  endDay: number,
): Promise<{ day: number; held: number; free: number }[]> {
  const held = new Int32Array(Math.max(0, endDay - fromDay));
  const rows = await tx.all<{ gpus: number; starts_at: number | string; ends_at: number | string }>(
    `SELECT gpus, starts_at, ends_at FROM compute_allocations WHERE pool_id = ? AND status IN (${HOLDING_SQL})
       AND starts_at < ? AND ends_at > ?`,
    [poolId, dayStartMs(endDay), dayStartMs(fromDay)],
  );
  for (const r of rows) {
    const a = Math.max(dayIndex(Number(r.starts_at)), fromDay) - fromDay;
    const b = Math.min(dayIndex(Number(r.ends_at) - 1) + 1, endDay) - fromDay;
    for (let i = a; i < b; i++) held[i]! += Number(r.gpus);
  }
  return Array.from(held, (h, i) => ({ day: fromDay + i, held: h, free: gpuCount - h }));
}
