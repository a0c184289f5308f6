import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  referenceRuns,
  roundBody,
  roundInputs,
  type TeamFixture,
  type TeamPlan,
} from '../helpers/evaluation-round.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';

/**
 * Evaluation rounds over /admin/v1 as the 2026 programme ran them: five teams, three survive, one of
 * the top four disqualified by the independence gate; a second round with a wildcard where two teams
 * are not separated by their intervals and the declared tie-break decides; results seen by the teams
 * only once the operator publishes them; a closed round never changes.
 */

async function as(t: TestHub, token: string, method: string, path: string, body?: unknown) {
  const res = await fetch(`${t.url}/admin/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, text };
}

const NAMES = ['엘지', '에스케이텔레콤', '업스테이지', '네이버클라우드', '엔씨에이아이', '모티프'];
const SIZES = [32e9, 70e9, 100e9, 14e9, 8e9, 12e9];

describe('evaluation rounds', () => {
  let t: TestHub;
  let teams: TeamFixture[];
  let evaluator: string;
  /** org_admin of the first team, org_member of the fourth; a signed-in person of no team. */
  let firstTeam: string;
  let fourthTeam: string;
  let outsider: string;
  let round1: string;

  const must = async (method: string, path: string, body?: unknown) => {
    const r = await t.admin(method, path, body);
    assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  let n = 0;
  const person = async (membership?: Record<string, unknown>) => {
    const user = await must('POST', '/users', { name: '평가 관계자', email: `eval.${n++}@example.kr` });
    if (membership) await must('POST', `/users/${user.id}/memberships`, membership);
    return (await must('POST', `/users/${user.id}/tokens`, { name: 'eval' })).token as string;
  };

  /** Records every input of a plan on an open round. */
  const record = async (roundId: string, fixtures: TeamFixture[], plans: TeamPlan[], stderr?: number) => {
    const inputs = roundInputs(fixtures, plans, stderr);
    await must('POST', `/rounds/${roundId}/references`, { references: inputs.references });
    await must('POST', `/rounds/${roundId}/scores`, { scores: inputs.scores });
    const members = await must('POST', `/rounds/${roundId}/panel-members`, { members: inputs.members });
    const ids = members.data.map((m: any) => m.id);
    await must('POST', `/rounds/${roundId}/panel-scores`, { scores: inputs.panelScores(ids) });
    await must('POST', `/rounds/${roundId}/gate-decisions`, { decisions: inputs.decisions });
    return ids as string[];
  };

  before(async () => {
    t = await startTestHub({}, { hub: { runResults: referenceRuns } });
    const supplier = await must('POST', '/suppliers', { name: '국가대표 AI 공급기업' });
    teams = [];
    for (const [i, name] of NAMES.entries()) {
      const org = await must('POST', '/organizations', { name: `${name} 컨소시엄`, class: 'large' });
      const product = await must('POST', '/products', {
        supplierId: supplier.id,
        model: `sovereign-${i}`,
        displayName: `${name} 파운데이션`,
        purposes: ['chat'],
        modality: 'text',
        contextWindow: 32768,
        priceInputPer1M: '100',
        priceOutputPer1M: '300',
        residency: 'domestic',
      });
      teams.push({
        organizationId: org.id,
        productId: product.id,
        name,
        targetModel: i === 0 ? 'global-b' : 'global-a',
        parameters: SIZES[i]!,
      });
    }
    evaluator = await person({ role: 'evaluator' });
    firstTeam = await person({ role: 'org_admin', organizationId: teams[0]!.organizationId });
    fourthTeam = await person({ role: 'org_member', organizationId: teams[3]!.organizationId });
    outsider = await person();
  });
  after(async () => {
    await t?.close();
  });

  const FIRST_ROUND: TeamPlan[] = [
    { percent: 100, expert: [90, 91, 89, 90, 90], user: [9, 9, 9, 9] },
    { percent: 96, expert: [85, 86, 84, 85, 85], user: [8.5, 8.5, 8.5, 8.5] },
    { percent: 90, expert: [80, 81, 79, 80, 80], user: [8, 8, 8, 8] },
    // second on points, but its vision encoder is a foreign model's: the gate fails it
    { percent: 99, expert: [88, 89, 87, 88, 88], user: [8.8, 8.8, 8.8, 8.8], independent: false },
    { percent: 70, expert: [60, 61, 59, 60, 60], user: [6, 6, 6, 6] },
  ];

  test('round 1: five teams, a gate disqualifies one of the top four, three survive', async () => {
    const five = teams.slice(0, 5);
    const created = await as(t, evaluator, 'POST', '/rounds', roundBody(five));
    assert.equal(created.status, 201, created.text);
    round1 = created.body.id;
    assert.equal(created.body.status, 'draft');
    assert.equal(created.body.sequence, 1);
    assert.ok(created.body.definition.teams.every((x: any) => x.entry === 'initial'));

    // inputs wait for the round to open; the definition is fixed once it does
    const early = await as(t, evaluator, 'POST', `/rounds/${round1}/scores`, {
      scores: [{ organizationId: five[0]!.organizationId, suiteId: 'kmmlu', score: 1, note: 'x' }],
    });
    assert.equal(early.status, 409, early.text);
    assert.equal((await as(t, evaluator, 'POST', `/rounds/${round1}/open`)).status, 200);
    const frozen = await as(t, evaluator, 'PATCH', `/rounds/${round1}`, { tieBreak: ['overall'] });
    assert.equal(frozen.status, 409, 'the tie-break was declared in advance');

    await record(round1, five, FIRST_ROUND);

    const preview = await as(t, evaluator, 'GET', `/rounds/${round1}/result`);
    assert.equal(preview.status, 200, preview.text);
    assert.equal(preview.body.preview, true);
    assert.equal(preview.body.complete, true, JSON.stringify(preview.body.missing));

    assert.equal(
      (await as(t, evaluator, 'POST', `/rounds/${round1}/close`)).status,
      403,
      'the operator closes',
    );
    const closed = await must('POST', `/rounds/${round1}/close`);
    const byOrg = new Map(closed.teams.map((x: any) => [x.organizationId, x]));
    const status = five.map((x) => (byOrg.get(x.organizationId) as any).status);
    assert.deepEqual(status, ['survives', 'survives', 'survives', 'disqualified', 'eliminated']);
    const naver = byOrg.get(five[3]!.organizationId) as any;
    assert.equal(naver.decidedBy, 'gate');
    assert.equal(naver.gates[0].reason, '해외 모델의 가중치를 그대로 사용');
    assert.ok(naver.overall.value > (byOrg.get(five[1]!.organizationId) as any).overall.value - 5);
    // the first team measured against its own declared target (global-b scored 40)
    const first = byOrg.get(five[0]!.organizationId) as any;
    assert.equal(first.targetModel, 'global-b');
    assert.ok(Math.abs(first.benchmark.percentOfReference.value - 100) < 1e-9);
    assert.equal(first.benchmark.reachesThreshold, true);
    assert.equal(first.benchmark.suites.length, 4, 'common, held-out and its own choice');
    assert.equal(first.benchmark.suites[0].unparsed, 2);
  });

  test('before the operator publishes, a team sees its own team only, and no result', async () => {
    const own = await as(t, firstTeam, 'GET', `/rounds/${round1}`);
    assert.equal(own.status, 200, own.text);
    assert.deepEqual(
      own.body.definition.teams.map((x: any) => x.organizationId),
      [teams[0]!.organizationId],
    );
    for (const other of teams.slice(1, 5)) {
      assert.ok(!own.text.includes(other.organizationId), `no trace of ${other.name}`);
      assert.ok(!own.text.includes(other.productId));
    }
    assert.equal(own.body.gateDecisions, undefined);
    assert.ok(own.body.scores.every((s: any) => s.organizationId === teams[0]!.organizationId));
    const result = await as(t, firstTeam, 'GET', `/rounds/${round1}/result`);
    assert.equal(result.status, 403, result.text);
    assert.ok(!result.text.includes('survives'));

    const listed = await as(t, fourthTeam, 'GET', '/rounds');
    assert.deepEqual(
      listed.body.data.map((r: any) => r.teams.map((x: any) => x.organizationId)),
      [[teams[3]!.organizationId]],
    );
    // a person of no team: the round does not exist for them
    assert.equal((await as(t, outsider, 'GET', `/rounds/${round1}`)).status, 404);
    assert.equal((await as(t, outsider, 'GET', `/rounds/${round1}/result`)).status, 404);
    assert.deepEqual((await as(t, outsider, 'GET', '/rounds')).body.data, []);
    // nor may a team read another way in
    assert.equal((await as(t, fourthTeam, 'GET', `/rounds/${round1}/panel-scores`)).status, 403);
  });

  test('published: everyone sees the result, never a panel member’s own scores', async () => {
    assert.equal((await as(t, evaluator, 'POST', `/rounds/${round1}/publish`)).status, 403);
    const published = await must('POST', `/rounds/${round1}/publish`);
    assert.ok(published.publishedAt);
    assert.equal((await t.admin('POST', `/rounds/${round1}/publish`)).status, 409, 'once');

    const result = await as(t, firstTeam, 'GET', `/rounds/${round1}/result`);
    assert.equal(result.status, 200, result.text);
    assert.equal(result.body.preview, false);
    assert.equal(result.body.teams.length, 5);
    const outside = await as(t, outsider, 'GET', `/rounds/${round1}`);
    assert.equal(outside.status, 200);
    assert.equal(outside.body.definition.teams.length, 5);
    assert.equal(outside.body.panelMembers, undefined);
    assert.equal(outside.body.gateDecisions.length, 5);
    const panel = await as(t, evaluator, 'GET', `/rounds/${round1}/panel-scores`);
    assert.equal(panel.body.data.length, 5 * 9);
  });

  test('a closed round never changes: the API refuses, and so does the database', async () => {
    const late = await as(t, evaluator, 'POST', `/rounds/${round1}/scores`, {
      scores: [{ organizationId: teams[4]!.organizationId, suiteId: 'kmmlu', score: 80, note: '재측정' }],
    });
    assert.equal(late.status, 409, late.text);
    assert.equal((await t.admin('POST', `/rounds/${round1}/close`)).status, 409);
    const db = t.hub.db;
    await assert.rejects(
      db.run("UPDATE eval_round_scores SET score = 99 WHERE round_id = ? AND suite_id = 'kmmlu'", [round1]),
      /closed evaluation round never changes/,
    );
    await assert.rejects(
      db.run('DELETE FROM eval_gate_decisions WHERE round_id = ?', [round1]),
      /never changes/,
    );
    await assert.rejects(
      db.run('UPDATE eval_round_closures SET result_json = ? WHERE round_id = ?', ['{}', round1]),
      /never changes/,
    );
    await assert.rejects(
      db.run("UPDATE eval_rounds SET status = 'open' WHERE id = ?", [round1]),
      /never changes/,
    );
  });

  test('round 2: survivors continue, a wildcard joins, and the declared tie-break settles an overlap', async () => {
    const [lg, skt, upstage, naver, nc, motif] = teams as [TeamFixture, ...TeamFixture[]];
    const four = [lg, skt!, upstage!, motif!];
    // an eliminated team continues only as a wildcard; a survivor is not a wildcard
    const bad = await as(t, evaluator, 'POST', '/rounds', {
      ...roundBody([...four, nc!]),
      previousRoundId: round1,
      survivors: 2,
      teams: roundBody([...four, nc!]).teams.map((x, i) => (i === 3 ? { ...x, entry: 'wildcard' } : x)),
    });
    assert.equal(bad.status, 400, bad.text);
    assert.deepEqual(
      bad.body.error.fields.map((f: any) => f.field),
      ['teams.4.entry'],
    );
    const notWild = await as(t, evaluator, 'POST', '/rounds', {
      ...roundBody(four),
      previousRoundId: round1,
      survivors: 2,
      teams: roundBody(four).teams.map((x, i) => (i === 1 ? { ...x, entry: 'wildcard' } : x)),
    });
    assert.equal(notWild.body.error.fields[0].field, 'teams.1.entry');
    assert.ok(naver, 'the disqualified team is not in round 2');

    const body = {
      ...roundBody(four),
      name: '2차 평가',
      previousRoundId: round1,
      survivors: 2,
      teams: roundBody(four).teams.map((x, i) => (i === 3 ? { ...x, entry: 'wildcard' } : x)),
    };
    const created = await as(t, evaluator, 'POST', '/rounds', body);
    assert.equal(created.status, 201, created.text);
    const round2 = created.body.id;
    assert.equal(created.body.sequence, 2);
    assert.deepEqual(
      created.body.definition.teams.map((x: any) => x.entry),
      ['continuing', 'continuing', 'continuing', 'wildcard'],
    );
    await must('POST', `/rounds/${round2}/open`);
    // upstage leads on points, skt on the benchmark; wide panels make their intervals overlap
    const plans: TeamPlan[] = [
      { percent: 104, expert: [92, 93, 91, 92, 92], user: [9.2, 9.2, 9.2, 9.2] },
      { percent: 94, expert: [90, 55, 85, 65, 80], user: [8, 8, 8, 8] },
      { percent: 90, expert: [95, 60, 90, 70, 85], user: [8, 8, 8, 8] },
      { percent: 75, expert: [60, 61, 59, 60, 60], user: [6, 6, 6, 6] },
    ];
    await record(round2, four, plans, 2);
    const closed = await must('POST', `/rounds/${round2}/close`);
    const by = (id: string) => closed.teams.find((x: any) => x.organizationId === id);
    assert.ok(by(upstage!.organizationId).overall.value > by(skt!.organizationId).overall.value);
    assert.equal(closed.cut.separated, false);
    assert.equal(by(skt!.organizationId).status, 'survives');
    assert.equal(by(skt!.organizationId).decidedBy, 'tie-break');
    assert.equal(by(upstage!.organizationId).status, 'eliminated');
    assert.equal(by(upstage!.organizationId).decidedBy, 'tie-break');
    assert.equal(by(motif!.organizationId).entry, 'wildcard');
    assert.equal(by(motif!.organizationId).status, 'eliminated');
    assert.equal(closed.teams.filter((x: any) => x.status === 'survives').length, 2);
    // round 1 is as it was decided
    const first = await must('GET', `/rounds/${round1}/result`);
    assert.equal(first.teams.length, 5);
    assert.equal(first.teams.filter((x: any) => x.status === 'survives').length, 3);
  });

  test('bad input is refused naming the field, and nothing is recorded', async () => {
    const five = teams.slice(0, 5);
    const weights = await as(t, evaluator, 'POST', '/rounds', {
      ...roundBody(five),
      axes: roundBody(five).axes.map((a) => (a.id === 'user' ? { ...a, weight: 30 } : a)),
    });
    assert.equal(weights.status, 400);
    assert.deepEqual(
      weights.body.error.fields.map((f: any) => f.field),
      ['axes'],
    );
    const product = await as(t, evaluator, 'POST', '/rounds', {
      ...roundBody(five),
      teams: roundBody(five).teams.map((x, i) => (i === 2 ? { ...x, productId: 'prd_nothing' } : x)),
    });
    assert.equal(product.body.error.fields[0].field, 'teams.2.productId');

    const draft = await must('POST', '/rounds', roundBody(five, { name: '검증용' }));
    await must('POST', `/rounds/${draft.id}/open`);
    const notTheirs = await as(t, evaluator, 'POST', `/rounds/${draft.id}/scores`, {
      scores: [
        { organizationId: five[0]!.organizationId, suiteId: 'kmmlu', score: 40, note: 'ok' },
        { organizationId: five[1]!.organizationId, suiteId: 'team-pick', score: 40, note: 'not its suite' },
      ],
    });
    assert.equal(notTheirs.status, 400);
    assert.equal(notTheirs.body.error.fields[0].field, 'scores.1.suiteId');
    const unsourced = await as(t, evaluator, 'POST', `/rounds/${draft.id}/scores`, {
      scores: [{ organizationId: five[0]!.organizationId, suiteId: 'kmmlu', score: 40 }],
    });
    assert.equal(unsourced.body.error.fields[0].field, 'scores.0.note');
    const fromRun = await as(t, evaluator, 'POST', `/rounds/${draft.id}/scores`, {
      scores: [{ organizationId: five[0]!.organizationId, suiteId: 'kmmlu', runId: 'run_x' }],
    });
    assert.equal(fromRun.body.error.fields[0].field, 'scores.0.runId', 'no such run');
    const published = await as(t, evaluator, 'POST', `/rounds/${draft.id}/references`, {
      references: [{ suiteId: 'kmmlu', model: 'global-a', score: 80, source: 'published', citation: '논문' }],
    });
    assert.equal(published.body.error.fields[0].field, 'references.0.protocol');
    const untargeted = await as(t, evaluator, 'POST', `/rounds/${draft.id}/references`, {
      references: [{ suiteId: 'kmmlu', model: 'global-z', source: 'measured', runId: 'run_kmmlu_global-z' }],
    });
    assert.equal(untargeted.body.error.fields[0].field, 'references.0.model');
    const members = await must('POST', `/rounds/${draft.id}/panel-members`, {
      members: [{ axisId: 'expert', name: '전문가', conflicts: [five[2]!.organizationId] }],
    });
    const partial = await as(t, evaluator, 'POST', `/rounds/${draft.id}/panel-scores`, {
      scores: [
        { memberId: members.data[0].id, organizationId: five[0]!.organizationId, scores: { strategy: 1 } },
      ],
    });
    assert.equal(partial.body.error.fields[0].field, 'scores.0.scores.capability');
    const overScale = await as(t, evaluator, 'POST', `/rounds/${draft.id}/panel-scores`, {
      scores: [
        {
          memberId: members.data[0].id,
          organizationId: five[0]!.organizationId,
          scores: { strategy: 101, capability: 1, impact: 1 },
        },
      ],
    });
    assert.equal(overScale.body.error.fields[0].field, 'scores.0.scores.strategy');
    const state = await must('GET', `/rounds/${draft.id}`);
    assert.deepEqual(state.scores, [], 'the valid first score of a refused batch is not kept');

    // a conflict declared late takes the member's scores for that team out of its mean
    const conflicted = await must('PATCH', `/panel-members/${members.data[0].id}`, {
      conflicts: [five[0]!.organizationId],
    });
    assert.deepEqual(conflicted.conflicts, [five[0]!.organizationId]);
    const badConflict = await as(t, evaluator, 'PATCH', `/panel-members/${members.data[0].id}`, {
      conflicts: ['org_nothing'],
    });
    assert.equal(badConflict.body.error.fields[0].field, 'conflicts.0');
  });

  test('every change is in the audit log with its actor', async () => {
    const entries = (await must('GET', `/audit?entityId=${round1}&limit=100`)).data as any[];
    const actions = entries.map((e) => e.action).sort();
    assert.deepEqual(actions, ['close', 'create', 'open', 'publish']);
    for (const type of ['round_reference', 'round_score', 'panel_member', 'panel_score', 'gate_decision']) {
      const logged = (await must('GET', `/audit?entityType=${type}&limit=1000`)).data as any[];
      assert.ok(logged.length > 0, type);
    }
    const scores = (await must('GET', `/audit?entityType=round_score&limit=1000`)).data as any[];
    const first = scores.find((e) => e.entityId === `${round1}/${teams[0]!.organizationId}/kmmlu`);
    assert.ok(first, 'one entry per score, named by round, team and suite');
    assert.equal(first.after.score, 40);
  });
});
