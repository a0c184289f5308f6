import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type FakeOpenAI, messageText, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import { runAdminInProcess } from '../helpers/cli.ts';
import { ADMIN_TOKEN, seedCatalog, startTestHub, type TestHub } from '../helpers/hub.ts';

/**
 * Judged battles run by the hub: three products answer four prompts, a scripted judge decides each
 * pair twice with the positions swapped. Strength: alpha > beta > gamma. The script, per prompt:
 * - p1: a fair judge (the stronger answer wins in either position);
 * - p2: a position-biased judge, always [[A]]: every pair disagrees across the swap → tie;
 * - p3: fair, except beta–gamma's swapped verdict names nothing → unparsed, not recorded;
 * - p4: alpha–beta straight says [[C]] while swapped names alpha (disagreement → tie); alpha–gamma
 *   [[C]] both ways (tie); beta–gamma fair.
 * Hand computation over the pairs (alpha,beta), (alpha,gamma), (beta,gamma):
 * p1 a a a; p2 tie tie tie; p3 a a unparsed; p4 tie tie a → 11 recorded, 6 a, 0 b, 5 ties, 1 unparsed.
 */
const MODELS = ['bt-alpha', 'bt-beta', 'bt-gamma'];
const STRENGTH: Record<string, number> = { 'bt-alpha': 3, 'bt-beta': 2, 'bt-gamma': 1 };
const PROMPTS = [
  { id: 'p1', prompt: '서울의 명소를 추천해 주세요.' },
  { id: 'p2', prompt: '김치찌개 끓이는 법은?' },
  { id: 'p3', prompt: '한글의 창제 원리를 설명하세요.' },
  { id: 'p4', turns: ['부산 여행 계획을 세워 주세요.', '예산을 줄이면요?'] },
];

function judge(messages: readonly unknown[]): string {
  const text = messageText(messages[1]);
  const inA = /A(?:의 답변 시작\]|와의 대화 시작\])[\s\S]*?\[(bt-\w+)\]/.exec(text)?.[1] ?? '';
  const inB = /B(?:의 답변 시작\]|와의 대화 시작\])[\s\S]*?\[(bt-\w+)\]/.exec(text)?.[1] ?? '';
  const pair = [inA, inB].sort().join('|');
  const fair = STRENGTH[inA]! > STRENGTH[inB]! ? '[[A]]' : '[[B]]';
  if (text.includes('김치찌개')) return '첫 번째 답변이 낫다. [[A]]';
  if (text.includes('한글') && pair === 'bt-beta|bt-gamma' && inA === 'bt-gamma') return '둘 다 좋군요.';
  if (text.includes('부산') && pair === 'bt-alpha|bt-beta' && inA === 'bt-alpha') return '비슷하다 [[C]]';
  if (text.includes('부산') && pair === 'bt-alpha|bt-gamma') return '[[C]]';
  return `근거: 더 구체적이다. ${fair}`;
}

async function waitForBattleRun(t: TestHub, arenaId: string, id: string): Promise<any> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const r = await t.admin('GET', `/arenas/${arenaId}/battle-runs/${id}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    if (r.body.status !== 'running') return r.body;
    assert.ok(Date.now() < deadline, `battle run still running: ${JSON.stringify(r.body.progress)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('judged battles run by the hub', () => {
  let fake: FakeOpenAI;
  let t: TestHub;

  before(async () => {
    fake = await startFakeOpenAI({
      apiKey: 'upstream-secret',
      replyFor: (messages, model) => {
        if (model === 'bt-judge') return judge(messages);
        const last = messageText(messages.at(-1));
        return `[${model}] ${last}에 대한 답변`;
      },
    });
    t = await startTestHub();
    const catalog = await seedCatalog(t, fake.url);
    for (const model of [...MODELS, 'bt-judge']) {
      const product = await t.admin('POST', '/products', {
        supplierId: catalog.supplierId,
        model,
        displayName: model,
        purposes: ['chat'],
        modality: 'text',
        contextWindow: 32768,
        priceInputPer1M: '1000',
        priceOutputPer1M: '3000',
        residency: 'domestic',
      });
      assert.equal(product.status, 201, JSON.stringify(product.body));
      const d = await t.admin('POST', '/deployments', {
        productId: product.body.id,
        adapter: 'openai-compatible',
        baseUrl: fake.url,
        apiKey: 'upstream-secret',
        upstreamModel: model,
      });
      assert.equal(d.status, 201, JSON.stringify(d.body));
    }
  });
  after(async () => {
    await t?.close();
    await fake?.close();
  });

  test('round-robin battles judged twice with positions swapped: recorded battles, ties and unparsed equal the hand count; the Bradley–Terry order is the scripted one; a second run asks nothing', async () => {
    const arena = await t.admin('POST', '/arenas', { name: '허브 심판 아레나', judgeModel: 'bt-judge' });
    assert.equal(arena.status, 201, JSON.stringify(arena.body));
    const arenaId = arena.body.id;
    fake.reset();
    const body = { models: MODELS, prompts: PROMPTS, concurrency: 4 };
    const started = await t.admin('POST', `/arenas/${arenaId}/battle-runs`, body);
    assert.equal(started.status, 201, JSON.stringify(started.body));
    assert.equal(started.body.judgeModel, 'bt-judge', 'the arena’s judge by default');
    assert.equal(started.body.progress.total, 12);
    const run = await waitForBattleRun(t, arenaId, started.body.id);
    assert.equal(run.status, 'completed');
    assert.deepEqual(run.progress, { total: 12, pending: 0, decided: 11, unparsed: 1, failed: 0 });
    assert.deepEqual(run.outcomes, { a: 6, b: 0, tie: 5 });
    // 4 prompts × 3 models answered once each (p4 has two turns), 12 items × 2 judge calls
    assert.equal(fake.requests.length, 3 * 3 + 3 * 2 + 24);

    const ratings = (await t.admin('GET', `/arenas/${arenaId}/ratings?bootstrap=50`)).body;
    assert.equal(ratings.battles, 11);
    assert.deepEqual(
      ratings.ratings.map((r: any) => r.model),
      ['bt-alpha', 'bt-beta', 'bt-gamma'],
    );

    const items = (await t.admin('GET', `/arenas/${arenaId}/battle-runs/${run.id}/items`)).body.data;
    assert.equal(items.length, 12);
    const unparsed = items.filter((i: any) => i.status === 'unparsed');
    assert.deepEqual(
      unparsed.map((i: any) => [i.promptId, i.a, i.b, i.battleId]),
      [['p3', 'bt-beta', 'bt-gamma', null]],
    );
    assert.equal(unparsed[0].log.judge[1].verdict, '둘 다 좋군요.');
    assert.equal(unparsed[0].log.judge[1].parsed, null);
    const biased = items.find((i: any) => i.promptId === 'p2' && i.a === 'bt-alpha' && i.b === 'bt-beta');
    assert.equal(biased.outcome, 'tie');
    assert.deepEqual(
      biased.log.judge.map((j: any) => [j.order, j.positions.A, j.parsed]),
      [
        ['straight', 'bt-alpha', 'A'],
        ['swapped', 'bt-beta', 'A'],
      ],
    );
    assert.match(biased.log.judge[1].prompt[1].content, /A의 답변 시작\]\n\[bt-beta\]/);
    assert.deepEqual(biased.log.answers.a, ['[bt-alpha] 김치찌개 끓이는 법은?에 대한 답변']);
    const twoTurns = items.find((i: any) => i.promptId === 'p4' && i.a === 'bt-beta');
    assert.equal(twoTurns.log.answers.a.length, 2);
    assert.equal(twoTurns.outcome, 'a');

    // each decided item is one battle of the arena, source judge, with the judge and the prompt id
    const decided = items.filter((i: any) => i.status === 'decided');
    assert.equal(new Set(decided.map((i: any) => i.battleId)).size, 11);

    // the same run again: answered already, nothing asked
    const again = await t.admin('POST', `/arenas/${arenaId}/battle-runs`, body);
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.equal(again.body.id, run.id);
    assert.equal(again.body.resumed, true);
    await waitForBattleRun(t, arenaId, run.id);
    assert.equal(fake.requests.length, 39);
    assert.equal((await t.admin('GET', `/arenas/${arenaId}/ratings?bootstrap=0`)).body.battles, 11);

    // the calls are the evaluation account's usage
    const events = (await t.admin('GET', '/usage/events?organizationId=org_evaluation&limit=1000')).body.data;
    const metered = new Set(events.map((e: any) => e.requestId));
    for (const item of decided)
      for (const j of item.log.judge) assert.ok(metered.has(j.requestId), `${j.requestId} metered`);
    assert.equal(events.length, 39, 'every call, answers and verdicts, is one usage event');
  });

  test('a failing product leaves its items failed; running it again asks only those', async () => {
    const arena = await t.admin('POST', '/arenas', { name: '실패 아레나', judgeModel: 'bt-judge' });
    const arenaId = arena.body.id;
    fake.reset();
    fake.setBehavior('error:400', { model: 'bt-gamma' });
    const body = { models: MODELS, prompts: PROMPTS.slice(0, 1) };
    const started = await t.admin('POST', `/arenas/${arenaId}/battle-runs`, body);
    assert.equal(started.status, 201, JSON.stringify(started.body));
    const first = await waitForBattleRun(t, arenaId, started.body.id);
    assert.equal(first.status, 'incomplete');
    assert.deepEqual(first.progress, { total: 3, pending: 0, decided: 1, unparsed: 0, failed: 2 });
    const asked = fake.requests.length;
    fake.reset();
    const again = await t.admin('POST', `/arenas/${arenaId}/battle-runs`, body);
    assert.equal(again.status, 200);
    const second = await waitForBattleRun(t, arenaId, started.body.id);
    assert.equal(second.status, 'completed');
    assert.deepEqual(second.outcomes, { a: 3, b: 0, tie: 0 });
    // alpha's and beta's answers were kept: gamma once, and two items × two judge calls
    assert.equal(fake.requests.length, 1 + 4, `first run asked ${asked}`);
  });

  test('bad input loses nothing: unknown products, no judge, a non-judged suite', async () => {
    const people = await t.admin('POST', '/arenas', { name: '사람 아레나' });
    const noJudge = await t.admin('POST', `/arenas/${people.body.id}/battle-runs`, {
      models: MODELS.slice(0, 2),
      prompts: ['안녕?'],
    });
    assert.equal(noJudge.status, 400);
    assert.equal(noJudge.body.error.fields[0].field, 'judgeModel');
    const unknown = await t.admin('POST', `/arenas/${people.body.id}/battle-runs`, {
      models: ['bt-alpha', 'nope'],
      prompts: ['안녕?'],
      judgeModel: 'bt-judge',
    });
    assert.equal(unknown.status, 400);
    assert.equal(unknown.body.error.fields[0].field, 'models.1');
    const suite = await t.admin('POST', `/arenas/${people.body.id}/battle-runs`, {
      models: MODELS.slice(0, 2),
      judgeModel: 'bt-judge',
      suite: {
        name: 'komt-mini',
        data: {
          format: 'komt-bench',
          content: `${JSON.stringify({ question_id: 1, category: 'writing', turns: ['시를 써 주세요.'] })}\n`,
        },
      },
    });
    assert.equal(suite.status, 201, JSON.stringify(suite.body));
    assert.equal(suite.body.suite, 'komt-mini');
    const done = await waitForBattleRun(t, people.body.id, suite.body.id);
    assert.equal(done.progress.decided, 1);
  });

  test('kaihub eval battles run: starts, follows and prints the run; the same command again asks nothing', async () => {
    const arena = await t.admin('POST', '/arenas', { name: 'CLI 아레나' });
    const dir = mkdtempSync(join(tmpdir(), 'kaihub-battles-'));
    try {
      const prompts = join(dir, 'prompts.jsonl');
      writeFileSync(
        prompts,
        `${JSON.stringify({ question_id: 7, category: 'writing', turns: ['서울의 명소를 추천해 주세요.'] })}\n`,
      );
      const env = { KAIHUB_URL: t.url, KAIHUB_ADMIN_TOKEN: ADMIN_TOKEN };
      const args = ['eval', 'battles', 'run', arena.body.id, '--models', 'bt-gamma,bt-alpha'];
      const more = ['--prompts', prompts, '--format', 'komt-bench', '--judge', 'bt-judge', '--json'];
      fake.reset();
      const first = await runAdminInProcess([...args, ...more], env);
      assert.equal(first.code, 0, first.stderr);
      const run = JSON.parse(first.stdout);
      assert.equal(run.status, 'completed');
      assert.deepEqual(run.outcomes, { a: 0, b: 1, tie: 0 }, 'alpha (b) beats gamma (a) both ways');
      assert.equal(fake.requests.length, 4);
      const second = await runAdminInProcess([...args, ...more], env);
      assert.equal(second.code, 0, second.stderr);
      assert.equal(JSON.parse(second.stdout).id, run.id);
      assert.equal(fake.requests.length, 4, 'nothing asked again');
      const table = await runAdminInProcess([...args, ...more.slice(0, -1)], env);
      assert.match(table.stdout, /A 0 \/ B 1 \/ 무승부 tie 0/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
