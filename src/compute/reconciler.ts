import type { AuditLog } from '../audit/audit-log.ts';
import { formatKrw, parseKrwAmount } from '../billing/money.ts';
import { DAY_MS, kstDate } from '../kst.ts';
import type { Logger } from '../observability/logger.ts';
import type { Database } from '../storage/database.ts';
import { recordEvent } from './events.ts';
import type { ComputeLifecycle, Drift, StepResult } from './lifecycle.ts';
import type { Offer, OfferService } from './offers.ts';
import type { PoolService } from './pools.ts';
import type { IngestResult, UsageService } from './usage.ts';
import type { CheckOutcome, UtilisationService } from './utilisation.ts';
import type { Clock } from './values.ts';

export interface ReconcileReport {
  at: string;
  expiredOffers: string[];
  /** Grants whose period passed before they ever reached the scheduler: ended without it. */
  endedUnstarted: string[];
  ended: StepResult[];
  started: StepResult[];
  offers: Offer[];
  usage: {
    poolId: string;
    day: string;
    jobs?: number;
    charged?: number;
    chargedKrw?: string;
    error?: string;
  }[];
  checks: CheckOutcome[];
  drift: {
    poolId: string;
    repaired: Drift[];
    failed: { account: string; error: string }[];
    error?: string;
  }[];
}

export interface ReconcilerSettings {
  /** Between ticks; 0: no background ticks (POST /compute/reconcile runs one). */
  intervalMs: number;
  /** How often usage is read from the schedulers (today so far, and yesterday once it is over). */
  usageEveryMs: number;
  /** How often every scheduler pool is compared with the hub and repaired. */
  driftEveryMs: number;
}

export interface TickSteps {
  usage?: boolean;
  checks?: boolean;
  drift?: boolean;
}

/**
 * The loop that keeps schedulers in step with the hub (docs/compute.md "Lifecycle"): each tick lapses
 * expired offers, ends what is due (then starts what is due, so that consecutive grants of one account
 * hand over cleanly), retries failed steps whose time has come, offers freed GPUs to the waiting
 * lists, and — less often — reads usage, runs the monthly checks and repairs drift. One tick at a time
 * per process; a tick asked for while one runs waits for it and then runs.
 */
export class ComputeReconciler {
  private timer: NodeJS.Timeout | undefined;
  private current: Promise<ReconcileReport> | undefined;
  private lastUsage = 0;
  private lastDrift = 0;
  /** Days a monthly check found unread, per pool: read again at the next usage step. */
  private readonly unread = new Map<string, Set<string>>();

  constructor(
    private readonly db: Database,
    private readonly pools: PoolService,
    private readonly lifecycle: ComputeLifecycle,
    private readonly offers: OfferService,
    private readonly usage: UsageService,
    private readonly utilisation: UtilisationService,
    private readonly clock: Clock,
    private readonly settings: ReconcilerSettings,
    private readonly logger: Logger,
    /** Where the background ticks' changes are recorded (as `system`); a tick asked for is audited by its route. */
    private readonly auditLog?: AuditLog,
  ) {}

  start(): void {
    if (this.settings.intervalMs <= 0 || this.timer) return;
    const loop = () => {
      this.timer = setTimeout(() => {
        this.tick()
          .then((report) => this.record(report))
          .catch((error) => this.logger.error({ err: error }, 'compute reconcile failed'))
          .finally(() => {
            if (this.timer) loop();
          });
      }, this.settings.intervalMs);
      this.timer.unref();
    };
    loop();
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.current?.catch(() => {});
  }

  /** Something changed (a selection, a reclaim): run a tick soon, without waiting for it. */
  kick(): void {
    this.tick({ usage: false, checks: false, drift: false })
      .then((report) => this.record(report))
      .catch((error) => this.logger.error({ err: error }, 'compute reconcile failed'));
  }

  /** A background tick that changed something leaves one audit entry (actor `system`) saying what. */
  private async record(report: ReconcileReport): Promise<void> {
    const changed =
      report.expiredOffers.length +
      report.endedUnstarted.length +
      report.usage.filter((u) => (u.jobs ?? 0) > 0 || (u.charged ?? 0) > 0).length +
      report.ended.length +
      report.started.length +
      report.offers.length +
      report.checks.filter((c) => c.outcome !== 'incomplete').length +
      report.drift.reduce((n, d) => n + d.repaired.length, 0);
    if (changed === 0 || !this.auditLog) return;
    await this.auditLog.record({
      actorId: 'system',
      source: 'system',
      action: 'reconcile',
      entityType: 'compute',
      entityId: 'compute',
      after: report,
    });
  }

  async tick(steps: TickSteps = {}): Promise<ReconcileReport> {
    while (this.current) await this.current.catch(() => {});
    this.current = this.run(steps).finally(() => {
      this.current = undefined;
    });
    return this.current;
  }

  private async run(steps: TickSteps): Promise<ReconcileReport> {
    const now = this.clock();
    const report: ReconcileReport = {
      at: new Date(now).toISOString(),
      expiredOffers: await this.offers.expire(),
      endedUnstarted: [],
      ended: [],
      started: [],
      offers: [],
      usage: [],
      checks: [],
      drift: [],
    };
    // a grant that never reached the scheduler ends without it, with an event saying so
    for (const r of await this.db.all<{ id: string; pool_id: string }>(
      "SELECT id, pool_id FROM compute_allocations WHERE status = 'scheduled' AND ends_at <= ? ORDER BY id",
      [now],
    )) {
      const ended = await this.db.transaction(async (tx) => {
        const changed = await tx.run(
          `UPDATE compute_allocations SET status = 'ended', ending_as = 'ended', ended_at = ?, end_reason = ?,
             updated_at = ? WHERE id = ? AND status = 'scheduled'`,
          [now, '시작 전에 기간 종료 / the period ended before the grant was started', now, r.id],
        );
        if (changed === 1)
          await recordEvent(tx, { allocationId: r.id, poolId: r.pool_id, kind: 'ended_unstarted' }, now);
        return changed === 1;
      });
      if (ended) report.endedUnstarted.push(r.id);
    }
    for (const r of await this.db.all<{ id: string; pool_id: string }>(
      `SELECT id, pool_id FROM compute_allocations WHERE status IN ('provisioning', 'active') AND ends_at <= ?`,
      [now],
    )) {
      await this.db.transaction(async (tx) => {
        const changed = await tx.run(
          `UPDATE compute_allocations SET status = 'ending', ending_as = 'ended', end_reason = ?, attempts = 0,
             last_error = NULL, next_attempt_at = NULL, updated_at = ? WHERE id = ? AND status IN ('provisioning', 'active')`,
          ['기간 종료 / the period ended', now, r.id],
        );
        if (changed === 1)
          await recordEvent(tx, { allocationId: r.id, poolId: r.pool_id, kind: 'period_ended' }, now);
      });
    }
    for (const r of await this.due('ending', now)) report.ended.push(await this.lifecycle.bringDown(r));
    await this.db.run(
      `UPDATE compute_allocations SET status = 'provisioning', attempts = 0, next_attempt_at = NULL, updated_at = ?
       WHERE status = 'scheduled' AND starts_at <= ? AND ends_at > ?`,
      [now, now, now],
    );
    for (const r of await this.due('provisioning', now)) report.started.push(await this.lifecycle.bringUp(r));
    report.offers = await this.offers.offerFreed();

    if (steps.usage ?? now - this.lastUsage >= this.settings.usageEveryMs) {
      this.lastUsage = now;
      for (const pool of await this.pools.rowsByEngine(['slurm', 'kubernetes'])) {
        const again = [...(this.unread.get(pool.id) ?? [])].sort().slice(0, MAX_REREAD_DAYS);
        for (const day of [...again, yesterday(now), undefined]) {
          try {
            const r: IngestResult = await this.usage.ingest(pool.id, day === undefined ? {} : { day });
            report.usage.push({
              poolId: pool.id,
              day: r.day,
              jobs: r.jobs,
              charged: r.charged.length,
              chargedKrw: sumKrw(r.charged.map((c) => c.amountKrw)),
            });
            if (day !== undefined) this.unread.get(pool.id)?.delete(day);
          } catch (error) {
            report.usage.push({ poolId: pool.id, day: day ?? 'today', error: (error as Error).message });
          }
        }
      }
    }
    if (steps.checks ?? true) {
      report.checks = await this.utilisation.checkDue();
      await this.noteUnread(report.checks);
    }
    if (steps.drift ?? now - this.lastDrift >= this.settings.driftEveryMs) {
      this.lastDrift = now;
      for (const pool of await this.pools.rowsByEngine(['slurm', 'kubernetes'])) {
        try {
          report.drift.push({ poolId: pool.id, ...(await this.lifecycle.repair(pool.id)) });
        } catch (error) {
          report.drift.push({ poolId: pool.id, repaired: [], failed: [], error: (error as Error).message });
        }
      }
    }
    return report;
  }

  /** The days deferred checks are waiting for, so that the next usage step reads them again. */
  private async noteUnread(checks: readonly CheckOutcome[]): Promise<void> {
    for (const c of checks) {
      if (c.outcome !== 'incomplete' || !c.missingDays?.length) continue;
      const row = await this.db.get<{ pool_id: string }>(
        'SELECT pool_id FROM compute_allocations WHERE id = ?',
        [c.allocationId],
      );
      if (!row) continue;
      const days = this.unread.get(row.pool_id) ?? new Set<string>();
      for (const d of c.missingDays) days.add(d);
      this.unread.set(row.pool_id, days);
    }
  }

  /** Allocations in `status` whose next attempt is due (or that never had one). */
  private async due(status: 'provisioning' | 'ending', now: number): Promise<string[]> {
    const rows = await this.db.all<{ id: string }>(
      `SELECT id FROM compute_allocations WHERE status = ? AND (next_attempt_at IS NULL OR next_attempt_at <= ?)
       ORDER BY starts_at, id`,
      [status, now],
    );
    return rows.map((r) => r.id);
  }
}

/** The total of KRW texts (`1234.5`), exact. */
function sumKrw(amounts: readonly string[]): string {
  return formatKrw(amounts.reduce((sum, a) => sum + parseKrwAmount(a), 0n));
}

/** Bounds one usage step's re-reads of deferred days per pool (a scheduler down for weeks). */
const MAX_REREAD_DAYS = 31;

/** Yesterday's KST day, `2026-11-29`. */
function yesterday(now: number): string {
  return kstDate(now - DAY_MS);
}
