import { z } from 'zod';
import type { AuditTrail } from '../audit/audit-log.ts';
import { ConflictError } from '../errors.ts';
import type { Database, SqlExecutor } from '../storage/database.ts';
import { parseInput } from '../validation.ts';
import type { ApplicationService } from './programme-applications.ts';
import type { ProgrammeService } from './programmes.ts';
import { points, weightedCentipoints } from './review-scores.ts';

const reviewInput = z.strictObject({
  /** One score per criterion of the programme, 0–100. */
  scores: z.record(z.string(), z.number().int().min(0).max(100)),
  comment: z.string().trim().max(5000).nullable().optional(),
});

export interface Review {
  applicationId: string;
  /** Shown to the operator and on one's own review only: reviewers score without naming each other. */
  reviewerId?: string;
  mine: boolean;
  scores: Record<string, number>;
  /** Σ score × weight / 100: on the criteria's 0–100 scale. */
  weightedScore: number;
  comment: string | null;
  updatedAt: string;
}

export interface ReviewSummary {
  reviews: number;
  /** The mean of the reviews' weighted scores; null before the first. */
  weightedScore: number | null;
}

/**
 * Reviewers score submitted applications on the programme's criteria. One review per reviewer and
 * application, changed until the application is decided. A reviewer sees the others' reviews only
 * once they have given their own, so that nobody scores towards the crowd.
 */
export class ReviewService {
  constructor(
    private readonly db: Database,
    private readonly programmes: ProgrammeService,
    private readonly applications: ApplicationService,
  ) {}

  async score(applicationId: string, reviewerId: string, input: unknown, trail: AuditTrail): Promise<Review> {
    const v = parseInput(reviewInput, input);
    return this.db.transaction(async (tx) => {
      const application = await this.applications.get(applicationId, tx);
      if (application.status !== 'submitted')
        throw new ConflictError(
          'status',
          `the application is ${application.status}: only submitted applications are reviewed`,
          '제출 상태의 신청서만 평가할 수 있습니다.',
        );
      const criteria = (await this.programmes.get(application.programmeId, tx)).reviewCriteria;
      if (criteria.length === 0)
        throw new ConflictError(
          'reviewCriteria',
          'the programme has no review criteria yet',
          '사업에 평가 기준이 아직 없습니다.',
        );
      const centipoints = weightedCentipoints(criteria, v.scores, 'programme');
      const before = await this.own(tx, applicationId, reviewerId);
      const now = Date.now();
      await tx.run(
        `INSERT INTO application_reviews (application_id, reviewer_id, scores, weighted_centipoints, comment, created_at,
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

  /**
   * The reviews a viewer may see: the operator all of them, named; a reviewer their own, and the
   * others (unnamed) once their own is in.
   */
  async list(applicationId: string, viewer: { reviewerId: string; operator: boolean }): Promise<Review[]> {
    const rows = await this.db.all(
      `SELECT application_id, reviewer_id, scores, weighted_centipoints, comment, updated_at FROM application_reviews
       WHERE application_id = ? ORDER BY created_at, reviewer_id`,
      [applicationId],
    );
    const reviews = rows.map((r) => toReview(r, viewer.reviewerId, viewer.operator));
    if (viewer.operator || reviews.some((r) => r.mine)) return reviews;
    return [];
  }

  /** Each application's count of reviews and mean weighted score, in one query. */
  async summaries(applicationIds: readonly string[]): Promise<Map<string, ReviewSummary>> {
    const out = new Map<string, ReviewSummary>(
      applicationIds.map((id) => [id, { reviews: 0, weightedScore: null }]),
    );
    if (applicationIds.length === 0) return out;
    const rows = await this.db.all<{ application_id: string; n: number | string; total: number | string }>(
      `SELECT application_id, COUNT(*) AS n, SUM(weighted_centipoints) AS total FROM application_reviews
       WHERE application_id IN (${applicationIds.map(() => '?').join(', ')}) GROUP BY application_id`,
      [...applicationIds],
    );
    for (const r of rows) {
      const n = Number(r.n);
      out.set(r.application_id, { reviews: n, weightedScore: points(Number(r.total) / n) });
    }
    return out;
  }

  private async own(tx: SqlExecutor, applicationId: string, reviewerId: string): Promise<Review | undefined> {
    const row = await tx.get(
      `SELECT application_id, reviewer_id, scores, weighted_centipoints, comment, updated_at FROM application_reviews
       WHERE application_id = ? AND reviewer_id = ?`,
      [applicationId, reviewerId],
    );
    return row ? toReview(row, reviewerId, true) : undefined;
  }
}

function toReview(r: Record<string, unknown>, viewerId: string, named: boolean): Review {
  const mine = r.reviewer_id === viewerId;
  return {
    applicationId: r.application_id as string,
    ...((named || mine) && { reviewerId: r.reviewer_id as string }),
    mine,
    scores: JSON.parse(r.scores as string) as Record<string, number>,
    weightedScore: points(Number(r.weighted_centipoints)),
    comment: (r.comment as string | null) ?? null,
    updatedAt: new Date(Number(r.updated_at)).toISOString(),
  };
}
