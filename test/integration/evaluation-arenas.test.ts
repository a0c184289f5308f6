import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestHub, type TestHub } from '../helpers/hub.ts';
import { seededRandom } from '../helpers/seeded-random.ts';

/**
 * Arenas over /admin/v1: a judge's battles recorded in bulk, people's votes one prompt at a time, and
 * Bradley–Terry ratings with bootstrap intervals read back.
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

describe('arenas', () => {
  let t: TestHub;
  let evaluator: string;
  let member: string;

  const must = async (method: string, path: string, body?: unknown) => {
    const r = await t.admin(method, path, body);
    assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };

  before(async () => {
    t = await startTestHub();
    const token = async (membership?: Record<string, unknown>) => {
      const user = await must('POST', '/users', { name: '투표자', email: `v${Math.random()}@example.kr` });
      if (membership) await must('POST', `/users/${user.id}/memberships`, membership);
      return (await must('POST', `/users/${user.id}/tokens`, { name: 'a' })).token as string;
    };
    evaluator = await token({ role: 'evaluator' });
    const org = await must('POST', '/organizations', { name: '투표 기관', class: 'public' });
    member = await token({ role: 'org_member', organizationId: org.id });
  });
  after(async () => {
    await t?.close();
  });

  test('a judge’s battles recorded in bulk rate the models in the order of their strengths', async () => {
    const arena = await as(t, evaluator, 'POST', '/arenas', {
      name: '한국어 대화 아레나',
      judgeModel: 'judge-70b',
      public: true,
    });
    assert.equal(arena.status, 201, arena.text);
    const strengths: Record<string, number> = {
      'hcx-005': 1.0,
      'exaone-4': 0.6,
      'solar-pro': 0.1,
      'midm-2': -0.4,
    };
    const models = Object.keys(strengths);
    const random = seededRandom(5);
    const battles = Array.from({ length: 3000 }, () => {
      const i = Math.floor(random() * 4);
      const j = (i + 1 + Math.floor(random() * 3)) % 4;
      const [a, b] = [models[i]!, models[j]!];
      const p = 1 / (1 + Math.exp(strengths[b]! - strengths[a]!));
      const roll = random();
      return { a, b, outcome: roll < 0.05 ? 'tie' : roll < 0.05 + 0.95 * p ? 'a' : 'b' };
    });
    for (let i = 0; i < battles.length; i += 1500) {
      const r = await as(t, evaluator, 'POST', `/arenas/${arena.body.id}/battles`, {
        battles: battles.slice(i, i + 1500),
      });
      assert.equal(r.status, 201, r.text);
      assert.equal(r.body.recorded, 1500);
    }
    const rated = await as(t, member, 'GET', `/arenas/${arena.body.id}/ratings?bootstrap=100&seed=3`);
    assert.equal(rated.status, 200, rated.text);
    assert.equal(rated.body.battles, 3000);
    assert.deepEqual(
      rated.body.ratings.map((r: any) => r.model),
      ['hcx-005', 'exaone-4', 'solar-pro', 'midm-2'],
    );
    for (const r of rated.body.ratings)
      assert.ok(r.lower <= r.rating && r.rating <= r.upper, JSON.stringify(r));
    assert.equal(rated.body.ratings[0].rank, 1);
    // the same question gives the same answer (and the second time from the cache)
    const again = await as(t, member, 'GET', `/arenas/${arena.body.id}/ratings?bootstrap=100&seed=3`);
    assert.deepEqual(again.body, rated.body);

    const batches = (await must('GET', '/audit?entityType=battle_batch')).data;
    assert.equal(batches.length, 2, 'one audit entry per batch');
    assert.equal(batches[0].after.recorded, 1500);
    assert.equal(batches[0].after.judgeModel, 'judge-70b');

    // a judged arena takes no votes
    const vote = await as(t, member, 'POST', `/arenas/${arena.body.id}/votes`, {
      a: 'hcx-005',
      b: 'midm-2',
      outcome: 'a',
      promptId: 'p1',
    });
    assert.equal(vote.status, 409, vote.text);
  });

  test('people vote once per prompt; ties count; bad battles are refused by field', async () => {
    const arena = await must('POST', '/arenas', { name: '시민 투표' });
    const vote = (promptId: string, outcome: string) =>
      as(t, member, 'POST', `/arenas/${arena.id}/votes`, { a: 'model-a', b: 'model-b', outcome, promptId });
    assert.equal((await vote('q1', 'a')).status, 201);
    assert.equal((await vote('q2', 'tie')).status, 201);
    const twice = await vote('q1', 'b');
    assert.equal(twice.status, 409);
    assert.equal(twice.body.error.fields[0].field, 'promptId');
    const votes = (await must('GET', '/audit?entityType=vote')).data;
    assert.equal(votes.length, 2);
    const ratings = await must('GET', `/arenas/${arena.id}/ratings`);
    const a = ratings.ratings.find((r: any) => r.model === 'model-a');
    assert.equal(a.wins, 1);
    assert.equal(a.ties, 1);

    const same = await as(t, evaluator, 'POST', `/arenas/${arena.id}/battles`, {
      source: 'human',
      battles: [
        { a: 'x', b: 'y', outcome: 'a' },
        { a: 'x', b: 'x', outcome: 'a' },
      ],
    });
    assert.equal(same.status, 400);
    assert.equal(same.body.error.fields[0].field, 'battles.1.b');
    const noJudge = await as(t, evaluator, 'POST', `/arenas/${arena.id}/battles`, {
      battles: [{ a: 'x', b: 'y', outcome: 'a' }],
    });
    assert.equal(noJudge.body.error.fields[0].field, 'judgeModel');
    const outcome = await as(t, evaluator, 'POST', `/arenas/${arena.id}/battles`, {
      source: 'human',
      battles: [{ a: 'x', b: 'y', outcome: 'draw' }],
    });
    assert.equal(outcome.body.error.fields[0].field, 'battles.0.outcome');
    const bootstrap = await as(t, member, 'GET', `/arenas/${arena.id}/ratings?bootstrap=5000`);
    assert.equal(bootstrap.body.error.fields[0].field, 'bootstrap');
    assert.equal((await as(t, member, 'POST', '/arenas', { name: 'x' })).status, 403);
    assert.equal((await must('GET', `/arenas/${arena.id}/ratings`)).battles, 2, 'nothing refused was kept');
  });
});
