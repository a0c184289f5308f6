import { z } from 'zod';
import type { AuditTrail } from '../audit/audit-log.ts';
import { kstDay } from '../billing/programmes.ts';
import { ConflictError, NotFoundError, ValidationError } from '../errors.ts';
import { DAY_MS, dayIndex, dayStartMs, kstDate, kstDateStart } from '../kst.ts';
import { type Database, isUniqueViolation, type SqlExecutor, type SqlValue } from '../storage/database.ts';
import { newId } from '../storage/ids.ts';
import { parseInput } from '../validation.ts';
import { type CallService, type CallTerms, checkTrack } from './calls.ts';
import { HOLDING_SQL } from './capacity.ts';
import type { PoolService } from './pools.ts';
import { gpusFor } from './units.ts';
import { type Clock, idText, iso, REGIONS, type Region, schedulerUsers } from './values.ts';

const PLAN_MAX_CHARS = 50_000;
export const PURPOSES = ['training', 'fine_tuning', 'inference', 'research'] as const;

const requestShape = {
  trackId: z.string().min(1).max(40),
  poolId: idText,
  /** What `quantity` counts: GPUs, whole servers, or teraflops (rounded up to whole GPUs). */
  unit: z.enum(['gpu', 'server', 'tf']),
  quantity: z.number().int().min(1).max(10_000_000),
  startsOn: kstDay,
  /** The last day, inclusive. */
  endsOn: kstDay,
  purpose: z.enum(PURPOSES),
  plan: z.string().max(PLAN_MAX_CHARS),
  /** Where the applicant is: outside the capital region earns the call's bonus. */
  applicantRegion: z.enum(REGIONS),
  schedulerUsers,
};

const applicationInput = z.strictObject({
  organizationId: idText,
  ...requestShape,
  plan: requestShape.plan.default(''),
  schedulerUsers: schedulerUsers.default([]),
});

const applicationUpdate = z.strictObject(
  Object.fromEntries(Object.entries(requestShape).map(([k, v]) => [k, v.optional()])) as {
    [K in keyof typeof requestShape]: z.ZodOptional<(typeof requestShape)[K]>;
  },
);

export const APPLICATION_STATUSES = [
  'draft',
  'submitted',
  'selected',
  'waitlisted',
  'rejected',
  'withdrawn',
] as const;
export type ApplicationStatus = (typeof APPLICATION_STATUSES)[number];

const applicationQuery = z.strictObject({
  callId: idText.optional(),
  organizationId: idText.optional(),
  status: z.enum(APPLICATION_STATUSES).optional(),
  limit: z.coerce.number().int().min(1).max(5000).default(500),
});

export interface ComputeApplication {
  id: string;
  callId: string;
  organizationId: string;
  trackId: string;
  poolId: string;
  unit: 'gpu' | 'server' | 'tf';
  quantity: number;
  /** Whole GPUs of the pool's model (teraflops rounded up). */
  gpus: number;
  startsOn: string;
  endsOn: string;
  purpose: (typeof PURPOSES)[number];
  plan: string;
  applicantRegion: Region;
  schedulerUsers: string[];
  status: ApplicationStatus;
  rank: number | null;
  /** Mean weighted score plus bonuses at the last ranking (points). */
  score: number | null;
  submittedAt: string | null;
  decidedAt: string | null;
  decisionReason: string | null;
  allocationId: string | null;
  createdAt: string;
  updatedAt: string;
}

/** Whose applications a non-operator sees (docs/roles.md). */
export interface ApplicationScope {
  organizationIds: readonly string[];
  /** An evaluator: the submitted and decided applications of the calls they are assigned to. */
  evaluatorUserId: string | null;
}

const COLUMNS = `a.id, a.call_id, a.organization_id, a.track_id, a.pool_id, a.unit, a.quantity, a.gpus, a.starts_at,
  a.ends_at, a.purpose, a.plan, a.applicant_region, a.scheduler_users, a.status, a.rank, a.score_centipoints,
  a.submitted_at, a.decided_at, a.decision_reason, a.created_at, a.updated_at, l.id AS allocation_id`;
const FROM = 'compute_applications a LEFT JOIN compute_allocations l ON l.application_id = a.id';

function toApplication(r: Record<string, unknown>): ComputeApplication {
  return {
    id: r.id as string,
    callId: r.call_id as string,
    organizationId: r.organization_id as string,
    trackId: r.track_id as string,
    poolId: r.pool_id as string,
    unit: r.unit as ComputeApplication['unit'],
    quantity: Number(r.quantity),
    gpus: Number(r.gpus),
    startsOn: kstDate(Number(r.starts_at)),
    endsOn: kstDate(Number(r.ends_at) - DAY_MS),
    purpose: r.purpose as ComputeApplication['purpose'],
    plan: r.plan as string,
    applicantRegion: r.applicant_region as Region,
    schedulerUsers: JSON.parse(r.scheduler_users as string) as string[],
    status: r.status as ApplicationStatus,
    rank: r.rank === null ? null : Number(r.rank),
    score: r.score_centipoints === null ? null : Number(r.score_centipoints) / 100,
    submittedAt: iso(r.submitted_at),
    decidedAt: iso(r.decided_at),
    decisionReason: (r.decision_reason as string | null) ?? null,
    allocationId: (r.allocation_id as string | null) ?? null,
    createdAt: iso(r.created_at)!,
    updatedAt: iso(r.updated_at)!,
  };
}

/** What an application asks, checked against its call and pool: field-named 400s. */
export interface Request {
  trackId: string;
  poolId: string;
  unit: 'gpu' | 'server' | 'tf';
  quantity: number;
  startsAt: number;
  endsAt: number;
}

/**
 * Checks a request against the call (track, period, length, capacity) and the pool (its size), and
 * that the organisation holds nothing overlapping on that pool. Returns the whole GPUs it comes to.
 */
export async function checkRequest(
  tx: SqlExecutor,
  pools: PoolService,
  call: CallTerms,
  organizationId: string,
  r: Request,
  now: number,
): Promise<number> {
  if (!call.poolIds.includes(r.poolId))
    throw ValidationError.of('poolId', `not a pool of this call: ${call.poolIds.join(', ')}`);
  let pool: Awaited<ReturnType<PoolService['row']>>;
  try {
    pool = await pools.row(r.poolId, tx);
  } catch (error) {
    if (error instanceof NotFoundError) throw ValidationError.of('poolId', `no pool ${r.poolId}`);
    throw error;
  }
  if (pool.status !== 'active') throw ValidationError.of('poolId', `pool ${r.poolId} is retired`);
  checkTrack(call, r.trackId, r.unit, r.quantity);
  const gpus = gpusFor(r.unit, r.quantity, pool);
  if (gpus > pool.gpuCount)
    throw ValidationError.of('quantity', `${gpus} GPUs: more than pool ${pool.name} has (${pool.gpuCount})`);
  if (gpus > call.capacityGpus)
    throw ValidationError.of('quantity', `${gpus} GPUs: more than the call grants (${call.capacityGpus})`);
  const today = dayStartMs(dayIndex(now));
  if (r.startsAt < today)
    throw ValidationError.of('startsOn', `is in the past (today is ${kstDate(today)}, KST)`);
  if (r.endsAt <= r.startsAt) throw ValidationError.of('endsOn', 'must not be before startsOn');
  if (r.startsAt < call.startsAt || r.startsAt >= call.endsAt)
    throw ValidationError.of('startsOn', `must lie within the call (${call.startsOn}..${call.endsOn})`);
  if (r.endsAt > call.endsAt)
    throw ValidationError.of('endsOn', `must lie within the call (${call.startsOn}..${call.endsOn})`);
  const days = Math.round((r.endsAt - r.startsAt) / DAY_MS);
  if (days > call.maxGrantDays)
    throw ValidationError.of('endsOn', `${days} days: the call grants at most ${call.maxGrantDays} days`);
  const overlap = await tx.get<{ id: string; starts_at: number | string; ends_at: number | string }>(
    `SELECT id, starts_at, ends_at FROM compute_allocations WHERE organization_id = ? AND pool_id = ?
       AND status IN (${HOLDING_SQL}) AND starts_at < ? AND ends_at > ? ORDER BY starts_at LIMIT 1`,
    [organizationId, r.poolId, r.endsAt, r.startsAt],
  );
  if (overlap)
    throw ValidationError.of(
      'startsOn',
      `overlaps allocation ${overlap.id} of the organization on this pool (${kstDate(Number(overlap.starts_at))}..${kstDate(Number(overlap.ends_at) - DAY_MS)})`,
    );
  return gpus;
}

const notEditable = (status: string) =>
  new ConflictError(
    'status',
    `the application is ${status}: only a draft changes`,
    '제출된 신청서는 바꿀 수 없습니다.',
  );

/**
 * Applications to a compute call (docs/compute.md "Applications"): drafted by the organisation,
 * submitted for review, then selected, waitlisted or rejected by the operator (compute/selection.ts).
 */
export class ComputeApplicationService {
  constructor(
    private readonly db: Database,
    private readonly calls: CallService,
    private readonly pools: PoolService,
    private readonly clock: Clock,
  ) {}

  async create(callId: string, input: unknown, trail: AuditTrail): Promise<ComputeApplication> {
    const v = parseInput(applicationInput, input);
    const id = newId('gap');
    const now = this.clock();
    return this.db.transaction(async (tx) => {
      const call = await this.calls.terms(callId, tx);
      if (call.closesAt !== null && now >= call.closesAt)
        throw new ConflictError('callId', 'the call takes no more applications', '신청 기간이 끝났습니다.');
      if (now >= call.endsAt) throw new ConflictError('callId', 'the call has ended', '종료된 공모입니다.');
      const org = await tx.get<{ class: string }>('SELECT class FROM organizations WHERE id = ?', [
        v.organizationId,
      ]);
      if (!org) throw ValidationError.of('organizationId', `no organization ${v.organizationId}`);
      if (!call.eligibleClasses.includes(org.class))
        throw ValidationError.of(
          'organizationId',
          `organizations of class ${org.class} are not eligible (eligible: ${call.eligibleClasses.join(', ')})`,
        );
      const startsAt = v.startsOn;
      const endsAt = v.endsOn + DAY_MS;
      const gpus = await checkRequest(
        tx,
        this.pools,
        call,
        v.organizationId,
        { ...v, startsAt, endsAt },
        now,
      );
      try {
        await tx.run(
          `INSERT INTO compute_applications (id, call_id, organization_id, track_id, pool_id, unit, quantity, gpus,
             starts_at, ends_at, purpose, plan, applicant_region, scheduler_users, status, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'draft', ?, ?)`,
          [
            id,
            callId,
            v.organizationId,
            v.trackId,
            v.poolId,
            v.unit,
            v.quantity,
            gpus,
            startsAt,
            endsAt,
            v.purpose,
            v.plan,
            v.applicantRegion,
            JSON.stringify([...new Set(v.schedulerUsers)]),
            now,
            now,
          ],
        );
      } catch (error) {
        if (isUniqueViolation(error))
          throw new ConflictError(
            'organizationId',
            'the organization has a live application to this call already',
            '이 기관은 이 공모에 진행 중인 신청이 있습니다.',
          );
        throw error;
      }
      const after = await this.get(id, tx);
      await trail(tx, { entityId: id, after });
      return after;
    });
  }

  async get(id: string, db: SqlExecutor = this.db): Promise<ComputeApplication> {
    const row = await db.get(`SELECT ${COLUMNS} FROM ${FROM} WHERE a.id = ?`, [id]);
    if (!row) throw new NotFoundError('application', id);
    return toApplication(row);
  }

  async list(query: unknown, scope?: ApplicationScope): Promise<ComputeApplication[]> {
    const q = parseInput(applicationQuery, query);
    const where: string[] = [];
    const params: SqlValue[] = [];
    const filter = (sql: string, value: SqlValue | undefined) => {
      if (value === undefined) return;
      where.push(sql);
      params.push(value);
    };
    filter('a.call_id = ?', q.callId);
    filter('a.organization_id = ?', q.organizationId);
    filter('a.status = ?', q.status);
    if (scope) {
      const any: string[] = [];
      if (scope.organizationIds.length > 0) {
        any.push(`a.organization_id IN (${scope.organizationIds.map(() => '?').join(', ')})`);
        params.push(...scope.organizationIds);
      }
      if (scope.evaluatorUserId !== null) {
        any.push(`(a.status NOT IN ('draft', 'withdrawn') AND EXISTS (SELECT 1 FROM compute_call_evaluators e
          WHERE e.call_id = a.call_id AND e.user_id = ?))`);
        params.push(scope.evaluatorUserId);
      }
      if (any.length === 0) return [];
      where.push(`(${any.join(' OR ')})`);
    }
    const rows = await this.db.all(
      `SELECT ${COLUMNS} FROM ${FROM} ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY a.created_at, a.id LIMIT ${q.limit}`,
      params,
    );
    return rows.map(toApplication);
  }

  async update(id: string, input: unknown, trail: AuditTrail): Promise<ComputeApplication> {
    const v = parseInput(applicationUpdate, input);
    return this.db.transaction(async (tx) => {
      const before = await this.get(id, tx);
      if (before.status !== 'draft') throw notEditable(before.status);
      const call = await this.calls.terms(before.callId, tx);
      const merged = {
        trackId: v.trackId ?? before.trackId,
        poolId: v.poolId ?? before.poolId,
        unit: v.unit ?? before.unit,
        quantity: v.quantity ?? before.quantity,
        startsAt: v.startsOn ?? kstDateStart(before.startsOn),
        endsAt: v.endsOn === undefined ? kstDateStart(before.endsOn) + DAY_MS : v.endsOn + DAY_MS,
      };
      const gpus = await checkRequest(tx, this.pools, call, before.organizationId, merged, this.clock());
      await tx.run(
        `UPDATE compute_applications SET track_id = ?, pool_id = ?, unit = ?, quantity = ?, gpus = ?, starts_at = ?,
           ends_at = ?, purpose = ?, plan = ?, applicant_region = ?, scheduler_users = ?, updated_at = ?
         WHERE id = ? AND status = 'draft'`,
        [
          merged.trackId,
          merged.poolId,
          merged.unit,
          merged.quantity,
          gpus,
          merged.startsAt,
          merged.endsAt,
          v.purpose ?? before.purpose,
          v.plan ?? before.plan,
          v.applicantRegion ?? before.applicantRegion,
          JSON.stringify([...new Set(v.schedulerUsers ?? before.schedulerUsers)]),
          this.clock(),
          id,
        ],
      );
      const after = await this.get(id, tx);
      await trail(tx, { entityId: id, before, after });
      return after;
    });
  }

  /** draft → submitted: reviewers see it from now on, and it no longer changes. */
  async submit(id: string, trail: AuditTrail): Promise<ComputeApplication> {
    return this.db.transaction(async (tx) => {
      const before = await this.get(id, tx);
      if (before.status !== 'draft') throw notEditable(before.status);
      if (before.plan.trim() === '') throw ValidationError.of('plan', 'write the plan before submitting');
      const now = this.clock();
      const call = await this.calls.terms(before.callId, tx);
      if (call.closesAt !== null && now >= call.closesAt)
        throw new ConflictError('callId', 'the call takes no more applications', '신청 기간이 끝났습니다.');
      if (kstDateStart(before.startsOn) < dayStartMs(dayIndex(now)))
        throw ValidationError.of('startsOn', 'is in the past: move the period before submitting');
      await tx.run(
        `UPDATE compute_applications SET status = 'submitted', submitted_at = ?, updated_at = ? WHERE id = ? AND status = 'draft'`,
        [now, now, id],
      );
      const after = await this.get(id, tx);
      await trail(tx, { entityId: id, before, after });
      return after;
    });
  }

  /** The organisation takes its application back (not once selected: that is the allocation's end). */
  async withdraw(id: string, trail: AuditTrail): Promise<ComputeApplication> {
    return this.db.transaction(async (tx) => {
      const before = await this.get(id, tx);
      if (!['draft', 'submitted', 'waitlisted'].includes(before.status))
        throw new ConflictError(
          'status',
          `the application is ${before.status}`,
          '철회할 수 없는 상태입니다.',
        );
      const now = this.clock();
      const changed = await tx.run(
        `UPDATE compute_applications SET status = 'withdrawn', decided_at = ?, decision_reason = ?, updated_at = ?
         WHERE id = ? AND status IN ('draft', 'submitted', 'waitlisted')`,
        [now, '신청 기관이 철회 / withdrawn by the organization', now, id],
      );
      if (changed !== 1)
        throw new ConflictError(
          'status',
          'the application was decided meanwhile',
          '이미 결정된 신청서입니다.',
        );
      // an offer of freed GPUs it had goes back to the waiting list's next
      await tx.run(
        `UPDATE compute_allocations SET status = 'declined', end_reason = ?, updated_at = ? WHERE application_id = ? AND status = 'offered'`,
        ['신청 철회 / application withdrawn', now, id],
      );
      const after = await this.get(id, tx);
      await trail(tx, { entityId: id, before, after });
      return after;
    });
  }
}
