import { z } from 'zod';
import type { AuditTrail } from '../audit/audit-log.ts';
import { ValidationError } from '../errors.ts';
import { DAY_MS, dayIndex, dayStartMs, dayText, kstMonth, monthDays, previousMonth } from '../kst.ts';
import type { Database } from '../storage/database.ts';
import { parseInput } from '../validation.ts';
import { ALLOCATION_COLUMNS, type AllocationService, toAllocationRow } from './allocations.ts';
import type { CallService } from './calls.ts';
import { notifyOrganization, recordEvent } from './events.ts';
import { basisPoints, gpuHoursText } from './units.ts';
import type { Clock } from './values.ts';

const checkInput = z.strictObject({
  /** The KST month to check; default: the month before this one. */
  month: z
    .string()
    .regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'expected a month, YYYY-MM (KST)')
    .optional(),
});

export interface CheckOutcome {
  allocationId: string;
  organizationId: string;
  month: string;
  grantedGpuHours: string;
  usedGpuHours: string;
  /** Where the scheduler measured the GPUs' utilisation for every day of the month: GPU-hours busy. */
  busyGpuHours?: string;
  utilisationPercent: number;
  thresholdPercent: number;
  /**
   * What was compared with the threshold: `gpu_utilisation` (busy ÷ granted, DCGM on Kubernetes) or
   * `gpu_hours_held` (GPU-hours its jobs held ÷ granted: Slurm's sacct, manual reports).
   */
  basis?: 'gpu_utilisation' | 'gpu_hours_held';
  outcome: 'ok' | 'warning' | 'reclaimed' | 'incomplete';
  /** `incomplete`: the days of the month whose usage was not read up to their end (read them again). */
  missingDays?: string[];
  reason?: string;
}

/**
 * The monthly utilisation check (docs/compute.md "Usage and utilisation"): for each allocation of the
 * call that holds GPUs, the GPU-hours used in the month against those granted in it (its GPUs × the
 * hours of the month it was granted). Below the call's threshold the organisation is warned; after as
 * many warnings as the call's reclaim policy allows in a row, the next month below reclaims the GPUs.
 * A month at or above the threshold clears the warnings. Each allocation is checked once per month.
 */
export class UtilisationService {
  constructor(
    private readonly db: Database,
    private readonly calls: CallService,
    private readonly allocations: AllocationService,
    private readonly clock: Clock,
  ) {}

  async check(callId: string, input: unknown, trail?: AuditTrail): Promise<CheckOutcome[]> {
    const v = parseInput(checkInput, input);
    const now = this.clock();
    const month = v.month ?? previousMonth(kstMonth(now));
    const { first, end } = monthDays(month);
    const monthStart = dayStartMs(first);
    const monthEnd = dayStartMs(end);
    if (now < monthEnd) throw ValidationError.of('month', `${month} has not ended yet (KST)`);
    const call = await this.calls.terms(callId);
    const candidates = (
      await this.db.all(
        `SELECT ${ALLOCATION_COLUMNS} FROM compute_allocations l WHERE l.call_id = ? AND l.status = 'active'
           AND l.starts_at < ? AND l.ends_at > ?
           AND NOT EXISTS (SELECT 1 FROM compute_checks c WHERE c.allocation_id = l.id AND c.month = ?) ORDER BY l.id`,
        [callId, monthEnd, monthStart, month],
      )
    ).map(toAllocationRow);
    const out: CheckOutcome[] = [];
    const reclaimed: string[] = [];
    const byHand = new Set(
      (await this.db.all<{ id: string }>("SELECT id FROM compute_pools WHERE provisioner = 'manual'")).map(
        (r) => r.id,
      ),
    );
    for (const a of candidates) {
      const from = Math.max(a.startsAt, monthStart);
      const to = Math.min(a.endsAt, monthEnd);
      // a scheduler read that failed, or one made before a day was over, must not read as "0 used"
      if (!byHand.has(a.poolId)) {
        const missing = await this.unreadDays(a.id, from, to);
        if (missing.length > 0) {
          out.push(await this.defer(a, month, missing, call.thresholdBp, now));
          continue;
        }
      }
      const outcome = await this.db.transaction(async (tx) => {
        const granted = BigInt(a.gpus) * BigInt(Math.max(0, Math.round((to - from) / 1000)));
        const used = await tx.get<{ s: string | null; b: string | null; measured: number | string }>(
          `SELECT CAST(SUM(gpu_seconds) AS TEXT) AS s, CAST(SUM(busy_gpu_seconds) AS TEXT) AS b,
             COUNT(busy_gpu_seconds) AS measured
           FROM compute_usage_daily WHERE allocation_id = ? AND day >= ? AND day < ?`,
          [a.id, dayText(first), dayText(end)],
        );
        const usedSeconds = BigInt(used?.s ?? '0');
        // the GPUs' own utilisation decides where it was measured on every day held in the month
        const heldDays = dayIndex(to - 1) - dayIndex(from) + 1;
        const busySeconds = Number(used?.measured ?? 0) === heldDays ? BigInt(used?.b ?? '0') : null;
        const bp = basisPoints(busySeconds ?? usedSeconds, granted);
        const warnings = Number(
          (
            await tx.get<{ warnings: number }>('SELECT warnings FROM compute_allocations WHERE id = ?', [
              a.id,
            ])
          )?.warnings ?? 0,
        );
        const result: CheckOutcome['outcome'] =
          bp >= call.thresholdBp
            ? 'ok'
            : warnings < call.reclaimPolicy.warningsBeforeReclaim
              ? 'warning'
              : 'reclaimed';
        const inserted = await tx.all(
          `INSERT INTO compute_checks (allocation_id, month, granted_gpu_seconds, used_gpu_seconds, utilisation_bp, outcome,
             created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (allocation_id, month) DO NOTHING RETURNING allocation_id`,
          [a.id, month, granted, usedSeconds, bp, result, now],
        );
        // another replica checked it first
        if (inserted.length === 0) return null;
        const shown: CheckOutcome = {
          allocationId: a.id,
          organizationId: a.organizationId,
          month,
          grantedGpuHours: gpuHoursText(granted),
          usedGpuHours: gpuHoursText(usedSeconds),
          ...(busySeconds !== null && { busyGpuHours: gpuHoursText(busySeconds) }),
          utilisationPercent: bp / 100,
          thresholdPercent: call.thresholdBp / 100,
          basis: busySeconds === null ? 'gpu_hours_held' : 'gpu_utilisation',
          outcome: result,
        };
        if (result === 'ok') {
          await tx.run('UPDATE compute_allocations SET warnings = 0, updated_at = ? WHERE id = ?', [
            now,
            a.id,
          ]);
        } else if (result === 'warning') {
          await tx.run(
            'UPDATE compute_allocations SET warnings = warnings + 1, updated_at = ? WHERE id = ?',
            [now, a.id],
          );
          await notifyOrganization(
            tx,
            a.organizationId,
            'compute.utilisation_warning',
            `compute:${a.id}:${month}:warning`,
            shown,
            now,
          );
        } else {
          await this.allocations.reclaimIn(
            tx,
            a.id,
            `${month} 사용률 ${bp / 100}% < 기준 ${call.thresholdBp / 100}% (경고 ${warnings}회 후 회수) / utilisation ${bp / 100}% below the call's ${call.thresholdBp / 100}% after ${warnings} warning(s): reclaimed`,
          );
          await notifyOrganization(
            tx,
            a.organizationId,
            'compute.reclaimed',
            `compute:${a.id}:${month}:reclaimed`,
            shown,
            now,
          );
          reclaimed.push(a.id);
        }
        await recordEvent(
          tx,
          { allocationId: a.id, poolId: a.poolId, kind: `check_${result}`, detail: shown },
          now,
        );
        if (trail) await trail(tx, { entityId: a.id, after: shown });
        return shown;
      });
      if (outcome) out.push(outcome);
    }
    for (const id of reclaimed) this.allocations.onChanged(id);
    return out;
  }

  /** The KST days in [from, to) with no scheduler read that covered the whole day. */
  private async unreadDays(allocationId: string, from: number, to: number): Promise<string[]> {
    const first = dayIndex(from);
    const last = dayIndex(to - 1);
    const rows = await this.db.all<{ day: string; read_until: number | string | null }>(
      'SELECT day, read_until FROM compute_usage_daily WHERE allocation_id = ? AND day >= ? AND day <= ?',
      [allocationId, dayText(first), dayText(last)],
    );
    const readUntil = new Map(rows.map((r) => [r.day, r.read_until === null ? null : Number(r.read_until)]));
    const missing: string[] = [];
    for (let d = first; d <= last; d++) {
      const until = readUntil.get(dayText(d));
      if (until === undefined || until === null || until < dayStartMs(d) + DAY_MS) missing.push(dayText(d));
    }
    return missing;
  }

  /**
   * A month whose usage is incomplete is not decided: no warning, no reclaim, no check row (a later
   * check decides once the days are read). The deferral is an allocation event, recorded once for each
   * set of missing days so that a loop checking every tick does not repeat it.
   */
  private async defer(
    a: { id: string; organizationId: string; poolId: string },
    month: string,
    missingDays: string[],
    thresholdBp: number,
    now: number,
  ): Promise<CheckOutcome> {
    const reason = `${month} 사용량이 완전하지 않아 판정을 미룹니다 (${missingDays.length}일 미수집) / usage of ${month} is incomplete (${missingDays.length} day(s) not read to their end): the check waits for them`;
    const shown: CheckOutcome = {
      allocationId: a.id,
      organizationId: a.organizationId,
      month,
      grantedGpuHours: '0',
      usedGpuHours: '0',
      utilisationPercent: 0,
      thresholdPercent: thresholdBp / 100,
      outcome: 'incomplete',
      missingDays,
      reason,
    };
    const last = await this.db.get<{ detail: string }>(
      `SELECT detail FROM compute_events WHERE allocation_id = ? AND kind = 'check_deferred'
       ORDER BY created_at DESC, id DESC LIMIT 1`,
      [a.id],
    );
    const before = last ? (JSON.parse(last.detail) as CheckOutcome) : undefined;
    if (before?.month !== month || before.missingDays?.join() !== missingDays.join())
      await recordEvent(
        this.db,
        { allocationId: a.id, poolId: a.poolId, kind: 'check_deferred', detail: shown },
        now,
      );
    return shown;
  }

  /** Every call's check of the month before this one that is not done yet (the reconciler's step). */
  async checkDue(): Promise<CheckOutcome[]> {
    const rows = await this.db.all<{ call_id: string }>(
      "SELECT DISTINCT call_id FROM compute_allocations WHERE status = 'active' ORDER BY call_id",
    );
    const out: CheckOutcome[] = [];
    for (const r of rows) out.push(...(await this.check(r.call_id, {})));
    return out;
  }
}
