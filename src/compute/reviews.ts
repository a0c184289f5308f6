import { z } from 'zod';
import type { AuditTrail } from '../audit/audit-log.ts';
import { points, weightedCentipoints } from '../billing/review-scores.ts';
import { ConflictError } from '../errors.ts';
import type { Database, SqlExecutor } from '../storage/database.ts';
import { parseInput } from '../validation.ts';
import type { ComputeApplicationService } from './applications.ts';
import type { CallService } from './calls.ts';
import { iso } from './values.ts';

const reviewInput = z.strictObject({
  /** One score per criterion of the call, 0–100. */
  scores: z.record(z.string(), z.number().int().min(0).max(100)),
  comment: z.string().trim().max(5000).nullable().optional(),
});

export interface ComputeReview {
  applicationId: string;
  /** Shown to the operator and on one's own review only. */
  reviewerId?: string;
  mine: boolean;
  scores: Record<string, number>;
  /** Σ score × weight / 100, on the criteria's 0–100 scale. */
  weightedScore: number;
  comment: string | null;
  updatedAt: string;
}

/**
 * Reviewers score submitted (or waitlisted) applications on the call's criteria; one review per
 * reviewer, changed until the application is decided. As for programmes (decision 0017), a reviewer
 * sees the others' reviews, unnamed, only once their own is in.
 */
export class ComputeReviewService {
  constructor(
    private readonly db: Database,
    private readonly calls: CallService,
    private readonly applications: ComputeApplicationService,
  ) {}

  async score(
    applicationId: string,
    reviewerId: string,
    input: unknown,
    trail: AuditTrail,
  ): Promise<ComputeReview> {
    const v = parseInput(reviewInput, input);
    return this.db.transaction(async (tx) => {
      const application = await this.applications.get(applicationId, tx);
      if (application.status !== 'submitted' && application.status !== 'waitlisted')
        throw new ConflictError(
          'status',
          `the application is ${application.status}: only submitted applications are reviewed`,
          '제출 상태의 신청서만 평가할 수 있습니다.',
        );
      const criteria = (await this.calls.terms(application.callId, tx)).reviewCriteria;
      const centipoints = weightedCentipoints(criteria, v.scores, 'call');
      const before = await this.own(tx, applicationId, reviewerId);
      const now = Date.now();
      await tx.run(
        `INSERT INTO compute_reviews (application_id, reviewer_id, scores, weighted_centipoints, comment, created_at,
           updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (application_id, reviewer_id) DO UPDATE SET scores = excluded.scores,
           weighted_centipoints = excluded.weighted_centipoints, comment = excluded.comment,
           updated_at = excluded.updated_at`,
        [applicationId, reviewerId, JSON.stringify(v.scores), centipoints, v.comment ?? null, now, now],
      );
      const after = (await this.own(tx, applicationId, reviewerId))!;
      await trail(tx, { entityId: applicationId, before, after });
      return after;
    });
  }

  async list(
    applicationId: string,
    viewer: { reviewerId: string; operator: boolean },
  ): Promise<ComputeReview[]> {
    const rows = await this.db.all(
      `SELECT application_id, reviewer_id, scores, weighted_centipoints, comment, updated_at FROM compute_reviews
       WHERE application_id = ? ORDER BY created_at, reviewer_id`,
      [applicationId],
    );
    const reviews = rows.map((r) => toReview(r, viewer.reviewerId, viewer.operator));
    if (viewer.operator || reviews.some((r) => r.mine)) return reviews;
    return [];
  }

  private async own(
    tx: SqlExecutor,
    applicationId: string,
    reviewerId: string,
  ): Promise<ComputeReview | undefined> {
    const row = await tx.get(
      `SELECT application_id, reviewer_id, scores, weighted_centipoints, comment, updated_at FROM compute_reviews
       WHERE application_id = ? AND reviewer_id = ?`,
      [applicationId, reviewerId],
    );
    return row ? toReview(row, reviewerId, true) : undefined;
  }
}

function toReview(r: Record<string, unknown>, viewerId: string, named: boolean): ComputeReview {
  const mine = r.reviewer_id === viewerId;
  return {
    applicationId: r.application_id as string,
    ...((named || mine) && { reviewerId: r.reviewer_id as string }),
    mine,
    scores: JSON.parse(r.scores as string) as Record<string, number>,
    weightedScore: points(Number(r.weighted_centipoints)),
    comment: (r.comment as string | null) ?? null,
    updatedAt: iso(r.updated_at)!,
  };
}
