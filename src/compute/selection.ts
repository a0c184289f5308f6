import { z } from 'zod';
import type { AuditTrail } from '../audit/audit-log.ts';
import { kstDay } from '../billing/programmes.ts';
import { ConflictError, ValidationError } from '../errors.ts';
import { DAY_MS, dayIndex, dayStartMs, kstDate, kstDateStart } from '../kst.ts';
import type { Database, SqlExecutor, SqlValue } from '../storage/database.ts';
import { newId } from '../storage/ids.ts';
import { rowBatches } from '../storage/row-batches.ts';
import { parseInput } from '../validation.ts';
import type { ComputeApplication, ComputeApplicationService } from './applications.ts';
import type { CallService, Track } from './calls.ts';
import { commitments } from './capacity.ts';
import { insertAllocations, limitsOf, type NewAllocation } from './grants.ts';
import type { PoolService } from './pools.ts';
import { type Candidate, fill, Ledger, type Outcome, rank } from './ranking.ts';
import { gpusFor } from './units.ts';
import type { Clock } from './values.ts';

const runInput = z.strictObject({
  /** Only say what would be decided. */
  dryRun: z.boolean().default(false),
  /** Applications with fewer reviews are left for later. */
  minReviews: z.number().int().min(1).max(50).default(1),
});

const selectInput = z.strictObject({
  /** At most what was asked; default: what was asked. */
  gpus: z.number().int().min(1).max(10_000_000).optional(),
  /** Within the period asked; default: that period (from today, if it has begun). */
  startsOn: kstDay.optional(),
  endsOn: kstDay.optional(),
  /** A GPU-hour budget the scheduler enforces where it can (Slurm GrpTRESMins). */
  gpuHourBudget: z.number().int().min(1).max(1_000_000_000).nullable().optional(),
  /** Every decision carries a reason: a hand approval (out of rank, or from the waiting list) says why. */
  reason: z.string({ error: 'required: say why the application is selected' }).trim().min(1).max(2000),
});

const rejectInput = z.strictObject({
  reason: z.string({ error: 'required: say why the application is rejected' }).trim().min(1).max(2000),
});

export interface SelectionDecision {
  applicationId: string;
  organizationId: string;
  rank: number;
  score: number;
  decision: Outcome['decision'];
  reason: string;
  allocationId: string | null;
}

export interface SelectionResult {
  callId: string;
  dryRun: boolean;
  decisions: SelectionDecision[];
  /** Applications left as they are: fewer reviews than `minReviews`. */
  notReviewed: string[];
}

interface CandidateRow {
  id: string;
  organization_id: string;
  pool_id: string;
  track_id: string;
  gpus: number;
  starts_at: number | string;
  ends_at: number | string;
  applicant_region: 'capital' | 'non_capital';
  submitted_at: number | string | null;
  scheduler_users: string;
}

/**
 * Ranking and selection (docs/compute.md "Review and selection", decision 0024). Every path that
 * commits GPUs — a selection run, one approval, an offer, an extension — locks the call's row and then
 * its pools' rows (in id order) before it reads what is committed, so two operators approving at the
 * same moment are decided one after the other against the same sums, and no pool is over-committed on
 * any day.
 */
export class ComputeSelectionService {
  /** Allocations just made: the lifecycle may start at once those whose period has begun. */
  onAllocated: (ids: readonly string[]) => void = () => {};

  constructor(
    private readonly db: Database,
    private readonly calls: CallService,
    private readonly pools: PoolService,
    private readonly applications: ComputeApplicationService,
    private readonly clock: Clock,
  ) {}

  async run(callId: string, input: unknown, trail: AuditTrail): Promise<SelectionResult> {
    const v = parseInput(runInput, input);
    const result = await this.db.transaction(async (tx) => {
      const call = await this.calls.lock(tx, callId);
      const pools = await this.pools.lockAll(tx, call.poolIds);
      const now = this.clock();
      const today = dayIndex(now);
      const rows = await tx.all<CandidateRow>(
        `SELECT id, organization_id, pool_id, track_id, gpus, starts_at, ends_at, applicant_region, submitted_at,
           scheduler_users FROM compute_applications a WHERE call_id = ? AND status IN ('submitted', 'waitlisted')
           AND NOT EXISTS (SELECT 1 FROM compute_allocations l WHERE l.application_id = a.id)`,
        [callId],
      );
      const reviews = await reviewsOf(tx, callId);
      const candidates: Candidate[] = [];
      const notReviewed: string[] = [];
      const passed: SelectionDecision[] = [];
      for (const r of rows) {
        const rv = reviews.get(r.id);
        if (!rv || rv.count < v.minReviews) {
          notReviewed.push(r.id);
          continue;
        }
        const endDay = dayIndex(Number(r.ends_at) - 1) + 1;
        if (endDay <= today) {
          passed.push({
            applicationId: r.id,
            organizationId: r.organization_id,
            rank: 0,
            score: 0,
            decision: 'rejected',
            reason: '신청 기간이 이미 지났습니다 / the period asked for has passed',
            allocationId: null,
          });
          continue;
        }
        candidates.push({
          id: r.id,
          organizationId: r.organization_id,
          poolId: r.pool_id,
          trackId: r.track_id,
          gpus: Number(r.gpus),
          // a period that has begun is granted from today
          startDay: Math.max(dayIndex(Number(r.starts_at)), today),
          endDay,
          region: r.applicant_region,
          submittedAt: Number(r.submitted_at ?? 0),
          reviews: rv.count,
          totalCentipoints: rv.total,
          criterionMeans: rv.means,
        });
      }
      const ranked = rank(candidates, call.bonuses, call.tieBreak);
      const first = Math.min(today, ...candidates.map((c) => c.startDay));
      const end = Math.max(today + 1, ...candidates.map((c) => c.endDay));
      const ledger = new Ledger(
        limitsOf(call, pools),
        first,
        end,
        await commitments(tx, call.poolIds, callId, dayStartMs(first), dayStartMs(end)),
      );
      const outcomes = fill(ranked, ledger, callId);
      const byId = new Map(rows.map((r) => [r.id, r]));
      const poolById = new Map(pools.map((p) => [p.id, p]));
      const created: NewAllocation[] = [];
      const decisions: SelectionDecision[] = [
        ...outcomes.map((o) => {
          let allocationId: string | null = null;
          if (o.decision === 'selected') {
            allocationId = newId('gal');
            created.push({
              id: allocationId,
              applicationId: o.candidate.id,
              call,
              pool: poolById.get(o.candidate.poolId)!,
              organizationId: o.candidate.organizationId,
              gpus: o.candidate.gpus,
              startsAt: dayStartMs(o.candidate.startDay),
              endsAt: dayStartMs(o.candidate.endDay),
              gpuHourBudget: null,
              schedulerUsers: byId.get(o.candidate.id)!.scheduler_users,
              status: 'scheduled',
              offerExpiresAt: null,
            });
          }
          return {
            applicationId: o.candidate.id,
            organizationId: o.candidate.organizationId,
            rank: o.candidate.rank,
            score: o.candidate.scoreCentipoints / 100,
            decision: o.decision,
            reason: o.reason,
            allocationId,
          };
        }),
        ...passed,
      ];
      const out: SelectionResult = { callId, dryRun: v.dryRun, decisions, notReviewed };
      if (v.dryRun) return out;
      await insertAllocations(tx, created, now);
      await recordDecisions(
        tx,
        outcomes.map((o) => ({
          id: o.candidate.id,
          status: o.decision,
          reason: o.reason,
          rank: o.candidate.rank,
          score: o.candidate.scoreCentipoints,
        })),
        now,
      );
      await recordDecisions(
        tx,
        passed.map((p) => ({
          id: p.applicationId,
          status: 'rejected',
          reason: p.reason,
          rank: null,
          score: null,
        })),
        now,
      );
      const count = (d: Outcome['decision']) => decisions.filter((x) => x.decision === d).length;
      await trail(tx, {
        entityId: callId,
        after: {
          selected: count('selected'),
          waitlisted: count('waitlisted'),
          rejected: count('rejected'),
          notReviewed: notReviewed.length,
          decisions: decisions.map((d) => ({
            applicationId: d.applicationId,
            decision: d.decision,
            rank: d.rank,
            allocationId: d.allocationId,
          })),
        },
      });
      return out;
    });
    if (!result.dryRun)
      this.onAllocated(result.decisions.flatMap((d) => (d.allocationId === null ? [] : [d.allocationId])));
    return result;
  }

  /** The operator approves one application (from the queue or the waiting list). */
  async select(applicationId: string, input: unknown, trail: AuditTrail): Promise<ComputeApplication> {
    const v = parseInput(selectInput, input);
    const head = await this.applications.get(applicationId);
    const allocationId = newId('gal');
    const after = await this.db.transaction(async (tx) => {
      const call = await this.calls.lock(tx, head.callId);
      const [pool] = await this.pools.lockAll(tx, [head.poolId]);
      const before = await this.applications.get(applicationId, tx);
      if (before.status !== 'submitted' && before.status !== 'waitlisted')
        throw new ConflictError(
          'status',
          `the application is ${before.status}: only a submitted or waitlisted application is selected`,
          '제출 또는 대기 상태의 신청서만 선정할 수 있습니다.',
        );
      const open = await tx.get(
        "SELECT id FROM compute_allocations WHERE application_id = ? AND status = 'offered'",
        [applicationId],
      );
      if (open)
        throw new ConflictError(
          'status',
          'the application has an open offer',
          '수락 대기 중인 제안이 있습니다.',
        );
      const now = this.clock();
      const today = dayStartMs(dayIndex(now));
      const askedStart = kstDateStart(before.startsOn);
      const askedEnd = kstDateStart(before.endsOn) + DAY_MS;
      const startsAt = v.startsOn ?? Math.max(askedStart, today);
      const endsAt = v.endsOn === undefined ? askedEnd : v.endsOn + DAY_MS;
      const gpus = v.gpus ?? before.gpus;
      if (gpus > before.gpus) throw ValidationError.of('gpus', `at most what was asked: ${before.gpus}`);
      if (v.gpus !== undefined)
        fitsTrack(
          call.tracks.find((t) => t.id === before.trackId),
          pool!,
          gpus,
        );
      if (startsAt < today)
        throw ValidationError.of('startsOn', `is in the past (today is ${kstDate(today)}, KST)`);
      if (startsAt < askedStart)
        throw ValidationError.of('startsOn', `must not be before the period asked (${before.startsOn})`);
      if (endsAt > askedEnd)
        throw ValidationError.of('endsOn', `must not be after the period asked (${before.endsOn})`);
      if (endsAt <= startsAt) throw ValidationError.of('endsOn', 'must not be before startsOn');
      const first = dayIndex(startsAt);
      const end = dayIndex(endsAt - 1) + 1;
      const ledger = new Ledger(
        limitsOf(call, [pool!]),
        first,
        end,
        await commitments(tx, [pool!.id], call.id, startsAt, endsAt),
      );
      const overlap = ledger.overlaps(before.organizationId, pool!.id, first, end);
      if (overlap)
        throw ValidationError.of(
          'startsOn',
          `overlaps an allocation of the organization on this pool (${kstDate(dayStartMs(overlap[0]))}..${kstDate(dayStartMs(overlap[1]) - DAY_MS)})`,
        );
      const short = ledger.shortfall(pool!.id, before.trackId, first, end, gpus);
      if (short) throw new ConflictError('gpus', short.english, short.korean);
      await insertAllocations(
        tx,
        [
          {
            id: allocationId,
            applicationId,
            call,
            pool: pool!,
            organizationId: before.organizationId,
            gpus,
            startsAt,
            endsAt,
            gpuHourBudget: v.gpuHourBudget ?? null,
            schedulerUsers: JSON.stringify(before.schedulerUsers),
            status: 'scheduled',
            offerExpiresAt: null,
          },
        ],
        now,
      );
      await recordDecisions(
        tx,
        [
          {
            id: applicationId,
            status: 'selected',
            reason: v.reason,
            rank: before.rank,
            score: before.score === null ? null : Math.round(before.score * 100),
          },
        ],
        now,
        ['submitted', 'waitlisted'],
      );
      const after = await this.applications.get(applicationId, tx);
      await trail(tx, { entityId: applicationId, before, after });
      return after;
    });
    this.onAllocated([allocationId]);
    return after;
  }

  async reject(applicationId: string, input: unknown, trail: AuditTrail): Promise<ComputeApplication> {
    const v = parseInput(rejectInput, input);
    return this.db.transaction(async (tx) => {
      const before = await this.applications.get(applicationId, tx);
      if (before.status !== 'submitted' && before.status !== 'waitlisted')
        throw new ConflictError(
          'status',
          `the application is ${before.status}: only a submitted or waitlisted application is rejected`,
          '제출 또는 대기 상태의 신청서만 탈락 처리할 수 있습니다.',
        );
      await recordDecisions(
        tx,
        [{ id: applicationId, status: 'rejected', reason: v.reason, rank: before.rank, score: null }],
        this.clock(),
        ['submitted', 'waitlisted'],
      );
      await tx.run(
        `UPDATE compute_allocations SET status = 'declined', end_reason = ?, updated_at = ? WHERE application_id = ? AND status = 'offered'`,
        [v.reason, this.clock(), applicationId],
      );
      const after = await this.applications.get(applicationId, tx);
      await trail(tx, { entityId: applicationId, before, after });
      return after;
    });
  }

  /** The call's applications in rank order now, with each one's score (no decision made). */
  async ranking(callId: string): Promise<SelectionResult> {
    const unchanged: AuditTrail = async () => {};
    return this.run(callId, { dryRun: true }, unchanged);
  }
}

interface ReviewAggregate {
  count: number;
  total: number;
  means: Record<string, number>;
}

async function reviewsOf(tx: SqlExecutor, callId: string): Promise<Map<string, ReviewAggregate>> {
  const rows = await tx.all<{
    application_id: string;
    scores: string;
    weighted_centipoints: number | string;
  }>(
    `SELECT r.application_id, r.scores, r.weighted_centipoints FROM compute_reviews r
     JOIN compute_applications a ON a.id = r.application_id
     WHERE a.call_id = ? AND a.status IN ('submitted', 'waitlisted')`,
    [callId],
  );
  const out = new Map<string, ReviewAggregate>();
  for (const r of rows) {
    const a = out.get(r.application_id) ?? { count: 0, total: 0, means: {} };
    const scores = JSON.parse(r.scores) as Record<string, number>;
    // running sums here, divided below
    for (const [k, s] of Object.entries(scores)) a.means[k] = (a.means[k] ?? 0) + s;
    a.count += 1;
    a.total += Number(r.weighted_centipoints);
    out.set(r.application_id, a);
  }
  for (const a of out.values()) for (const k of Object.keys(a.means)) a.means[k] = a.means[k]! / a.count;
  return out;
}

interface DecisionRow {
  id: string;
  status: string;
  reason: string;
  rank: number | null;
  score: number | null;
}

/**
 * Writes decisions, 200 per statement (UPDATE … FROM VALUES: one statement on both engines, whose
 * VALUES columns are column1, column2, …). `from`: only applications still in one of these states
 * change; fewer rows changed than asked means another decision came first.
 */
async function recordDecisions(
  tx: SqlExecutor,
  decisions: readonly DecisionRow[],
  now: number,
  from: readonly string[] = ['submitted', 'waitlisted'],
): Promise<void> {
  for (const batch of rowBatches(decisions, 200)) {
    const changed = await tx.run(
      `UPDATE compute_applications SET status = v.column2, decision_reason = v.column3,
         rank = CAST(v.column4 AS INTEGER), score_centipoints = CAST(v.column5 AS INTEGER), decided_at = ?, updated_at = ?
       FROM (VALUES ${batch.map(() => '(?, ?, ?, ?, ?)').join(', ')}) AS v
       WHERE compute_applications.id = v.column1 AND compute_applications.status IN (${from.map(() => '?').join(', ')})`,
      [
        now,
        now,
        ...batch.flatMap((d): SqlValue[] => [
          d.id,
          d.status,
          d.reason,
          d.rank === null ? null : String(d.rank),
          d.score === null ? null : String(d.score),
        ]),
        ...from,
      ],
    );
    if (changed !== batch.length)
      throw new ConflictError(
        'status',
        'an application was decided meanwhile',
        '이미 결정된 신청서가 있습니다.',
      );
  }
}

/**
 * A hand approval's smaller grant still has to be one the track grants: at least its minimum GPUs, whole
 * servers on a server track, or the GPUs of one of its sizes on a teraflop track (docs/compute.md).
 */
function fitsTrack(
  track: Track | undefined,
  pool: { gpusPerServer: number; tfPerGpu: number },
  gpus: number,
): void {
  if (!track) return;
  if (track.unit === 'gpu') {
    if (gpus < track.min!)
      throw ValidationError.of('gpus', `track ${track.id} grants at least ${track.min} GPUs`);
  } else if (track.unit === 'server') {
    if (gpus % pool.gpusPerServer !== 0 || gpus < track.min! * pool.gpusPerServer)
      throw ValidationError.of(
        'gpus',
        `track ${track.id} grants whole servers of ${pool.gpusPerServer} GPUs, at least ${track.min! * pool.gpusPerServer} GPUs`,
      );
  } else {
    const allowed = track.sizes!.map((tf) => gpusFor('tf', tf, pool));
    if (!allowed.includes(gpus))
      throw ValidationError.of(
        'gpus',
        `track ${track.id} grants ${track.sizes!.join(' or ')} TF: ${[...new Set(allowed)].join(' or ')} GPUs of this pool`,
      );
  }
}
