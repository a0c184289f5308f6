import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { type FakeOpenAI, messageText, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';

/**
 * Real hub runs feeding a round, through the wiring app.ts makes by default (`runResultsFrom` the
 * runs' store): a team's product and its declared target each run the HRM8K sample through the call
 * layer against the fake; the team's score and the measured reference are recorded by run id; the
 * round's result is the hand-computed percent of reference. And the catalogue: a run an unpublished
 * round names shows to no one, a private run never shows.
 */

const HRM8K = readFileSync(new URL('../fixtures/eval/hrm8k-sample.jsonl', import.meta.url), 'utf8');

/** Each fixture question's gold answer, by a word of its text. */
const GOLD: [keyword: string, answer: string][] = [
  ['사과', '7'],
  ['연필', '60'],
  ['공책', '6,000'],
  ['x + 3', '7'],
];

function lastUser(messages: readonly unknown[]): string {
  for (let i = messages.length - 1; i >= 0; i--)
    if ((messages[i] as { role?: string }).role === 'user') return messageText(messages[i]);
  return '';
}

/** The target model answers all four right; the team's, the first three (75% of the target's 1.0). */
function reply(messages: readonly unknown[], model: string): string | undefined {
  const text = lastUser(messages);
  const index = GOLD.findIndex(([keyword]) => text.includes(keyword));
  if (index < 0) return undefined;
  if (model === 'fake-team' && index === 3) return '정답: 8';
  return `정답: ${GOLD[index]![1]}`;
}

async function waitForRun(t: TestHub, id: string, timeoutMs = 30_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await t.admin('GET', `/evaluation/runs/${id}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    if (r.body.status !== 'queued' && r.body.status !== 'running') return r.body;
    assert.ok(Date.now() < deadline, `run ${id} still ${r.body.status}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('hub runs feeding a round, and the catalogue before publication', () => {
  let fake: FakeOpenAI;
  let t: TestHub;
  let team: { organizationId: string; productId: string };
  /** Another organisation's key: what it sees of the catalogue is what anyone outside sees. */
  let outsider: OpenAI;
  let teamRun: any;
  let targetRun: any;
  let roundId: string;

  const must = async (method: string, path: string, body?: unknown) => {
    const r = await t.admin(method, path, body);
    assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };

  const product = async (supplierId: string, model: string, upstreamModel: string) => {
    const p = await must('POST', '/products', {
      supplierId,
      model,
      displayName: model,
      purposes: ['chat'],
      modality: 'text',
      contextWindow: 8192,
      priceInputPer1M: '1',
      priceOutputPer1M: '1',
      residency: 'domestic',
    });
    await must('POST', '/deployments', {
      productId: p.id,
      adapter: 'openai-compatible',
      baseUrl: fake.url,
      apiKey: 'upstream-secret',
      upstreamModel,
    });
    return p;
  };

  const run = async (model: string, extra: Record<string, unknown> = {}) => {
    const created = await must('POST', '/evaluation/runs', {
      model,
      suite: {
        name: 'hrm8k-sample',
        data: { format: 'hrm8k', content: HRM8K },
        extraction: { type: 'numeric' },
      },
      resume: false,
      ...extra,
    });
    const done = await waitForRun(t, created.id);
    assert.equal(done.status, 'completed', JSON.stringify(done));
    return done;
  };

  /** The evaluations `/v1/models` shows beside `model` to the outsider's key. */
  const shown = async (model: string): Promise<any[]> => {
    const listed = await outsider.models.list();
    const entry = listed.data.find((m: any) => m.id === model) as any;
    assert.ok(entry, `${model} is in the outsider's catalogue`);
    return entry.metadata?.evaluations ?? [];
  };

  before(async () => {
    fake = await startFakeOpenAI({ apiKey: 'upstream-secret', replyFor: reply });
    t = await startTestHub();
    const supplier = await must('POST', '/suppliers', { name: '평가 공급기업' });
    const teamProduct = await product(supplier.id, 'sovereign-1', 'fake-team');
    await product(supplier.id, 'global-x', 'fake-global');
    const org = await must('POST', '/organizations', { name: '독자 AI 팀', class: 'large' });
    team = { organizationId: org.id, productId: teamProduct.id };
    const other = await must('POST', '/organizations', { name: '다른 팀', class: 'large' });
    const key = await must('POST', `/organizations/${other.id}/keys`, { name: 'outsider' });
    outsider = new OpenAI({ apiKey: key.key, baseURL: `${t.url}/v1`, maxRetries: 0 });

    teamRun = await run('sovereign-1');
    // the target's run is made private, as a round's runs should be: it never shows
    targetRun = await run('global-x', { private: true });
    assert.equal(targetRun.private, true);
    assert.equal(teamRun.private, false);
    assert.equal(teamRun.suite.hash, targetRun.suite.hash);

    const body = {
      name: '허브 실행 차수',
      survivors: 1,
      axes: [{ id: 'benchmark', kind: 'benchmark', name: '벤치마크', weight: 100 }],
      suites: [{ id: 'hrm8k', name: 'HRM8K', group: 'common', suiteHash: teamRun.suite.hash, scoreMax: 1 }],
      teams: [{ ...team, name: '독자 AI 팀', targetModel: 'global-x', parameters: 1e10 }],
      tieBreak: ['overall'],
    };
    roundId = (await must('POST', '/rounds', body)).id;
    await must('POST', `/rounds/${roundId}/open`);
  });
  after(async () => {
    await t?.close();
    await fake?.close();
  });

  test('a team score and a measured reference by hub run id give the hand-computed percent of reference', async () => {
    // the hand computation: the team 3 of 4 right, the target 4 of 4
    assert.equal(teamRun.result.overall.score, 0.75);
    assert.equal(targetRun.result.overall.score, 1);

    // before any round names it, the team's public run shows beside its product
    assert.equal((await shown('sovereign-1')).find((e) => e.suite === 'hrm8k-sample')?.runId, teamRun.id);

    const reference = await must('POST', `/rounds/${roundId}/references`, {
      references: [{ suiteId: 'hrm8k', model: 'global-x', source: 'measured', runId: targetRun.id }],
    });
    assert.deepEqual(
      [reference.data[0].score, reference.data[0].n, reference.data[0].suiteHash],
      [1, 4, targetRun.suite.hash],
    );
    const score = await must('POST', `/rounds/${roundId}/scores`, {
      scores: [{ organizationId: team.organizationId, suiteId: 'hrm8k', runId: teamRun.id }],
    });
    assert.deepEqual(
      [score.data[0].score, score.data[0].n, score.data[0].unparsed, score.data[0].stderr],
      [0.75, 4, 0, teamRun.result.overall.stderr],
    );
    // the target's run is of another product than the team's: refused as the team's score
    const wrong = await t.admin('POST', `/rounds/${roundId}/scores`, {
      scores: [{ organizationId: team.organizationId, suiteId: 'hrm8k', runId: targetRun.id }],
    });
    assert.equal(wrong.status, 400, JSON.stringify(wrong.body));
    assert.equal(wrong.body.error.fields[0].field, 'scores.0.runId');

    const result = await must('GET', `/rounds/${roundId}/result`);
    const mine = result.teams.find((x: any) => x.organizationId === team.organizationId);
    const suite = mine.benchmark.suites[0];
    assert.equal(suite.score, 0.75);
    assert.equal(suite.reference.score, 1);
    assert.equal(suite.reference.model, 'global-x');
    assert.ok(Math.abs(suite.percent - 75) < 1e-9, `percent ${suite.percent}`);
    assert.ok(Math.abs(mine.benchmark.percentOfReference.value - 75) < 1e-9);
    assert.equal(mine.benchmark.reachesThreshold, false);
  });

  test('a run an unpublished round names is absent from /v1/models metadata for another organisation; present once published; a private run never', async () => {
    // named by the open round: gone from the catalogue at once, for everyone
    assert.deepEqual(await shown('sovereign-1'), []);
    assert.deepEqual(await shown('global-x'), []);
    const adminView = await must('GET', `/products/${team.productId}`);
    assert.equal(adminView.evaluations ?? undefined, undefined, JSON.stringify(adminView.evaluations));

    await must('POST', `/rounds/${roundId}/close`);
    assert.deepEqual(await shown('sovereign-1'), [], 'closed is not published');

    await must('POST', `/rounds/${roundId}/publish`);
    const published = await shown('sovereign-1');
    assert.equal(published.length, 1, JSON.stringify(published));
    assert.equal(published[0].runId, teamRun.id);
    assert.equal(published[0].score, 0.75);
    // the target's run was private: published or not, it never shows
    assert.deepEqual(await shown('global-x'), []);
  });
});
