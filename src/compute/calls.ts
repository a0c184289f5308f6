import { z } from 'zod';
import { ORGANIZATION_CLASSES } from '../accounts/organizations.ts';
import { requireEvaluators } from '../accounts/users.ts';
import type { AuditTrail } from '../audit/audit-log.ts';
import { kstDay, type ReviewCriterion, reviewCriteriaInput } from '../billing/programmes.ts';
import { ConflictError, NotFoundError, ValidationError } from '../errors.ts';
import { DAY_MS, kstDate } from '../kst.ts';
import { type Database, isUniqueViolation, type SqlExecutor } from '../storage/database.ts';
import { newId } from '../storage/ids.ts';
import { parseInput } from '../validation.ts';
import { peakHeld } from './capacity.ts';
import { type Bonuses, TIE_BREAKS, type TieBreak } from './ranking.ts';
import type { ComputeUnit } from './units.ts';
import { type Clock, idText, iso, percentBp } from './values.ts';

const trackInput = z
  .strictObject({
    id: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,39}$/, 'lowercase letters, digits, - and _ (at most 40)'),
    name: z.string().trim().min(1).max(200),
    /** `gpu`: 1–4 GPUs; `server`: whole servers of the pool's GPUs; `tf`: units of teraflops. */
    unit: z.enum(['gpu', 'server', 'tf']),
    /** GPUs or servers: the least and the most an application asks. */
    min: z.number().int().min(1).max(1_000_000).optional(),
    max: z.number().int().min(1).max(1_000_000).optional(),
    /** Teraflops: the sizes one may ask for, e.g. [160, 320]. */
    sizes: z.array(z.number().int().min(1).max(10_000_000)).min(1).max(20).optional(),
    /** The most GPUs this track grants on any day; absent: only the call's capacity. */
    capacityGpus: z.number().int().min(1).max(10_000_000).optional(),
  })
  .superRefine((t, ctx) => {
    if (t.unit === 'tf') {
      if (!t.sizes)
        ctx.addIssue({ code: 'custom', path: ['sizes'], message: 'a teraflop track lists its sizes' });
      if (t.min !== undefined || t.max !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['min'],
          message: 'a teraflop track has sizes, not min and max',
        });
    } else {
      if (t.min === undefined || t.max === undefined)
        ctx.addIssue({ code: 'custom', path: [t.min === undefined ? 'min' : 'max'], message: 'required' });
      else if (t.max < t.min)
        ctx.addIssue({ code: 'custom', path: ['max'], message: 'must not be below min' });
      if (t.sizes)
        ctx.addIssue({ code: 'custom', path: ['sizes'], message: 'only teraflop tracks have sizes' });
    }
  });

export type Track = z.infer<typeof trackInput>;

const tieBreakInput = z
  .array(
    z.union([
      z.enum(TIE_BREAKS),
      z
        .string()
        .regex(/^criterion:[a-z0-9][a-z0-9_-]{0,39}$/, `one of ${TIE_BREAKS.join(', ')}, or criterion:<id>`),
    ]),
  )
  .max(10) as z.ZodType<TieBreak[]>;

const bonusesInput = z.strictObject({
  /** Points added to an applicant outside the capital region (0–20). */
  nonCapitalRegion: z.number().min(0).max(20).optional(),
});

const reclaimPolicyInput = z.strictObject({
  /** Months below the threshold that only warn; the next one reclaims. 0: reclaim at the first. */
  warningsBeforeReclaim: z.number().int().min(0).max(6).default(1),
  /** Days an organisation on the waiting list has to accept freed GPUs. */
  offerDays: z.number().int().min(1).max(60).default(7),
});

const callShape = {
  name: z.string().trim().min(1).max(200),
  /** The period grants may lie in; the last day inclusive. */
  startsOn: kstDay,
  endsOn: kstDay,
  /** The last day applications are taken (inclusive); absent: until the call ends. */
  applicationsCloseOn: kstDay.nullable().optional(),
  poolIds: z.array(idText).min(1).max(50),
  tracks: z.array(trackInput).min(1).max(20),
  eligibleClasses: z.array(z.enum(ORGANIZATION_CLASSES)).min(1),
  maxGrantDays: z.number().int().min(1).max(3660),
  reviewCriteria: reviewCriteriaInput,
  bonuses: bonusesInput.default({}),
  tieBreak: tieBreakInput.default(['earlier_submission']),
  capacityGpus: z.number().int().min(1).max(10_000_000),
  /** Below this share of granted GPU-hours used in a month, a warning, then reclaim. */
  utilisationThresholdPercent: percentBp.default(3000),
  reclaimPolicy: reclaimPolicyInput.default({ warningsBeforeReclaim: 1, offerDays: 7 }),
  /** The organisation's share of every charge (자부담); the programme pays the rest. */
  copayPercent: percentBp.default(0),
  /** The programme whose budget pays the programme's share; absent: paid from outside the ledger's budgets. */
  fundingProgrammeId: idText.nullable().optional(),
};

const callInput = z
  .strictObject(callShape)
  .refine((c) => c.endsOn >= c.startsOn, { path: ['endsOn'], message: 'must not be before startsOn' });

const callUpdate = z.strictObject({
  applicationsCloseOn: callShape.applicationsCloseOn,
  capacityGpus: callShape.capacityGpus.optional(),
  reviewCriteria: reviewCriteriaInput.optional(),
  bonuses: bonusesInput.optional(),
  tieBreak: tieBreakInput.optional(),
  utilisationThresholdPercent: percentBp.optional(),
  reclaimPolicy: reclaimPolicyInput.optional(),
  /** Users with the evaluator role who review this call; replaces the list. */
  evaluatorIds: z.array(idText).max(200).optional(),
});

export interface ReclaimPolicy {
  warningsBeforeReclaim: number;
  offerDays: number;
}

export interface ComputeCall {
  id: string;
  name: string;
  startsOn: string;
  endsOn: string;
  applicationsCloseOn: string | null;
  poolIds: string[];
  tracks: Track[];
  eligibleClasses: string[];
  maxGrantDays: number;
  reviewCriteria: ReviewCriterion[];
  bonuses: Bonuses;
  tieBreak: TieBreak[];
  capacityGpus: number;
  utilisationThresholdPercent: number;
  reclaimPolicy: ReclaimPolicy;
  copayPercent: number;
  fundingProgrammeId: string | null;
  createdAt: string;
}

/** What the services need beyond the public shape: times as ms, ratios as basis points. */
export interface CallTerms extends ComputeCall {
  startsAt: number;
  endsAt: number;
  closesAt: number | null;
  thresholdBp: number;
  copayBp: number;
}

const COLUMNS = `id, name, starts_at, ends_at, applications_close_at, pool_ids, tracks, eligible_classes, max_grant_days,
  review_criteria, bonuses, tie_break, capacity_gpus, utilisation_threshold_bp, reclaim_policy, copay_bp,
  funding_programme_id, created_at`;

function toCall(r: Record<string, unknown>): CallTerms {
  const closesAt = r.applications_close_at === null ? null : Number(r.applications_close_at);
  return {
    id: r.id as string,
    name: r.name as string,
    startsOn: kstDate(Number(r.starts_at)),
    endsOn: kstDate(Number(r.ends_at) - DAY_MS),
    applicationsCloseOn: closesAt === null ? null : kstDate(closesAt - DAY_MS),
    poolIds: JSON.parse(r.pool_ids as string) as string[],
    tracks: JSON.parse(r.tracks as string) as Track[],
    eligibleClasses: JSON.parse(r.eligible_classes as string) as string[],
    maxGrantDays: Number(r.max_grant_days),
    reviewCriteria: JSON.parse(r.review_criteria as string) as ReviewCriterion[],
    bonuses: JSON.parse(r.bonuses as string) as Bonuses,
    tieBreak: JSON.parse(r.tie_break as string) as TieBreak[],
    capacityGpus: Number(r.capacity_gpus),
    utilisationThresholdPercent: Number(r.utilisation_threshold_bp) / 100,
    reclaimPolicy: JSON.parse(r.reclaim_policy as string) as ReclaimPolicy,
    copayPercent: Number(r.copay_bp) / 100,
    fundingProgrammeId: (r.funding_programme_id as string | null) ?? null,
    createdAt: iso(r.created_at)!,
    startsAt: Number(r.starts_at),
    endsAt: Number(r.ends_at),
    closesAt,
    thresholdBp: Number(r.utilisation_threshold_bp),
    copayBp: Number(r.copay_bp),
  };
}

/** The public shape: no internal fields. */
export function publicCall(c: CallTerms): ComputeCall {
  const { startsAt: _s, endsAt: _e, closesAt: _c, thresholdBp: _t, copayBp: _p, ...call } = c;
  return call;
}

/** The track an application names, and whether its request fits it (field-named errors). */
export function checkTrack(call: ComputeCall, trackId: string, unit: ComputeUnit, quantity: number): Track {
  const track = call.tracks.find((t) => t.id === trackId);
  if (!track)
    throw ValidationError.of(
      'trackId',
      `not a track of this call: ${call.tracks.map((t) => t.id).join(', ')}`,
    );
  if (unit !== track.unit) throw ValidationError.of('unit', `track ${track.id} is asked in ${track.unit}`);
  if (track.unit === 'tf') {
    if (!track.sizes!.includes(quantity))
      throw ValidationError.of('quantity', `track ${track.id} grants ${track.sizes!.join(' or ')} TF`);
  } else if (quantity < track.min! || quantity > track.max!) {
    const what = track.unit === 'gpu' ? 'GPUs' : 'servers';
    throw ValidationError.of('quantity', `track ${track.id} grants ${track.min}–${track.max} ${what}`);
  }
  return track;
}

/**
 * Compute calls (공모, docs/compute.md "Calls"): the period, the pools, tracks, eligibility, the review
 * criteria and how ties are broken (fixed once reviewing starts, so that the rules are declared in
 * advance), capacity, the utilisation threshold and reclaim policy, and who pays.
 */
export class CallService {
  constructor(
    private readonly db: Database,
    private readonly clock: Clock,
  ) {}

  async create(input: unknown, trail: AuditTrail): Promise<ComputeCall> {
    const v = parseInput(callInput, input);
    const id = newId('gcl');
    const now = Date.now();
    return this.db.transaction(async (tx) => {
      for (const [i, poolId] of v.poolIds.entries())
        if (!(await tx.get('SELECT 1 AS ok FROM compute_pools WHERE id = ?', [poolId])))
          throw ValidationError.of(`poolIds.${i}`, `no pool ${poolId}`);
      if (
        v.fundingProgrammeId &&
        !(await tx.get('SELECT 1 AS ok FROM programmes WHERE id = ?', [v.fundingProgrammeId]))
      )
        throw ValidationError.of('fundingProgrammeId', `no programme ${v.fundingProgrammeId}`);
      checkTracksAndTieBreak(v.tracks, v.tieBreak, v.reviewCriteria);
      const closesAt = v.applicationsCloseOn == null ? null : v.applicationsCloseOn + DAY_MS;
      if (closesAt !== null && closesAt > v.endsOn + DAY_MS)
        throw ValidationError.of('applicationsCloseOn', 'must not be after endsOn');
      try {
        await tx.run(
          `INSERT INTO compute_calls (${COLUMNS}, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          [
            id,
            v.name,
            v.startsOn,
            v.endsOn + DAY_MS,
            closesAt,
            JSON.stringify([...new Set(v.poolIds)]),
            JSON.stringify(v.tracks),
            JSON.stringify([...new Set(v.eligibleClasses)]),
            v.maxGrantDays,
            JSON.stringify(v.reviewCriteria),
            JSON.stringify(v.bonuses),
            JSON.stringify(v.tieBreak),
            v.capacityGpus,
            v.utilisationThresholdPercent,
            JSON.stringify(v.reclaimPolicy),
            v.copayPercent,
            v.fundingProgrammeId ?? null,
            now,
            now,
          ],
        );
      } catch (error) {
        if (isUniqueViolation(error)) throw new ConflictError('name', 'a call with this name exists');
        throw error;
      }
      const after = publicCall(await this.terms(id, tx));
      await trail(tx, { entityId: id, after });
      return after;
    });
  }

  async terms(id: string, db: SqlExecutor = this.db): Promise<CallTerms> {
    const row = await db.get(`SELECT ${COLUMNS} FROM compute_calls WHERE id = ?`, [id]);
    if (!row) throw new NotFoundError('call', id);
    return toCall(row);
  }

  async get(id: string): Promise<ComputeCall> {
    return publicCall(await this.terms(id));
  }

  async list(): Promise<ComputeCall[]> {
    const rows = await this.db.all(`SELECT ${COLUMNS} FROM compute_calls ORDER BY starts_at DESC, id`);
    return rows.map((r) => publicCall(toCall(r)));
  }

  async evaluatorIds(callId: string, db: SqlExecutor = this.db): Promise<string[]> {
    const rows = await db.all<{ user_id: string }>(
      'SELECT user_id FROM compute_call_evaluators WHERE call_id = ? ORDER BY user_id',
      [callId],
    );
    return rows.map((r) => r.user_id);
  }

  /**
   * Locks the call for a change of what it commits (its row, before any pool's: every path takes
   * the call first, then its pools in id order).
   */
  async lock(tx: SqlExecutor, id: string): Promise<CallTerms> {
    const row = await tx.get(
      `SELECT ${COLUMNS} FROM compute_calls WHERE id = ?${this.db.dialect === 'postgres' ? ' FOR UPDATE' : ''}`,
      [id],
    );
    if (!row) throw new NotFoundError('call', id);
    return toCall(row);
  }

  async update(
    id: string,
    input: unknown,
    trail: AuditTrail,
  ): Promise<ComputeCall & { evaluatorIds: string[] }> {
    const v = parseInput(callUpdate, input);
    return this.db.transaction(async (tx) => {
      const current = await this.lock(tx, id);
      const before = { ...publicCall(current), evaluatorIds: await this.evaluatorIds(id, tx) };
      const rulesChange =
        v.reviewCriteria !== undefined || v.bonuses !== undefined || v.tieBreak !== undefined;
      if (rulesChange) {
        const reviewed = await tx.get(
          `SELECT 1 AS ok FROM compute_reviews r JOIN compute_applications a ON a.id = r.application_id
           WHERE a.call_id = ? LIMIT 1`,
          [id],
        );
        if (reviewed)
          throw new ConflictError(
            v.reviewCriteria !== undefined
              ? 'reviewCriteria'
              : v.bonuses !== undefined
                ? 'bonuses'
                : 'tieBreak',
            'reviewing has started: the criteria, bonuses and tie-break are fixed',
            '평가가 시작되어 평가 기준·가점·동점 처리 규칙을 바꿀 수 없습니다.',
          );
        checkTracksAndTieBreak(
          current.tracks,
          v.tieBreak ?? current.tieBreak,
          v.reviewCriteria ?? current.reviewCriteria,
        );
      }
      if (v.capacityGpus !== undefined && v.capacityGpus < current.capacityGpus) {
        const peak = await peakHeld(tx, 'call_id', id, this.clock());
        if (v.capacityGpus < peak)
          throw ValidationError.of(
            'capacityGpus',
            `${peak} GPUs are granted on a day to come: at least ${peak}`,
          );
      }
      if (v.evaluatorIds !== undefined) await requireEvaluators(tx, v.evaluatorIds);
      const closesAt =
        v.applicationsCloseOn === undefined
          ? current.closesAt
          : v.applicationsCloseOn === null
            ? null
            : v.applicationsCloseOn + DAY_MS;
      await tx.run(
        `UPDATE compute_calls SET applications_close_at = ?, capacity_gpus = ?, review_criteria = ?, bonuses = ?,
           tie_break = ?, utilisation_threshold_bp = ?, reclaim_policy = ?, updated_at = ? WHERE id = ?`,
        [
          closesAt,
          v.capacityGpus ?? current.capacityGpus,
          JSON.stringify(v.reviewCriteria ?? current.reviewCriteria),
          JSON.stringify(v.bonuses ?? current.bonuses),
          JSON.stringify(v.tieBreak ?? current.tieBreak),
          v.utilisationThresholdPercent ?? current.thresholdBp,
          JSON.stringify(v.reclaimPolicy ?? current.reclaimPolicy),
          Date.now(),
          id,
        ],
      );
      if (v.evaluatorIds !== undefined) {
        await tx.run('DELETE FROM compute_call_evaluators WHERE call_id = ?', [id]);
        for (const userId of new Set(v.evaluatorIds))
          await tx.run(
            'INSERT INTO compute_call_evaluators (call_id, user_id, created_at) VALUES (?, ?, ?)',
            [id, userId, Date.now()],
          );
      }
      const after = {
        ...publicCall(await this.terms(id, tx)),
        evaluatorIds: await this.evaluatorIds(id, tx),
      };
      await trail(tx, { entityId: id, before, after });
      return after;
    });
  }
}

function checkTracksAndTieBreak(
  tracks: readonly Track[],
  tieBreak: readonly TieBreak[],
  criteria: readonly ReviewCriterion[],
) {
  const seen = new Set<string>();
  tracks.forEach((t, i) => {
    if (seen.has(t.id)) throw ValidationError.of(`tracks.${i}.id`, 'track ids must be unique');
    seen.add(t.id);
  });
  const criteriaIds = new Set(criteria.map((c) => c.id));
  tieBreak.forEach((key, i) => {
    if (key.startsWith('criterion:') && !criteriaIds.has(key.slice('criterion:'.length)))
      throw ValidationError.of(
        `tieBreak.${i}`,
        `${key.slice('criterion:'.length)} is not a review criterion`,
      );
  });
}
