import type { Logger } from '../observability/logger.ts';
import type { Database, SqlExecutor } from '../storage/database.ts';
import { ALLOCATION_COLUMNS, type AllocationRow, toAllocationRow } from './allocations.ts';
import { recordEvent } from './events.ts';
import type { PoolRow, PoolService } from './pools.ts';
import {
  type AccountState,
  type AccountTarget,
  differences,
  type Provisioner,
  SchedulerError,
} from './provisioners/provisioner.ts';
import type { ProvisionerRegistry } from './provisioners/registry.ts';
import type { Clock } from './values.ts';

/** Retry a failed step after 30 s, doubling per attempt, at most every 30 minutes. */
export function retryDelayMs(attempts: number): number {
  return Math.min(30_000 * 2 ** Math.max(0, attempts - 1), 30 * 60_000);
}

export interface StepResult {
  allocationId: string;
  ok: boolean;
  status: string;
  error?: string;
}

/** What drift detection found for one account on a pool. */
export interface Drift {
  account: string;
  organizationId: string;
  allocationId: string | null;
  desired: { gpus: number; gpuMinutes: number | null; users: string[] };
  observed: AccountState | null;
  differences: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Pushes allocations into their schedulers and takes them out again (docs/compute.md "Lifecycle"):
 *
 *   scheduled ─(start)→ provisioning ─(scheduler has it)→ active ─(end, reclaim)→ ending ─(limit 0)→ ended | reclaimed
 *
 * An allocation becomes `active` only once the scheduler, read back, has what the hub asked; a
 * failed attempt keeps it `provisioning` with the error and a time for the next try. Steps on one
 * allocation run one at a time in this process; on several replicas they may run twice, which is
 * harmless because every provisioner step can be repeated, and status changes are conditional.
 */
export class ComputeLifecycle {
  private readonly running = new Map<string, Promise<StepResult>>();

  constructor(
    private readonly db: Database,
    private readonly pools: PoolService,
    private readonly registry: ProvisionerRegistry,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  provisionerOf(pool: PoolRow): Provisioner {
    return this.registry.for(pool);
  }

  /** One step of one allocation at a time (per process). */
  private once(id: string, step: () => Promise<StepResult>): Promise<StepResult> {
    const busy = this.running.get(id);
    if (busy) return busy;
    const p = step().finally(() => this.running.delete(id));
    this.running.set(id, p);
    return p;
  }

  private async load(id: string): Promise<AllocationRow | undefined> {
    const row = await this.db.get(`SELECT ${ALLOCATION_COLUMNS} FROM compute_allocations l WHERE l.id = ?`, [
      id,
    ]);
    return row ? toAllocationRow(row) : undefined;
  }

  /** What the account should have now: the organisation's active allocation on the pool, else nothing. */
  async desired(
    db: SqlExecutor,
    poolId: string,
    account: string,
  ): Promise<AccountTarget & { allocationId: string | null }> {
    const row = await db.get(
      `SELECT ${ALLOCATION_COLUMNS} FROM compute_allocations l
       WHERE l.pool_id = ? AND l.scheduler_account = ? AND l.status = 'active' ORDER BY l.starts_at DESC LIMIT 1`,
      [poolId, account],
    );
    if (!row) {
      const any = await db.get<{ organization_id: string }>(
        'SELECT organization_id FROM compute_allocations WHERE pool_id = ? AND scheduler_account = ? LIMIT 1',
        [poolId, account],
      );
      return {
        allocationId: null,
        account,
        organizationId: any?.organization_id ?? '',
        gpus: 0,
        gpuMinutes: null,
        users: [],
        resetUsage: false,
      };
    }
    const a = toAllocationRow(row);
    return { allocationId: a.id, ...targetOf(a, false) };
  }

  /** Reads the scheduler until it shows the target (changes reach slurmctld a moment after sacctmgr). */
  private async confirm(provisioner: Provisioner, target: AccountTarget): Promise<AccountState | undefined> {
    let seen: AccountState | undefined;
    for (let attempt = 0; attempt < 10; attempt++) {
      seen = (await provisioner.observe([target.account])).get(target.account);
      if (differences(target, seen, provisioner.enforcesBudget).length === 0) return seen;
      await sleep(100 * (attempt + 1));
    }
    throw new SchedulerError(
      provisioner.engine,
      `스케줄러에 반영되지 않았습니다 / the scheduler does not show what was applied: it has ${JSON.stringify(seen)}, the hub asked ${JSON.stringify({ gpus: target.gpus, gpuMinutes: target.gpuMinutes, users: target.users })}`,
      false,
    );
  }

  private async failed(
    a: AllocationRow,
    status: 'provisioning' | 'ending',
    error: unknown,
  ): Promise<StepResult> {
    const now = this.clock();
    const message = error instanceof Error ? error.message : String(error);
    if (!(error instanceof SchedulerError))
      this.logger.error({ err: error, allocationId: a.id }, 'compute provisioning failed');
    await this.db.transaction(async (tx) => {
      await tx.run(
        `UPDATE compute_allocations SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, updated_at = ?
         WHERE id = ? AND status = ?`,
        [message, now + retryDelayMs(a.attempts + 1), now, a.id, status],
      );
      await recordEvent(
        tx,
        {
          allocationId: a.id,
          poolId: a.poolId,
          kind: status === 'provisioning' ? 'provision_failed' : 'release_failed',
          detail: { error: message, attempt: a.attempts + 1 },
        },
        now,
      );
    });
    return { allocationId: a.id, ok: false, status, error: message };
  }

  /** provisioning → active: the scheduler gets the grant, read back before the hub says it is active. */
  bringUp(id: string): Promise<StepResult> {
    return this.once(id, () => this.up(id));
  }

  private async up(id: string): Promise<StepResult> {
    const a = await this.load(id);
    if (a?.status !== 'provisioning') return { allocationId: id, ok: true, status: a?.status ?? 'missing' };
    const pool = await this.pools.row(a.poolId);
    const provisioner = this.provisionerOf(pool);
    if (provisioner.byHand) return { allocationId: id, ok: true, status: 'provisioning' };
    const target = targetOf(a, true);
    let seen: AccountState | undefined;
    try {
      await provisioner.apply(target);
      seen = await this.confirm(provisioner, target);
    } catch (error) {
      return this.failed(a, 'provisioning', error);
    }
    const now = this.clock();
    const status = await this.db.transaction(async (tx) => {
      const changed = await tx.run(
        `UPDATE compute_allocations SET status = 'active', active_since = ?, attempts = attempts + 1, last_error = NULL,
             next_attempt_at = NULL, updated_at = ? WHERE id = ? AND status = 'provisioning'`,
        [now, now, id],
      );
      await recordEvent(
        tx,
        {
          allocationId: id,
          poolId: a.poolId,
          kind: changed === 1 ? 'provisioned' : 'provisioned_after_change',
          detail: { scheduler: seen },
        },
        now,
      );
      return changed === 1 ? 'active' : 'changed';
    });
    // reclaimed or ended while the scheduler was being set up: the limit goes back down
    if (status === 'changed') return this.down(id);
    return { allocationId: id, ok: true, status };
  }

  /** ending → ended | reclaimed: the account's limit back to what is left (zero), its jobs stopped. */
  bringDown(id: string): Promise<StepResult> {
    return this.once(id, () => this.down(id));
  }

  private async down(id: string): Promise<StepResult> {
    const a = await this.load(id);
    if (a?.status !== 'ending') return { allocationId: id, ok: true, status: a?.status ?? 'missing' };
    const pool = await this.pools.row(a.poolId);
    const provisioner = this.provisionerOf(pool);
    if (provisioner.byHand) return { allocationId: id, ok: true, status: 'ending' };
    let target: AccountTarget;
    try {
      target = await this.desired(this.db, a.poolId, a.account);
      await provisioner.apply(target);
      if (target.gpus === 0) await provisioner.stopJobs(a.account);
      await this.confirm(provisioner, target);
    } catch (error) {
      return this.failed(a, 'ending', error);
    }
    const now = this.clock();
    await this.db.transaction(async (tx) => {
      await tx.run(
        `UPDATE compute_allocations SET status = COALESCE(ending_as, 'ended'), ended_at = COALESCE(ended_at, ?),
             last_error = NULL, next_attempt_at = NULL, updated_at = ? WHERE id = ? AND status = 'ending'`,
        [now, now, id],
      );
      await recordEvent(
        tx,
        {
          allocationId: id,
          poolId: a.poolId,
          kind: a.endingAs === 'reclaimed' ? 'reclaimed' : 'ended',
          detail: { gpus: target.gpus },
        },
        now,
      );
    });
    return { allocationId: id, ok: true, status: a.endingAs ?? 'ended' };
  }

  /** Pushes an active allocation's changed users or budget (no usage reset). */
  reapply(id: string): Promise<StepResult> {
    return this.once(id, async () => {
      const a = await this.load(id);
      if (a?.status !== 'active') return { allocationId: id, ok: true, status: a?.status ?? 'missing' };
      const pool = await this.pools.row(a.poolId);
      const provisioner = this.provisionerOf(pool);
      if (provisioner.byHand) return { allocationId: id, ok: true, status: 'active' };
      try {
        const target = targetOf(a, false);
        await provisioner.apply(target);
        await this.confirm(provisioner, target);
        return { allocationId: id, ok: true, status: 'active' };
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        await recordEvent(
          this.db,
          { allocationId: id, poolId: a.poolId, kind: 'update_failed', detail: { error: message } },
          this.clock(),
        );
        return { allocationId: id, ok: false, status: 'active', error: message };
      }
    });
  }

  /**
   * What the scheduler has against what the hub says, for every account the hub ever made on the
   * pool: an account with a grant it should not have, a limit changed by hand, users added or removed.
   */
  async drift(poolId: string): Promise<Drift[]> {
    const pool = await this.pools.row(poolId);
    const provisioner = this.provisionerOf(pool);
    if (provisioner.byHand) return [];
    const accounts = (
      await this.db.all<{ scheduler_account: string }>(
        `SELECT DISTINCT scheduler_account FROM compute_allocations WHERE pool_id = ?
           AND status IN ('active', 'ended', 'reclaimed') ORDER BY scheduler_account`,
        [poolId],
      )
    ).map((r) => r.scheduler_account);
    if (accounts.length === 0) return [];
    const observed = await provisioner.observe(accounts);
    const out: Drift[] = [];
    for (const account of accounts) {
      const want = await this.desired(this.db, poolId, account);
      const seen = observed.get(account);
      const diff = differences(want, seen, provisioner.enforcesBudget);
      if (diff.length === 0) continue;
      out.push({
        account,
        organizationId: want.organizationId,
        allocationId: want.allocationId,
        desired: { gpus: want.gpus, gpuMinutes: want.gpuMinutes, users: [...want.users] },
        observed: seen ?? null,
        differences: diff,
      });
    }
    return out;
  }

  /** Puts every drifted account back to what the hub says, records what was found and done. */
  async repair(poolId: string): Promise<{ repaired: Drift[]; failed: { account: string; error: string }[] }> {
    const found = await this.drift(poolId);
    const pool = await this.pools.row(poolId);
    const provisioner = this.provisionerOf(pool);
    const repaired: Drift[] = [];
    const failed: { account: string; error: string }[] = [];
    for (const d of found) {
      const target: AccountTarget = {
        account: d.account,
        organizationId: d.organizationId,
        gpus: d.desired.gpus,
        gpuMinutes: d.desired.gpuMinutes,
        users: d.desired.users,
        resetUsage: false,
      };
      try {
        await provisioner.apply(target);
        if (target.gpus === 0) await provisioner.stopJobs(d.account);
        await this.confirm(provisioner, target);
        repaired.push(d);
        await recordEvent(
          this.db,
          { allocationId: d.allocationId, poolId, kind: 'drift_repaired', detail: d },
          this.clock(),
        );
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        failed.push({ account: d.account, error: message });
        await recordEvent(
          this.db,
          {
            allocationId: d.allocationId,
            poolId,
            kind: 'drift_repair_failed',
            detail: { ...d, error: message },
          },
          this.clock(),
        );
      }
    }
    return { repaired, failed };
  }
}

/** An allocation as a scheduler target. */
export function targetOf(a: AllocationRow, resetUsage: boolean): AccountTarget {
  return {
    account: a.account,
    organizationId: a.organizationId,
    gpus: a.gpus,
    gpuMinutes: a.gpuHourBudget === null ? null : a.gpuHourBudget * 60,
    users: a.users,
    resetUsage,
  };
}
