import { z } from 'zod';
import type { AuditTrail } from '../audit/audit-log.ts';
import { formatKrw } from '../billing/money.ts';
import { ConflictError, NotFoundError } from '../errors.ts';
import { DAY_MS, kstDate } from '../kst.ts';
import type { Database, SqlExecutor, SqlValue } from '../storage/database.ts';
import { parseInput } from '../validation.ts';
import { type ComputeEvent, eventsOf, recordEvent } from './events.ts';
import { gpuHoursText } from './units.ts';
import { type Clock, idText, iso, schedulerUsers } from './values.ts';

export const ALLOCATION_STATUSES = [
  'offered',
  'scheduled',
  'provisioning',
  'active',
  'ending',
  'ended',
  'reclaimed',
  'declined',
] as const;
export type AllocationStatus = (typeof ALLOCATION_STATUSES)[number];

const allocationQuery = z.strictObject({
  callId: idText.optional(),
  poolId: idText.optional(),
  organizationId: idText.optional(),
  status: z.enum(ALLOCATION_STATUSES).optional(),
  limit: z.coerce.number().int().min(1).max(5000).default(500),
});

const allocationUpdate = z.strictObject({
  /** Who may submit jobs under the organisation's account. */
  schedulerUsers: schedulerUsers.optional(),
  /** The operator's: a GPU-hour budget enforced by the scheduler where it can. */
  gpuHourBudget: z.number().int().min(1).max(1_000_000_000).nullable().optional(),
});

const reasonInput = z.strictObject({
  reason: z.string({ error: 'required: say why' }).trim().min(1).max(2000),
});

export interface Allocation {
  id: string;
  applicationId: string;
  callId: string;
  poolId: string;
  organizationId: string;
  gpus: number;
  startsOn: string;
  endsOn: string;
  gpuHourBudget: number | null;
  pricePerGpuHourKrw: string;
  copayPercent: number;
  schedulerAccount: string;
  schedulerUsers: string[];
  status: AllocationStatus;
  offerExpiresAt: string | null;
  provisioning: { attempts: number; lastError: string | null; nextAttemptAt: string | null };
  activeSince: string | null;
  endedAt: string | null;
  endingAs: 'ended' | 'reclaimed' | null;
  endReason: string | null;
  warnings: number;
  /** GPU-hours used to date (from the usage stored per day). */
  usedGpuHours: string;
  createdAt: string;
  updatedAt: string;
}

/** An allocation row as the lifecycle reads it. */
export interface AllocationRow {
  id: string;
  applicationId: string;
  callId: string;
  poolId: string;
  organizationId: string;
  gpus: number;
  startsAt: number;
  endsAt: number;
  gpuHourBudget: number | null;
  priceMicroKrwPerGpuHour: bigint;
  copayBp: number;
  fundingProgrammeId: string | null;
  account: string;
  users: string[];
  status: AllocationStatus;
  endingAs: 'ended' | 'reclaimed' | null;
  endedAt: number | null;
  attempts: number;
}

export const ALLOCATION_COLUMNS = `l.id, l.application_id, l.call_id, l.pool_id, l.organization_id, l.gpus, l.starts_at,
  l.ends_at, l.gpu_hour_budget, CAST(l.price_micro_krw_per_gpu_hour AS TEXT) AS price, l.copay_bp,
  l.funding_programme_id, l.scheduler_account, l.scheduler_users, l.status, l.offer_expires_at, l.attempts,
  l.last_error, l.next_attempt_at, l.active_since, l.ending_as, l.ended_at, l.end_reason, l.warnings, l.created_at,
  l.updated_at`;

export function toAllocationRow(r: Record<string, unknown>): AllocationRow {
  return {
    id: r.id as string,
    applicationId: r.application_id as string,
    callId: r.call_id as string,
    poolId: r.pool_id as string,
    organizationId: r.organization_id as string,
    gpus: Number(r.gpus),
    startsAt: Number(r.starts_at),
    endsAt: Number(r.ends_at),
    gpuHourBudget: r.gpu_hour_budget === null ? null : Number(r.gpu_hour_budget),
    priceMicroKrwPerGpuHour: BigInt(r.price as string),
    copayBp: Number(r.copay_bp),
    fundingProgrammeId: (r.funding_programme_id as string | null) ?? null,
    account: r.scheduler_account as string,
    users: JSON.parse(r.scheduler_users as string) as string[],
    status: r.status as AllocationStatus,
    endingAs: (r.ending_as as 'ended' | 'reclaimed' | null) ?? null,
    endedAt: r.ended_at === null ? null : Number(r.ended_at),
    attempts: Number(r.attempts),
  };
}

function toAllocation(r: Record<string, unknown>): Allocation {
  const row = toAllocationRow(r);
  return {
    id: row.id,
    applicationId: row.applicationId,
    callId: row.callId,
    poolId: row.poolId,
    organizationId: row.organizationId,
    gpus: row.gpus,
    startsOn: kstDate(row.startsAt),
    endsOn: kstDate(row.endsAt - DAY_MS),
    gpuHourBudget: row.gpuHourBudget,
    pricePerGpuHourKrw: formatKrw(row.priceMicroKrwPerGpuHour),
    copayPercent: row.copayBp / 100,
    schedulerAccount: row.account,
    schedulerUsers: row.users,
    status: row.status,
    offerExpiresAt: iso(r.offer_expires_at),
    provisioning: {
      attempts: row.attempts,
      lastError: (r.last_error as string | null) ?? null,
      nextAttemptAt: iso(r.next_attempt_at),
    },
    activeSince: iso(r.active_since),
    endedAt: iso(r.ended_at),
    endingAs: row.endingAs,
    endReason: (r.end_reason as string | null) ?? null,
    warnings: Number(r.warnings),
    usedGpuHours: gpuHoursText(BigInt((r.used_seconds as string | null) ?? '0')),
    createdAt: iso(r.created_at)!,
    updatedAt: iso(r.updated_at)!,
  };
}

const SELECT = `SELECT ${ALLOCATION_COLUMNS},
  (SELECT CAST(SUM(d.gpu_seconds) AS TEXT) FROM compute_usage_daily d WHERE d.allocation_id = l.id) AS used_seconds
  FROM compute_allocations l`;

/** Whose allocations a non-operator sees: their organisations', and those on their suppliers' pools. */
export interface AllocationScope {
  organizationIds: readonly string[];
  supplierIds: readonly string[];
}

/**
 * Allocations (docs/compute.md "Allocations"): reading them, and the changes people make by hand —
 * the users and budget, a manual pool's hand-over and return, reclaim, answering an offer. The
 * scheduler side of each change is the lifecycle's (compute/lifecycle.ts), run after the commit.
 */
export class AllocationService {
  /** An allocation whose scheduler state must change (users, budget, reclaim): the lifecycle's to push. */
  onChanged: (id: string) => void = () => {};

  constructor(
    private readonly db: Database,
    private readonly clock: Clock,
  ) {}

  async get(id: string, db: SqlExecutor = this.db): Promise<Allocation> {
    const row = await db.get(`${SELECT} WHERE l.id = ?`, [id]);
    if (!row) throw new NotFoundError('allocation', id);
    return toAllocation(row);
  }

  async row(id: string, db: SqlExecutor = this.db, lock = false): Promise<AllocationRow> {
    const row = await db.get(
      `SELECT ${ALLOCATION_COLUMNS} FROM compute_allocations l WHERE l.id = ?${lock && this.db.dialect === 'postgres' ? ' FOR UPDATE' : ''}`,
      [id],
    );
    if (!row) throw new NotFoundError('allocation', id);
    return toAllocationRow(row);
  }

  /** The supplier whose pool an allocation is on. */
  async supplierOf(id: string): Promise<string> {
    const row = await this.db.get<{ supplier_id: string }>(
      'SELECT p.supplier_id FROM compute_allocations l JOIN compute_pools p ON p.id = l.pool_id WHERE l.id = ?',
      [id],
    );
    if (!row) throw new NotFoundError('allocation', id);
    return row.supplier_id;
  }

  async list(query: unknown, scope?: AllocationScope): Promise<Allocation[]> {
    const q = parseInput(allocationQuery, query);
    const where: string[] = [];
    const params: SqlValue[] = [];
    const filter = (sql: string, value: SqlValue | undefined) => {
      if (value === undefined) return;
      where.push(sql);
      params.push(value);
    };
    filter('l.call_id = ?', q.callId);
    filter('l.pool_id = ?', q.poolId);
    filter('l.organization_id = ?', q.organizationId);
    filter('l.status = ?', q.status);
    if (scope) {
      const any: string[] = [];
      if (scope.organizationIds.length > 0) {
        any.push(`l.organization_id IN (${scope.organizationIds.map(() => '?').join(', ')})`);
        params.push(...scope.organizationIds);
      }
      if (scope.supplierIds.length > 0) {
        any.push(
          `l.pool_id IN (SELECT id FROM compute_pools WHERE supplier_id IN (${scope.supplierIds.map(() => '?').join(', ')}))`,
        );
        params.push(...scope.supplierIds);
      }
      if (any.length === 0) return [];
      where.push(`(${any.join(' OR ')})`);
    }
    const rows = await this.db.all(
      `${SELECT} ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY l.starts_at, l.id LIMIT ${q.limit}`,
      params,
    );
    return rows.map(toAllocation);
  }

  async events(id: string): Promise<ComputeEvent[]> {
    return eventsOf(this.db, { allocationId: id });
  }

  /** Users (the organisation's admins) and the budget (the operator's; the route checks who). */
  async update(id: string, input: unknown, trail: AuditTrail): Promise<Allocation> {
    const v = parseInput(allocationUpdate, input);
    const after = await this.db.transaction(async (tx) => {
      const before = await this.get(id, tx);
      if (['ended', 'reclaimed', 'declined'].includes(before.status))
        throw new ConflictError(
          'status',
          `the allocation is ${before.status}`,
          '끝난 배정은 바꿀 수 없습니다.',
        );
      await tx.run(
        'UPDATE compute_allocations SET scheduler_users = ?, gpu_hour_budget = ?, updated_at = ? WHERE id = ?',
        [
          JSON.stringify([...new Set(v.schedulerUsers ?? before.schedulerUsers)]),
          v.gpuHourBudget === undefined ? before.gpuHourBudget : v.gpuHourBudget,
          this.clock(),
          id,
        ],
      );
      const after = await this.get(id, tx);
      await trail(tx, { entityId: id, before, after });
      return after;
    });
    if (after.status === 'active') this.onChanged(id);
    return after;
  }

  /**
   * Takes GPUs back before the end (idle, used off-purpose, the operator's decision): the scheduler's
   * limit goes to zero and the account's jobs stop (the lifecycle), the GPUs return to the pool and
   * the waiting list is offered them.
   */
  async reclaim(id: string, input: unknown, trail: AuditTrail): Promise<Allocation> {
    const v = parseInput(reasonInput, input);
    const after = await this.db.transaction((tx) => this.reclaimIn(tx, id, v.reason, trail));
    this.onChanged(id);
    return after;
  }

  async reclaimIn(tx: SqlExecutor, id: string, reason: string, trail?: AuditTrail): Promise<Allocation> {
    const before = await this.get(id, tx);
    const now = this.clock();
    if (!['scheduled', 'provisioning', 'active'].includes(before.status))
      throw new ConflictError(
        'status',
        `the allocation is ${before.status}: nothing to reclaim`,
        '회수할 수 없는 상태입니다.',
      );
    // a grant that never reached the scheduler has nothing to take back there
    const next = before.status === 'scheduled' ? 'reclaimed' : 'ending';
    await tx.run(
      `UPDATE compute_allocations SET status = ?, ending_as = 'reclaimed', end_reason = ?, ended_at = ?,
         next_attempt_at = NULL, attempts = 0, last_error = NULL, updated_at = ?
       WHERE id = ? AND status IN ('scheduled', 'provisioning', 'active')`,
      [next, reason, next === 'reclaimed' ? now : null, now, id],
    );
    await recordEvent(
      tx,
      { allocationId: id, poolId: before.poolId, kind: 'reclaim', detail: { reason } },
      now,
    );
    const after = await this.get(id, tx);
    if (trail) await trail(tx, { entityId: id, before, after });
    return after;
  }

  /** A manual pool: the compute supplier's admin confirms the GPUs were handed over. */
  async confirmHandover(id: string, trail: AuditTrail): Promise<Allocation> {
    return this.confirmByHand(id, 'provisioning', 'active', trail);
  }

  /** A manual pool: the compute supplier's admin confirms the GPUs were taken back. */
  async confirmReturn(id: string, trail: AuditTrail): Promise<Allocation> {
    return this.confirmByHand(id, 'ending', 'ended', trail);
  }

  private async confirmByHand(
    id: string,
    from: 'provisioning' | 'ending',
    to: 'active' | 'ended',
    trail: AuditTrail,
  ): Promise<Allocation> {
    return this.db.transaction(async (tx) => {
      const before = await this.get(id, tx);
      const pool = await tx.get<{ provisioner: string }>(
        'SELECT provisioner FROM compute_pools WHERE id = ?',
        [before.poolId],
      );
      if (pool?.provisioner !== 'manual')
        throw new ConflictError(
          'provisioner',
          'the pool is provisioned by its scheduler, not by hand',
          '수동 풀이 아닙니다.',
        );
      if (before.status !== from)
        throw new ConflictError(
          'status',
          `the allocation is ${before.status}: ${to === 'active' ? 'a hand-over is confirmed while provisioning' : 'a return is confirmed while ending'}`,
          '확인할 수 없는 상태입니다.',
        );
      const now = this.clock();
      await tx.run(
        to === 'active'
          ? `UPDATE compute_allocations SET status = 'active', active_since = ?, last_error = NULL, updated_at = ? WHERE id = ? AND status = 'provisioning'`
          : `UPDATE compute_allocations SET status = COALESCE(ending_as, 'ended'), ended_at = ?, updated_at = ? WHERE id = ? AND status = 'ending'`,
        [now, now, id],
      );
      await recordEvent(
        tx,
        { allocationId: id, poolId: before.poolId, kind: to === 'active' ? 'handed_over' : 'returned' },
        now,
      );
      const after = await this.get(id, tx);
      await trail(tx, { entityId: id, before, after });
      return after;
    });
  }
}
