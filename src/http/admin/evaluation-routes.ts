import type { Principal } from '../../accounts/roles.ts';
import type { EvaluationService } from '../../evaluation/runs/evaluation-service.ts';
import type { EvaluationJobs } from '../../evaluation/runs/jobs.ts';
import type { LatestScores } from '../../evaluation/runs/latest-scores.ts';
import { list, ok } from './results.ts';
import type { AdminRoute } from './router.ts';

export interface EvaluationDeps {
  evaluation: EvaluationService;
  /** Where a created run's work goes: this hub's queue, or BullMQ with REDIS_URL. */
  evaluationJobs: EvaluationJobs;
  /** Each product's latest scores, shown in the product views. */
  scores: LatestScores;
}

/** Who started a run is the operator's to see, and the starter's own; other evaluators see a run. */
function shown<R extends { createdBy: string | null }>(run: R, p: Principal): R {
  return p.operator || run.createdBy === p.actorId ? run : { ...run, createdBy: null };
}

/**
 * Evaluation runs: the operator and evaluators run suites and read every run (runs are the hub's,
 * not a tenant's; their scores are public in the catalogue).
 */
export function evaluationRoutes({ evaluation, evaluationJobs }: EvaluationDeps): AdminRoute[] {
  return [
    {
      method: 'POST',
      path: '/evaluation/runs',
      roles: ['evaluator'],
      audit: { entityType: 'evaluation_run', action: 'create' },
      handle: async (r) => {
        const { run, resumed } = await evaluation.createFromRequest(
          r.body,
          evaluationJobs.kind,
          r.principal.actorId,
          r.trail,
        );
        await evaluationJobs.enqueue(run);
        // an unfinished run of the same manifest is resumed rather than asked again from the start
        return { status: resumed ? 200 : 201, body: { ...run, resumed } };
      },
    },
    {
      method: 'GET',
      path: '/evaluation/runs',
      roles: ['evaluator'],
      handle: async (r) => list((await evaluation.list(r.query)).map((run) => shown(run, r.principal))),
    },
    {
      method: 'GET',
      path: '/evaluation/runs/:id',
      roles: ['evaluator'],
      handle: async (r) => ok(shown(await evaluation.view(r.params.id!), r.principal)),
    },
    {
      method: 'GET',
      path: '/evaluation/runs/:id/items',
      roles: ['evaluator'],
      handle: async (r) => list(await evaluation.items(r.params.id!, r.query)),
    },
  ];
}
