import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type RunRecordLike, runResultsFrom } from '../../src/evaluation/rounds/run-results.ts';
import { roundBody } from '../helpers/evaluation-round.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';

/**
 * A round reading scores from the hub's evaluation runs by id (the seam app.ts wires to the runs'
 * store): a completed run fills score, error, count, unparsed answers and suite hash; anything that
 * disagrees with the run, or with the suite the round pinned, is refused naming the field.
 */

const HASH = 'a'.repeat(64);
const OTHER_HASH = 'b'.repeat(64);

const run = (id: string, over: Partial<RunRecordLike> = {}): RunRecordLike => ({
  id,
  productId: 'prd_team',
  model: 'sovereign-0',
  status: 'completed',
  suite: { hash: HASH },
  result: { overall: { score: 0.612, stderr: 0.009, n: 3000, unparsed: 7 } },
  ...over,
});

describe('round scores from evaluation runs', () => {
  let t: TestHub;
  let roundId: string;
  let team: { organizationId: string; productId: string };
  const runs = new Map<string, RunRecordLike>([
    ['run_team', run('run_team')],
    [
      'run_global',
      run('run_global', {
        model: 'global-a',
        result: { overall: { score: 0.7, stderr: 0.008, n: 3000, unparsed: 0 } },
      }),
    ],
    ['run_running', run('run_running', { status: 'running', result: null })],
    ['run_other_suite', run('run_other_suite', { suite: { hash: OTHER_HASH } })],
    // a completed run of the same suite, but of another product than the team's
    ['run_other_product', run('run_other_product', { productId: 'prd_someone_else', model: 'other-model' })],
  ]);

  const must = async (method: string, path: string, body?: unknown) => {
    const r = await t.admin(method, path, body);
    assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };

  before(async () => {
    t = await startTestHub({}, { hub: { runResults: runResultsFrom({ get: async (id) => runs.get(id) }) } });
    const supplier = await must('POST', '/suppliers', { name: '런 공급기업' });
    const org = await must('POST', '/organizations', { name: '런 팀', class: 'large' });
    const product = await must('POST', '/products', {
      supplierId: supplier.id,
      model: 'sovereign-0',
      displayName: '런',
      purposes: ['chat'],
      modality: 'text',
      contextWindow: 8192,
      priceInputPer1M: '1',
      priceOutputPer1M: '1',
      residency: 'domestic',
    });
    team = { organizationId: org.id, productId: product.id };
    for (const r of runs.values()) if (r.productId === 'prd_team') r.productId = product.id;
    const body = roundBody([{ ...team, name: '런 팀', targetModel: 'global-a', parameters: 1e10 }], {
      survivors: 1,
    });
    body.suites = [
      { id: 'kmmlu', name: 'KMMLU', group: 'common', suiteHash: HASH, scoreMax: 1 } as any,
      { id: 'free', name: '자유', group: 'heldout' },
    ];
    roundId = (await must('POST', '/rounds', body)).id;
    await must('POST', `/rounds/${roundId}/open`);
  });
  after(async () => {
    await t?.close();
  });

  const post = (path: string, body: unknown) => t.admin('POST', `/rounds/${roundId}/${path}`, body);

  test('a completed run fills the score and is checked against the round', async () => {
    const recorded = await post('scores', {
      scores: [{ organizationId: team.organizationId, suiteId: 'kmmlu', runId: 'run_team' }],
    });
    assert.equal(recorded.status, 201, JSON.stringify(recorded.body));
    assert.deepEqual(
      { ...recorded.body.data[0] },
      {
        organizationId: team.organizationId,
        suiteId: 'kmmlu',
        score: 0.612,
        stderr: 0.009,
        n: 3000,
        unparsed: 7,
        suiteHash: HASH,
        runId: 'run_team',
        note: null,
      },
    );
    const reference = await post('references', {
      references: [{ suiteId: 'kmmlu', model: 'global-a', source: 'measured', runId: 'run_global' }],
    });
    assert.equal(reference.status, 201, JSON.stringify(reference.body));
    assert.equal(reference.body.data[0].score, 0.7);
    assert.equal(reference.body.data[0].suiteHash, HASH);
  });

  test("a team's score from a run of another product than the team's is refused (scores.N.runId)", async () => {
    const r = await post('scores', {
      scores: [{ organizationId: team.organizationId, suiteId: 'kmmlu', runId: 'run_other_product' }],
    });
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.equal(r.body.error.fields[0].field, 'scores.0.runId');
    assert.match(r.body.error.fields[0].message, /not this team's product/);
    const round = await must('GET', `/rounds/${roundId}`);
    assert.ok(!round.scores.some((s: any) => s.runId === 'run_other_product'));
  });

  test('what disagrees with the run or the round is refused by field', async () => {
    const field = async (path: string, body: unknown) => {
      const r = await post(path, body);
      assert.equal(r.status, 400, JSON.stringify(r.body));
      return r.body.error.fields[0].field as string;
    };
    const score = (over: Record<string, unknown>) => ({
      scores: [{ organizationId: team.organizationId, suiteId: 'kmmlu', ...over }],
    });
    assert.equal(await field('scores', score({ runId: 'run_running' })), 'scores.0.runId');
    assert.equal(await field('scores', score({ runId: 'run_nothing' })), 'scores.0.runId');
    assert.equal(await field('scores', score({ runId: 'run_team', score: 0.7 })), 'scores.0.score');
    assert.equal(await field('scores', score({ runId: 'run_other_suite' })), 'scores.0.suiteHash');
    // a percentage where the suite scores 0–1
    assert.equal(
      await field('scores', score({ score: 61.2, suiteHash: HASH, note: '수기 입력' })),
      'scores.0.score',
    );
    assert.equal(
      await field('references', {
        references: [{ suiteId: 'kmmlu', model: 'global-a', source: 'measured', runId: 'run_team' }],
      }),
      'references.0.model',
    );
    // the valid score recorded before is still the one kept
    const round = await must('GET', `/rounds/${roundId}`);
    assert.deepEqual(
      round.scores.map((s: any) => [s.suiteId, s.score]),
      [['kmmlu', 0.612]],
    );
  });
});
