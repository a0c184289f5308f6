import type { Migration } from '../migrator.ts';

/**
 * A private evaluation run (docs/evaluation.md#private-runs) never shows in the catalogue: a team's
 * run made for a round, or an operator's trial, stays among evaluators. The catalogue also hides a run
 * an unpublished round names (runs/latest-scores.ts reads `eval_round_scores` and
 * `eval_round_references`), so the flag is what keeps a run hidden after publication too.
 */
export const migration028PrivateEvaluationRuns: Migration = {
  id: '028-private-evaluation-runs',
  statements: ['ALTER TABLE evaluation_runs ADD COLUMN private INTEGER NOT NULL DEFAULT 0'],
};
