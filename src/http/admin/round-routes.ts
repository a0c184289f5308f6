import type { Principal } from '../../accounts/roles.ts';
import type { AuditTrail } from '../../audit/audit-log.ts';
import { ForbiddenError, NotFoundError } from '../../errors.ts';
import type { ArenaService } from '../../evaluation/ratings/arenas.ts';
import type { BattleRuns } from '../../evaluation/ratings/battle-runs.ts';
import type { RoundRecords } from '../../evaluation/rounds/round-records.ts';
import { audienceOf, roundSummary, roundView } from '../../evaluation/rounds/round-views.ts';
import type { RoundService } from '../../evaluation/rounds/rounds.ts';
import { created, list, ok } from './results.ts';
import { EVERYONE } from './roles-of-routes.ts';
import type { AdminRoute } from './router.ts';

export interface RoundDeps {
  arenas: ArenaService;
  battleRuns: BattleRuns;
  rounds: RoundService;
  roundRecords: RoundRecords;
}

/** The operator and evaluators manage rounds and arenas; closing and publishing are the operator's. */
const EVALUATORS = ['evaluator'] as const;

/**
 * Arenas (pairwise battles and their Bradley–Terry ratings) and evaluation rounds
 * (docs/evaluation-rounds.md). A round exists, for anyone but its managers, only once published — or
 * for a team's own people, who see their own team and nothing of the others until then.
 */
export function roundRoutes({ arenas, battleRuns, rounds, roundRecords }: RoundDeps): AdminRoute[] {
  /** The round and how the caller sees it; a 404 when it is not theirs to know of. */
  const visibleRound = async (p: Principal, id: string) => {
    const round = await rounds.get(id);
    const audience = audienceOf(p, round);
    if (audience === null) throw new NotFoundError('round', id);
    return { round, audience };
  };

  /** An evaluator records a batch of a round's inputs, each row naming who recorded it. */
  const recording = (
    path: string,
    entityType: string,
    record: (roundId: string, body: unknown, trail: AuditTrail, actorId: string) => Promise<unknown[]>,
  ): AdminRoute => ({
    method: 'POST',
    path: `/rounds/:id/${path}`,
    roles: EVALUATORS,
    audit: { entityType, action: 'record' },
    handle: async (r) => created({ data: await record(r.params.id!, r.body, r.trail, r.principal.actorId) }),
  });

  return [
    {
      method: 'POST',
      path: '/arenas',
      roles: EVALUATORS,
      audit: { entityType: 'arena', action: 'create' },
      handle: async (r) => created(await arenas.create(r.body, r.trail, r.principal.actorId)),
    },
    { method: 'GET', path: '/arenas', roles: EVERYONE, handle: async () => list(await arenas.list()) },
    {
      method: 'GET',
      path: '/arenas/:id/ratings',
      roles: EVERYONE,
      handle: async (r) => ok(await arenas.ratings(r.params.id!, r.query)),
    },
    {
      method: 'POST',
      path: '/arenas/:id/battles',
      roles: EVALUATORS,
      audit: { entityType: 'battle_batch', action: 'record' },
      handle: async (r) => created(await arenas.recordBattles(r.params.id!, r.body, r.trail)),
    },
    {
      // the hub asks the products and the judge itself (docs/evaluation-rounds.md#battle-runs)
      method: 'POST',
      path: '/arenas/:id/battle-runs',
      roles: EVALUATORS,
      audit: { entityType: 'battle_run', action: 'start' },
      handle: async (r) => {
        const { run, resumed } = await battleRuns.start(r.params.id!, r.body, r.trail, r.principal.actorId);
        return { status: resumed ? 200 : 201, body: { ...run, resumed } };
      },
    },
    {
      method: 'GET',
      path: '/arenas/:id/battle-runs/:runId',
      roles: EVALUATORS,
      handle: async (r) => ok(await battleRuns.view(r.params.id!, r.params.runId!)),
    },
    {
      method: 'GET',
      path: '/arenas/:id/battle-runs/:runId/items',
      roles: EVALUATORS,
      handle: async (r) => list(await battleRuns.items(r.params.id!, r.params.runId!, r.query)),
    },
    {
      // anyone signed in votes, once per prompt, as themselves
      method: 'POST',
      path: '/arenas/:id/votes',
      roles: EVERYONE,
      audit: { entityType: 'vote', action: 'create' },
      handle: async (r) => created(await arenas.vote(r.params.id!, r.body, r.principal.actorId, r.trail)),
    },

    {
      method: 'POST',
      path: '/rounds',
      roles: EVALUATORS,
      audit: { entityType: 'round', action: 'create' },
      handle: async (r) => created(await rounds.create(r.body, r.trail, r.principal.actorId)),
    },
    {
      method: 'GET',
      path: '/rounds',
      roles: EVERYONE,
      handle: async (r) => {
        const visible = [];
        for (const round of await rounds.list()) {
          const audience = audienceOf(r.principal, round);
          if (audience !== null) visible.push(roundSummary(round, audience));
        }
        return list(visible);
      },
    },
    {
      method: 'GET',
      path: '/rounds/:id',
      roles: EVERYONE,
      handle: async (r) => {
        const { round, audience } = await visibleRound(r.principal, r.params.id!);
        return ok(roundView(round, await rounds.inputs(round.id), audience));
      },
    },
    {
      method: 'PATCH',
      path: '/rounds/:id',
      roles: EVALUATORS,
      audit: { entityType: 'round', action: 'update' },
      handle: async (r) => ok(await rounds.update(r.params.id!, r.body, r.trail)),
    },
    {
      method: 'POST',
      path: '/rounds/:id/open',
      roles: EVALUATORS,
      audit: { entityType: 'round', action: 'open' },
      handle: async (r) => ok(await rounds.open(r.params.id!, r.trail)),
    },
    recording('references', 'round_reference', (id, body, trail, actorId) =>
      roundRecords.recordReferences(id, body, trail, actorId),
    ),
    recording('scores', 'round_score', (id, body, trail, actorId) =>
      roundRecords.recordScores(id, body, trail, actorId),
    ),
    {
      method: 'POST',
      path: '/rounds/:id/panel-members',
      roles: EVALUATORS,
      audit: { entityType: 'panel_member', action: 'create' },
      handle: async (r) => created({ data: await roundRecords.addMembers(r.params.id!, r.body, r.trail) }),
    },
    {
      method: 'PATCH',
      path: '/panel-members/:id',
      roles: EVALUATORS,
      audit: { entityType: 'panel_member', action: 'update' },
      handle: async (r) => ok(await roundRecords.updateMember(r.params.id!, r.body, r.trail)),
    },
    recording('panel-scores', 'panel_score', (id, body, trail, actorId) =>
      roundRecords.recordPanelScores(id, body, trail, actorId),
    ),
    {
      method: 'GET',
      path: '/rounds/:id/panel-scores',
      roles: EVALUATORS,
      handle: async (r) => {
        await rounds.get(r.params.id!);
        return list(await roundRecords.panelScores(r.params.id!));
      },
    },
    recording('gate-decisions', 'gate_decision', (id, body, trail, actorId) =>
      roundRecords.recordGateDecisions(id, body, trail, actorId),
    ),
    {
      method: 'GET',
      path: '/rounds/:id/result',
      roles: EVERYONE,
      handle: async (r) => {
        const { round, audience } = await visibleRound(r.principal, r.params.id!);
        if (audience.kind === 'team')
          throw new ForbiddenError(`the result of round ${round.id} is seen once the operator publishes it`);
        const { preview, result } = await rounds.result(round.id);
        return ok({
          roundId: round.id,
          status: round.status,
          publishedAt: round.publishedAt,
          preview,
          ...result,
        });
      },
    },
    {
      method: 'POST',
      path: '/rounds/:id/close',
      roles: [],
      audit: { entityType: 'round', action: 'close' },
      handle: async (r) => {
        const closure = await rounds.close(r.params.id!, r.trail, r.principal.actorId);
        return ok({ roundId: closure.roundId, closedAt: closure.closedAt, ...closure.result });
      },
    },
    {
      method: 'POST',
      path: '/rounds/:id/publish',
      roles: [],
      audit: { entityType: 'round', action: 'publish' },
      handle: async (r) => ok(await rounds.publish(r.params.id!, r.trail, r.principal.actorId)),
    },
  ];
}
