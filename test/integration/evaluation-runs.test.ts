import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { Z95 } from '../../src/evaluation/scoring/statistics.ts';
import { type FakeOpenAI, messageText, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import { type Catalog, seedCatalog, startTestHub, type TestHub } from '../helpers/hub.ts';

const FIXTURES = new URL('../fixtures/eval/', import.meta.url);
const fixture = (name: string) => readFileSync(new URL(name, FIXTURES), 'utf8');

/**
 * The fake model's answer to each KMMLU fixture item, keyed by the question's text: five right, three
 * wrong, two that name no choice (unparsed). Gold answers: 1 A, 2 B, 3 C, 4 D, 5 A, 6 B, 7 C, 8 A, 9 D, 10 B.
 */
const KMMLU_REPLIES: [question: string, reply: string, verdict: 'right' | 'wrong' | 'unparsed'][] = [
  ['대한민국의 수도는 어디인가?', 'A', 'right'],
  ['한라산이 있는 섬은?', '정답: B', 'right'],
  ['한반도에서 가장 긴 강은?', '정답은 (C)입니다.', 'right'],
  ['독도가 속한 광역자치단체는?', '정답: A', 'wrong'],
  ['동해와 서해 사이에 있는 반도는?', '잘 모르겠습니다.', 'unparsed'],
  ['12 더하기 30은?', '**B**', 'right'],
  ['7 곱하기 8은?', 'C. 56', 'right'],
  ['100을 4로 나누면?', '정답: B', 'wrong'],
  ['1,000에서 1을 빼면?', '정답: C', 'wrong'],
  ['2의 10제곱은?', '답을 고를 수 없습니다.', 'unparsed'],
];

function lastUser(messages: readonly unknown[]): string {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i] as { role?: string };
    if (m.role === 'user') return messageText(m);
  }
  return '';
}

function kmmluReply(messages: readonly unknown[]): string | undefined {
  const text = lastUser(messages);
  return KMMLU_REPLIES.find(([question]) => text.includes(question))?.[1];
}

/** The judge: 8 and 6 for the first item's turns; no score for the second item's second turn. */
function judgeReply(messages: readonly unknown[]): string | undefined {
  const system = messageText(messages[0]);
  if (!system.includes('평가자')) return undefined;
  const text = lastUser(messages);
  if (text.includes('블로그')) return text.includes('[이전 대화]') ? '요약이 짧다. [[6]]' : '생생하다. [[8]]';
  if (text.includes('[이전 대화]')) return '평가하기 어렵습니다.';
  return '정확하다. [[10]]';
}

/** Sample standard deviation over √n: the hand formula for accuracy, √(p(1 − p)/(n − 1)). */
const accuracySe = (p: number, n: number) => Math.sqrt((p * (1 - p)) / (n - 1));
const close = (actual: number, expected: number, label: string) =>
  assert.ok(Math.abs(actual - expected) < 1e-12, `${label}: ${actual} ≠ ${expected}`);

async function waitForRun(t: TestHub, id: string, timeoutMs = 30_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await t.admin('GET', `/evaluation/runs/${id}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    if (r.body.status !== 'queued' && r.body.status !== 'running') return r.body;
    assert.ok(Date.now() < deadline, `run ${id} still ${r.body.status}: ${JSON.stringify(r.body.progress)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('evaluation runs through the call layer, in the hub', () => {
  let fake: FakeOpenAI;
  let t: TestHub;
  let catalog: Catalog;

  before(async () => {
    fake = await startFakeOpenAI({
      apiKey: 'upstream-secret',
      replyFor: (messages) => judgeReply(messages) ?? kmmluReply(messages),
    });
    t = await startTestHub();
    catalog = await seedCatalog(t, fake.url);
    const judge = await t.admin('POST', '/products', {
      supplierId: catalog.supplierId,
      model: 'judge-test',
      displayName: 'Judge Test',
      purposes: ['chat'],
      modality: 'text',
      contextWindow: 32768,
      priceInputPer1M: '1000',
      priceOutputPer1M: '3000',
      residency: 'domestic',
    });
    assert.equal(judge.status, 201, JSON.stringify(judge.body));
    const d = await t.admin('POST', '/deployments', {
      productId: judge.body.id,
      adapter: 'openai-compatible',
      baseUrl: fake.url,
      apiKey: 'upstream-secret',
      upstreamModel: 'fake-chat',
    });
    assert.equal(d.status, 201, JSON.stringify(d.body));
  });
  after(async () => {
    await t?.close();
    await fake?.close();
  });

  test('multiple choice: right, wrong and unparsed answers; scores, unparsed count and standard errors equal the hand computation', async () => {
    fake.reset();
    const created = await t.admin('POST', '/evaluation/runs', {
      model: 'hcx-test',
      suite: {
        name: 'kmmlu-sample',
        data: { format: 'kmmlu', content: fixture('kmmlu-sample.csv') },
        seed: 7,
      },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.match(created.body.id, /^evr_/);
    assert.equal(created.body.itemCount, 10);
    assert.match(created.body.suite.hash, /^[0-9a-f]{64}$/);
    const run = await waitForRun(t, created.body.id);
    assert.equal(run.status, 'completed');

    const { overall, categories } = run.result;
    assert.equal(run.result.metric, 'accuracy');
    assert.deepEqual(
      {
        n: overall.n,
        correct: overall.correct,
        wrong: overall.wrong,
        unparsed: overall.unparsed,
        failed: overall.failed,
      },
      { n: 10, correct: 5, wrong: 3, unparsed: 2, failed: 0 },
    );
    assert.equal(overall.score, 0.5);
    close(overall.stderr, accuracySe(0.5, 10), 'overall SE'); // = 1/6
    close(overall.stderr, 1 / 6, 'overall SE is 1/6');
    close(overall.interval[0], 0.5 - Z95 / 6, 'interval low');
    close(overall.interval[1], 0.5 + Z95 / 6, 'interval high');
    assert.equal(overall.parsedAccuracy, 5 / 8);
    // Geography: items 1–5 (3 right, 1 wrong, 1 unparsed); Arithmetic: 6–10 (2 right, 2 wrong, 1 unparsed)
    assert.deepEqual(Object.keys(categories), ['Arithmetic', 'Geography']);
    const geo = categories.Geography;
    assert.deepEqual([geo.n, geo.correct, geo.wrong, geo.unparsed], [5, 3, 1, 1]);
    assert.equal(geo.score, 0.6);
    close(geo.stderr, accuracySe(0.6, 5), 'Geography SE');
    const math = categories.Arithmetic;
    assert.deepEqual([math.n, math.correct, math.wrong, math.unparsed], [5, 2, 2, 1]);
    assert.equal(math.score, 0.4);
    close(math.stderr, accuracySe(0.4, 5), 'Arithmetic SE');

    // one call per item, in-process: the fake saw exactly the ten prompts
    const chats = fake.requests.filter((r) => r.path === '/v1/chat/completions');
    assert.equal(chats.length, 10);
    for (const r of chats) assert.equal((r.body as any).temperature, 0);

    // per-item logs: prompt, raw answer, extracted answer, correct, unparsed
    const items = (await t.admin('GET', `/evaluation/runs/${run.id}/items?limit=100`)).body.data;
    assert.equal(items.length, 10);
    KMMLU_REPLIES.forEach(([question, reply, verdict], i) => {
      const item = items[i];
      assert.equal(item.status, 'done');
      assert.match(item.prompt.messages.at(-1).content, new RegExp(question.replace(/[?.]/g, '\\$&')));
      assert.equal(item.rawAnswer, reply);
      assert.equal(item.unparsed, verdict === 'unparsed', `${question}: unparsed`);
      assert.equal(item.correct, verdict === 'right', `${question}: correct`);
      assert.equal(item.extracted === null, verdict === 'unparsed');
      assert.equal(item.requestIds.length, 1);
    });
    const unparsedOnly = (
      await t.admin('GET', `/evaluation/runs/${run.id}/items?status=done&limit=3&afterSeq=3`)
    ).body.data;
    assert.deepEqual(
      unparsedOnly.map((i: any) => i.seq),
      [4, 5, 6],
    );

    // the manifest makes it reproducible
    const m = run.manifest;
    assert.equal(m.suite.hash, run.suite.hash);
    assert.equal(m.seed, 7);
    assert.equal(m.model, 'hcx-test');
    assert.match(m.prompt.template, /\{question\}/);
    assert.deepEqual(m.parameters, { temperature: 0, max_tokens: 256 });
    assert.equal(
      m.hubVersion,
      JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version,
    );
  });

  test('evaluation calls are usage of the evaluation organisation (class research), charged like any other', async () => {
    const orgs = (await t.admin('GET', '/organizations')).body.data;
    const account = orgs.find((o: any) => o.id === 'org_evaluation');
    assert.ok(account, 'the evaluation account exists');
    assert.equal(account.class, 'research');
    assert.equal(account.name, '평가 계정 / Evaluation account');
    const usage = (await t.admin('GET', '/usage?organizationId=org_evaluation&groupBy=product')).body;
    assert.ok(usage.totals.requests >= 10, JSON.stringify(usage.totals));
    assert.ok(BigInt(usage.totals.costMicroKrw) > 0n);
    const events = (await t.admin('GET', '/usage/events?organizationId=org_evaluation&limit=1000')).body.data;
    const items = (await t.admin('GET', '/evaluation/runs?suite=kmmlu-sample')).body.data;
    const itemLogs = (await t.admin('GET', `/evaluation/runs/${items[0].id}/items`)).body.data;
    const metered = new Set(events.map((e: any) => e.requestId));
    for (const item of itemLogs) assert.ok(metered.has(item.requestIds[0]), `${item.requestIds[0]} metered`);
  });

  test('the latest scores appear beside the product: /v1/models metadata and the admin product view', async () => {
    const client = new OpenAI({ apiKey: catalog.key, baseURL: `${t.url}/v1`, maxRetries: 0 });
    // the catalogue's scores are read again when a run finishes here
    let model: any;
    for (let i = 0; i < 50; i++) {
      model = await client.models.retrieve('hcx-test');
      if (model.metadata) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const evaluation = model.metadata.evaluations.find((e: any) => e.suite === 'kmmlu-sample');
    assert.ok(evaluation, JSON.stringify(model));
    assert.equal(evaluation.score, 0.5);
    assert.equal(evaluation.metric, 'accuracy');
    assert.equal(evaluation.unparsed, 2);
    assert.equal(evaluation.interval.length, 2);
    assert.match(evaluation.evaluatedAt, /^\d{4}-\d{2}-\d{2}T/);
    const listed = await client.models.list();
    assert.ok(listed.data.some((m: any) => m.id === 'hcx-test' && m.metadata?.evaluations?.length >= 1));
    // a product never evaluated has no metadata at all: the OpenAI shape unchanged
    assert.equal((listed.data.find((m: any) => m.id === 'embed-test') as any).metadata, undefined);

    const product = (await t.admin('GET', `/products/${catalog.productId}`)).body;
    assert.equal(product.evaluations.find((e: any) => e.suite === 'kmmlu-sample').score, 0.5);
  });

  test('HRM8K generation through the hub: right, wrong and unparseable numeric answers; scores, unparsed count and standard errors equal the hand computation', async () => {
    fake.reset();
    // by a word of each fixture question: 7 right; 60 answered 50 (wrong); 6,000 right with its comma
    // and unit; 7 not answered with any number (unparsed)
    const replies: [keyword: string, reply: string][] = [
      ['사과', '모두 7개입니다. 정답: 7'],
      ['연필', '정답은 50자루입니다.'],
      ['공책', '4권이면 6,000원입니다.'],
      ['x + 3', '잘 모르겠습니다.'],
    ];
    fake.setReplyFor((messages) => replies.find(([keyword]) => lastUser(messages).includes(keyword))?.[1]);
    try {
      const created = await t.admin('POST', '/evaluation/runs', {
        model: 'hcx-test',
        suite: {
          name: 'hrm8k-sample',
          data: { format: 'hrm8k', content: fixture('hrm8k-sample.jsonl') },
          extraction: { type: 'numeric' },
        },
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      assert.equal(created.body.itemCount, 4);
      const run = await waitForRun(t, created.body.id);
      assert.equal(run.status, 'completed');
      assert.equal(run.result.metric, 'accuracy');
      const { overall, categories } = run.result;
      assert.deepEqual(
        [overall.n, overall.correct, overall.wrong, overall.unparsed, overall.failed],
        [4, 2, 1, 1, 0],
      );
      assert.equal(overall.score, 0.5);
      close(overall.stderr, accuracySe(0.5, 4), 'overall SE'); // √(0.25/3)
      assert.equal(overall.parsedAccuracy, 2 / 3);
      // the fixture's subsets: GSM8K items 1–2 (right, wrong), KSM items 3–4 (right, unparsed)
      assert.deepEqual(Object.keys(categories).sort(), ['GSM8K', 'KSM']);
      assert.deepEqual(
        [categories.GSM8K.n, categories.GSM8K.correct, categories.GSM8K.wrong, categories.GSM8K.unparsed],
        [2, 1, 1, 0],
      );
      assert.deepEqual(
        [categories.KSM.n, categories.KSM.correct, categories.KSM.wrong, categories.KSM.unparsed],
        [2, 1, 0, 1],
      );
      close(categories.GSM8K.stderr, accuracySe(0.5, 2), 'GSM8K SE'); // 0.5
      const items = (await t.admin('GET', `/evaluation/runs/${run.id}/items`)).body.data;
      assert.deepEqual(
        items.map((i: any) => [i.extracted, i.correct, i.unparsed]),
        [
          ['7', true, false],
          ['50', false, false],
          ['6000', true, false],
          [null, false, true],
        ],
      );
      assert.equal(fake.requests.filter((r) => r.path === '/v1/chat/completions').length, 4);
    } finally {
      fake.setReplyFor((messages) => judgeReply(messages) ?? kmmluReply(messages));
    }
  });

  test('LLM-as-judge, two turns: the conversation carries the first answer, judge prompts and scores are logged, an unscored verdict is unparsed', async () => {
    fake.reset();
    const created = await t.admin('POST', '/evaluation/runs', {
      model: 'hcx-test',
      suite: {
        name: 'komt-bench-sample',
        data: { format: 'komt-bench', content: fixture('komt-bench-sample.jsonl') },
        judge: { model: 'judge-test', rubric: '정확성과 유용성' },
      },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const run = await waitForRun(t, created.body.id);
    assert.equal(run.status, 'completed');
    const overall = run.result.overall;
    assert.equal(run.result.metric, 'judge_score');
    assert.deepEqual(run.result.range, { min: 1, max: 10 });
    // item 1: turns judged 8 and 6 → 7; item 2: its second verdict has no score → unparsed
    assert.deepEqual([overall.n, overall.unparsed, overall.score], [2, 1, 7]);
    assert.equal(overall.correct, null);
    assert.equal(overall.intervalMethod, 'bootstrap');

    const items = (await t.admin('GET', `/evaluation/runs/${run.id}/items`)).body.data;
    assert.equal(items[0].score, 7);
    assert.deepEqual(
      items[0].judge.map((j: any) => [j.turn, j.score]),
      [
        [1, 8],
        [2, 6],
      ],
    );
    assert.match(items[0].judge[1].prompt[1].content, /\[이전 대화\]/);
    assert.match(items[0].judge[0].prompt[1].content, /정확성과 유용성/);
    assert.equal(items[1].unparsed, true);
    assert.equal(items[1].judge[1].score, null);
    assert.match(items[1].judge[0].prompt[1].content, /16제곱센티미터/, 'the reference goes to the judge');
    assert.equal(items[0].rawAnswer.length, 2);

    // each item's second turn was asked with the first turn and its answer
    const asked = fake.requests
      .map((r) => (r.body as any).messages)
      .filter((messages: any[]) => messages[0].role !== 'system');
    assert.equal(asked.length, 4);
    const second = asked.find((messages: any[]) => messages.length === 3);
    assert.equal(second[1].role, 'assistant');
  });

  test('bad input is refused naming the field: a malformed data file (line and field), a file path, an unknown product', async () => {
    const bad = await t.admin('POST', '/evaluation/runs', {
      model: 'hcx-test',
      suite: {
        name: 'bad',
        data: {
          format: 'kmmlu',
          content: readFileSync(new URL('malformed/kmmlu-bad-answer.csv', FIXTURES), 'utf8'),
        },
      },
    });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.fields[0].field, 'suite.data:4.answer');
    assert.match(bad.body.error.fields[0].message, /1–4/);

    const file = await t.admin('POST', '/evaluation/runs', {
      model: 'hcx-test',
      suite: { name: 'f', data: { format: 'kmmlu', file: '/etc/passwd' } },
    });
    assert.equal(file.status, 400);
    assert.equal(file.body.error.fields[0].field, 'suite.data.file');

    const model = await t.admin('POST', '/evaluation/runs', {
      model: 'no-such-model',
      suite: { name: 'm', data: { format: 'kmmlu', content: fixture('kmmlu-sample.csv') } },
    });
    assert.equal(model.status, 400);
    assert.equal(model.body.error.fields[0].field, 'model');

    const judge = await t.admin('POST', '/evaluation/runs', {
      model: 'hcx-test',
      suite: {
        name: 'j',
        data: { format: 'komt-bench', content: fixture('komt-bench-sample.jsonl') },
        judge: { model: 'no-such-judge' },
      },
    });
    assert.equal(judge.status, 400);
    assert.equal(judge.body.error.fields[0].field, 'suite.judge.model');
  });
});
