import assert from 'node:assert/strict';
import type { MatrixRole, MatrixRow, Pair } from './tenant-matrix.rows.ts';
import type { Caller, Side, World } from './world.ts';

/**
 * The tenant matrix's rows for arenas and evaluation rounds (docs/evaluation-rounds.md). "Own" is a
 * round whose team is tenant A's organisation, "foreign" one whose team is B's. Rounds are the
 * operator's and the evaluators'; before publication a team's people see their own round and nothing
 * else; closing and publishing are the operator's alone. Published rounds here always have teams of
 * fresh organisations, so that nothing public ever names A or B.
 */

const all = (pair: Pair): Record<MatrixRole, Pair> => ({
  supplier_admin: pair,
  org_admin: pair,
  org_member: pair,
  evaluator: pair,
  nobody: pair,
});
const evaluatorsOnly = { ...all('403/403'), evaluator: 'ok/ok' } as Record<MatrixRole, Pair>;

/** Evaluators manage rounds: they see every team's organisation. */
const managersSeeTeams = (w: World, caller: Caller): string[] =>
  caller.who === 'evaluator' ? [w.A.organizationId, w.B.organizationId] : [];

function roundBody(w: World, organizationId: string, productId: string) {
  return {
    name: `매트릭스 차수 ${w.nonce()}`,
    survivors: 1,
    axes: [
      { id: 'benchmark', kind: 'benchmark', name: '벤치마크', weight: 50 },
      {
        id: 'expert',
        kind: 'panel',
        name: '전문가',
        weight: 50,
        criteria: [{ id: 'capability', name: '기술력', weight: 100 }],
      },
    ],
    suites: [{ id: 'kmmlu', name: 'KMMLU', group: 'common' }],
    teams: [{ organizationId, name: '팀', productId, targetModel: 'global-a' }],
    gates: [{ id: 'independence', name: '독자성' }],
    tieBreak: ['lot'],
  };
}

const reference = {
  suiteId: 'kmmlu',
  model: 'global-a',
  score: 80,
  source: 'published',
  citation: '모델 카드',
  protocol: '5-shot',
};

async function openRound(w: World, organizationId: string, productId: string): Promise<string> {
  const round = await w.must('POST', '/rounds', roundBody(w, organizationId, productId));
  await w.must('POST', `/rounds/${round.id}/open`);
  return round.id;
}

/** A round with every input recorded, ready to close; `closed`: closed too. */
async function completeRound(w: World, organizationId: string, productId: string, closed: boolean) {
  const id = await openRound(w, organizationId, productId);
  await w.must('POST', `/rounds/${id}/references`, { references: [reference] });
  await w.must('POST', `/rounds/${id}/scores`, {
    scores: [{ organizationId, suiteId: 'kmmlu', score: 76, stderr: 1, n: 500, note: '측정' }],
  });
  const member = (
    await w.must('POST', `/rounds/${id}/panel-members`, { members: [{ axisId: 'expert', name: '위원' }] })
  ).data[0].id;
  await w.must('POST', `/rounds/${id}/panel-scores`, {
    scores: [{ memberId: member, organizationId, scores: { capability: 80 } }],
  });
  await w.must('POST', `/rounds/${id}/gate-decisions`, {
    decisions: [
      { gateId: 'independence', organizationId, passed: true, evidence: '로그', reason: '독자 학습' },
    ],
  });
  if (closed) await w.must('POST', `/rounds/${id}/close`);
  return id;
}

/** One open round per side (its team: that side's organisation), with one panel member. */
const sharedRounds = new WeakMap<Side, Promise<{ roundId: string; memberId: string }>>();
function sharedRound(w: World, s: Side) {
  let shared = sharedRounds.get(s);
  if (shared === undefined) {
    shared = (async () => {
      const roundId = await openRound(w, s.organizationId, s.productId);
      const member = await w.must('POST', `/rounds/${roundId}/panel-members`, {
        members: [{ axisId: 'expert', name: '매트릭스 위원' }],
      });
      return { roundId, memberId: member.data[0].id as string };
    })();
    sharedRounds.set(s, shared);
  }
  return shared;
}

/** One arena per world where people vote, with a few battles. */
const arenas = new WeakMap<World, Promise<string>>();
function sharedArena(w: World): Promise<string> {
  let id = arenas.get(w);
  if (id === undefined) {
    id = (async () => {
      const arena = await w.must('POST', '/arenas', { name: `매트릭스 아레나 ${w.nonce()}` });
      await w.must('POST', `/arenas/${arena.id}/battles`, {
        source: 'human',
        battles: [
          { a: 'model-x', b: 'model-y', outcome: 'a' },
          { a: 'model-y', b: 'model-x', outcome: 'tie' },
        ],
      });
      return arena.id as string;
    })();
    arenas.set(w, id);
  }
  return id;
}

/** An organisation no other row knows, for rounds that end up public. */
async function freshTeam(w: World): Promise<string> {
  return (await w.must('POST', '/organizations', { name: `공개 팀 ${w.nonce()}`, class: 'large' })).id;
}

/** An arena judged by side s's product, where the hub runs battles between A's and B's products. */
const judgedArenas = new WeakMap<Side, Promise<string>>();
function judgedArena(w: World, s: Side): Promise<string> {
  let id = judgedArenas.get(s);
  if (id === undefined) {
    id = w
      .must('POST', '/arenas', { name: `심판 아레나 ${w.nonce()}`, judgeModel: s.model })
      .then((a) => a.id as string);
    judgedArenas.set(s, id);
  }
  return id;
}

/** One prompt between A's and B's products, under a prompt id of its own (a new run each time). */
const battleRunBody = (w: World) => ({
  models: [w.A.model, w.B.model],
  prompts: [{ id: `p-${w.nonce()}`, prompt: '안녕하세요?' }],
});

const battleRuns = new WeakMap<Side, Promise<{ arenaId: string; runId: string }>>();
function sharedBattleRun(w: World, s: Side) {
  let run = battleRuns.get(s);
  if (run === undefined) {
    run = (async () => {
      const arenaId = await judgedArena(w, s);
      const r = await w.must('POST', `/arenas/${arenaId}/battle-runs`, battleRunBody(w));
      return { arenaId, runId: r.id as string };
    })();
    battleRuns.set(s, run);
  }
  return run;
}

export const EVALUATION_ROWS: MatrixRow[] = [
  // --- arenas: evaluators record judges' battles; anyone signed in reads ratings and votes -----------
  {
    method: 'POST',
    route: '/arenas',
    expect: evaluatorsOnly,
    request: async (w) => ({ path: '/arenas', body: { name: `아레나 ${w.nonce()}`, judgeModel: 'judge-x' } }),
  },
  { method: 'GET', route: '/arenas', expect: all('ok/ok'), request: async () => ({ path: '/arenas' }) },
  {
    method: 'GET',
    route: '/arenas/:id/ratings',
    expect: all('ok/ok'),
    request: async (w) => ({ path: `/arenas/${await sharedArena(w)}/ratings?bootstrap=20` }),
    check: (body) => assert.deepEqual(body.ratings.map((r: any) => r.model).sort(), ['model-x', 'model-y']),
  },
  {
    method: 'POST',
    route: '/arenas/:id/battles',
    expect: evaluatorsOnly,
    request: async (w) => ({
      path: `/arenas/${await sharedArena(w)}/battles`,
      body: { source: 'human', battles: [{ a: 'model-x', b: 'model-y', outcome: 'b' }] },
    }),
  },
  {
    method: 'POST',
    route: '/arenas/:id/battle-runs',
    expect: evaluatorsOnly,
    request: async (w, s) => ({
      path: `/arenas/${await judgedArena(w, s)}/battle-runs`,
      body: battleRunBody(w),
    }),
  },
  {
    method: 'GET',
    route: '/arenas/:id/battle-runs/:runId',
    expect: evaluatorsOnly,
    request: async (w, s) => {
      const { arenaId, runId } = await sharedBattleRun(w, s);
      return { path: `/arenas/${arenaId}/battle-runs/${runId}` };
    },
  },
  {
    method: 'GET',
    route: '/arenas/:id/battle-runs/:runId/items',
    expect: evaluatorsOnly,
    request: async (w, s) => {
      const { arenaId, runId } = await sharedBattleRun(w, s);
      return { path: `/arenas/${arenaId}/battle-runs/${runId}/items` };
    },
    check: (body) => assert.equal(body.data.length, 1),
  },
  {
    method: 'POST',
    route: '/arenas/:id/votes',
    expect: all('ok/ok'),
    request: async (w) => ({
      path: `/arenas/${await sharedArena(w)}/votes`,
      body: { a: 'model-x', b: 'model-y', outcome: 'tie', promptId: `p-${w.nonce()}` },
    }),
  },

  // --- rounds: the operator's and evaluators'; a team's people see their own round until publication
  {
    method: 'POST',
    route: '/rounds',
    expect: evaluatorsOnly,
    request: async (w, s) => ({ path: '/rounds', body: roundBody(w, s.organizationId, s.productId) }),
    visible: managersSeeTeams,
  },
  {
    method: 'GET',
    route: '/rounds',
    expect: all('ok/ok'),
    request: async (w, s) => {
      await sharedRound(w, s);
      return { path: '/rounds' };
    },
    check(body, w, _side, caller) {
      if (caller.isOperator || caller.who === 'evaluator') return;
      const teams = body.data.flatMap((r: any) => r.teams.map((t: any) => t.organizationId));
      const own = caller.who === 'org_admin' || caller.who === 'org_member';
      assert.equal(teams.includes(w.A.organizationId), own, 'a team sees its own rounds');
    },
    visible: managersSeeTeams,
  },
  {
    method: 'GET',
    route: '/rounds/:id',
    expect: { ...all('404/404'), evaluator: 'ok/ok', org_admin: 'ok/404', org_member: 'ok/404' },
    request: async (w, s) => ({ path: `/rounds/${(await sharedRound(w, s)).roundId}` }),
    visible: managersSeeTeams,
  },
  {
    method: 'PATCH',
    route: '/rounds/:id',
    expect: evaluatorsOnly,
    request: async (w, s) => {
      const round = await w.must('POST', '/rounds', roundBody(w, s.organizationId, s.productId));
      return { path: `/rounds/${round.id}`, body: { name: `바뀐 이름 ${w.nonce()}` } };
    },
    visible: managersSeeTeams,
  },
  {
    method: 'POST',
    route: '/rounds/:id/open',
    expect: evaluatorsOnly,
    request: async (w, s) => {
      const round = await w.must('POST', '/rounds', roundBody(w, s.organizationId, s.productId));
      return { path: `/rounds/${round.id}/open` };
    },
    visible: managersSeeTeams,
  },
  {
    method: 'POST',
    route: '/rounds/:id/references',
    expect: evaluatorsOnly,
    request: async (w, s) => ({
      path: `/rounds/${(await sharedRound(w, s)).roundId}/references`,
      body: { references: [reference] },
    }),
  },
  {
    method: 'POST',
    route: '/rounds/:id/scores',
    expect: evaluatorsOnly,
    request: async (w, s) => ({
      path: `/rounds/${(await sharedRound(w, s)).roundId}/scores`,
      body: { scores: [{ organizationId: s.organizationId, suiteId: 'kmmlu', score: 70, note: '측정' }] },
    }),
    visible: managersSeeTeams,
  },
  {
    method: 'POST',
    route: '/rounds/:id/panel-members',
    expect: evaluatorsOnly,
    request: async (w, s) => ({
      path: `/rounds/${(await sharedRound(w, s)).roundId}/panel-members`,
      body: { members: [{ axisId: 'expert', name: `위원 ${w.nonce()}` }] },
    }),
  },
  {
    method: 'PATCH',
    route: '/panel-members/:id',
    expect: evaluatorsOnly,
    request: async (w, s) => ({
      path: `/panel-members/${(await sharedRound(w, s)).memberId}`,
      body: { conflicts: [s.organizationId] },
    }),
    visible: managersSeeTeams,
  },
  {
    method: 'POST',
    route: '/rounds/:id/panel-scores',
    expect: evaluatorsOnly,
    request: async (w, s) => {
      const { roundId, memberId } = await sharedRound(w, s);
      return {
        path: `/rounds/${roundId}/panel-scores`,
        body: { scores: [{ memberId, organizationId: s.organizationId, scores: { capability: 70 } }] },
      };
    },
    visible: managersSeeTeams,
  },
  {
    method: 'GET',
    route: '/rounds/:id/panel-scores',
    expect: evaluatorsOnly,
    request: async (w, s) => ({ path: `/rounds/${(await sharedRound(w, s)).roundId}/panel-scores` }),
    visible: managersSeeTeams,
  },
  {
    method: 'POST',
    route: '/rounds/:id/gate-decisions',
    expect: evaluatorsOnly,
    request: async (w, s) => ({
      path: `/rounds/${(await sharedRound(w, s)).roundId}/gate-decisions`,
      body: {
        decisions: [
          {
            gateId: 'independence',
            organizationId: s.organizationId,
            passed: true,
            evidence: 'e',
            reason: 'r',
          },
        ],
      },
    }),
    visible: managersSeeTeams,
  },
  {
    // a team's people know the round, but not its result until the operator publishes it
    method: 'GET',
    route: '/rounds/:id/result',
    expect: { ...all('404/404'), evaluator: 'ok/ok', org_admin: '403/404', org_member: '403/404' },
    request: async (w, s) => ({ path: `/rounds/${(await sharedRound(w, s)).roundId}/result` }),
    visible: managersSeeTeams,
  },
  {
    method: 'POST',
    route: '/rounds/:id/close',
    expect: all('403/403'),
    request: async (w, s, _side, caller) =>
      // a complete round for the operator, whose close must succeed; any round for the others
      caller.isOperator
        ? { path: `/rounds/${await completeRound(w, s.organizationId, s.productId, false)}/close` }
        : { path: `/rounds/${(await sharedRound(w, s)).roundId}/close` },
  },
  {
    method: 'POST',
    route: '/rounds/:id/publish',
    expect: all('403/403'),
    request: async (w, s, _side, caller) =>
      caller.isOperator
        ? { path: `/rounds/${await completeRound(w, await freshTeam(w), s.productId, true)}/publish` }
        : { path: `/rounds/${(await sharedRound(w, s)).roundId}/publish` },
  },
];
