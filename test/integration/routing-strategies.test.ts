import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { type FakeOpenAI, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import { type Catalog, seedCatalog, startTestHub, type TestHub } from '../helpers/hub.ts';
import { addProduct, attemptTrace, postV1, usageEvent } from '../helpers/v1.ts';

const hello = [{ role: 'user' as const, content: '안녕하세요 반갑습니다' }];
const long = [{ role: 'user' as const, content: '하나 둘 셋 넷 다섯 여섯 일곱 여덟' }];
const calls = (fake: FakeOpenAI, model: string) =>
  fake.requests.filter((r) => (r.body as { model?: string } | undefined)?.model === model).length;

describe('routing: idle timeout, selection strategies, failures after the first byte', () => {
  let fast: FakeOpenAI;
  let other: FakeOpenAI;
  /** Sends a chunk every 1 s: longer than the hub's idle timeout. */
  let stalling: FakeOpenAI;
  /** Sends a chunk every 150 ms: within the idle timeout, though the stream lasts longer than it. */
  let paced: FakeOpenAI;
  let paced2: FakeOpenAI;
  let t: TestHub;
  let catalog: Catalog;

  before(async () => {
    fast = await startFakeOpenAI({ apiKey: 'upstream-secret' });
    other = await startFakeOpenAI({ apiKey: 'upstream-secret' });
    stalling = await startFakeOpenAI({ apiKey: 'upstream-secret', chunkDelayMs: 1000 });
    paced = await startFakeOpenAI({ apiKey: 'upstream-secret', chunkDelayMs: 150 });
    paced2 = await startFakeOpenAI({ apiKey: 'upstream-secret', chunkDelayMs: 150 });
    t = await startTestHub({
      KAIHUB_UPSTREAM_RETRIES: '2',
      KAIHUB_UPSTREAM_RETRY_BASE_MS: '10',
      KAIHUB_UPSTREAM_IDLE_TIMEOUT_MS: '400',
      KAIHUB_UPSTREAM_COOLDOWN_MS: '300',
    });
    catalog = await seedCatalog(t, fast.url);
  });
  after(async () => {
    await t?.close();
    for (const f of [fast, other, stalling, paced, paced2]) await f?.close();
  });
  beforeEach(() => {
    for (const f of [fast, other, stalling, paced, paced2]) f.reset();
  });

  test('an upstream silent for longer than the idle timeout is cut: SSE error, status timeout, only what was delivered charged, health told', async () => {
    const { deploymentIds } = await addProduct(t, catalog, 'idle-test', [
      { baseUrl: stalling.url, upstreamModel: 'idle-chat' },
    ]);
    const started = Date.now();
    const answer = await postV1(t, catalog.key, '/chat/completions', {
      model: 'idle-test',
      messages: hello,
      stream: true,
    });
    assert.equal(answer.status, 200);
    assert.match(answer.text, /"error"/);
    assert.doesNotMatch(answer.text, /\[DONE\]/);
    assert.ok(Date.now() - started < 5000, 'cut well before the total timeout');
    assert.equal(stalling.requests.length, 1, 'no retry after the first byte');
    const event = await usageEvent(t, answer.requestId);
    assert.equal(event.status, 'timeout');
    // charged only for what reached the client before the cut (docs/decisions/0008)
    const delivered = [...answer.text.matchAll(/"content":"([^"]+)"/g)].map((m) => m[1]).join('');
    if (delivered === '') assert.equal(event.costMicroKrw, '0');
    else assert.equal(event.completionTokens, Math.ceil(delivered.length / 4));
    const health = (await t.admin('GET', `/deployments/${deploymentIds[0]}`)).body.health;
    assert.equal(health.consecutiveFailures, 1);
    assert.match(health.lastError, /timeout/);

    // a stream that takes longer than the idle timeout, but never pauses that long, goes through
    await addProduct(t, catalog, 'paced-test', [{ baseUrl: paced.url, upstreamModel: 'paced-chat' }]);
    const paced1 = await postV1(t, catalog.key, '/chat/completions', {
      model: 'paced-test',
      messages: long,
      stream: true,
    });
    assert.match(paced1.text, /\[DONE\]/);
    assert.equal((await usageEvent(t, paced1.requestId)).status, 'ok');
  });

  test('a stream that breaks after the first byte counts against the deployment', async () => {
    const { deploymentIds } = await addProduct(t, catalog, 'cut-health', [
      { baseUrl: fast.url, upstreamModel: 'cut-health-chat' },
    ]);
    fast.queueBehaviors('reset-mid-stream');
    const answer = await postV1(t, catalog.key, '/chat/completions', {
      model: 'cut-health',
      messages: hello,
      stream: true,
    });
    assert.match(answer.text, /"error"/);
    const health = (await t.admin('GET', `/deployments/${deploymentIds[0]}`)).body.health;
    assert.equal(health.consecutiveFailures, 1);
    assert.match(health.lastError, /protocol/);
    // the next, complete, stream makes it healthy again
    const ok = await postV1(t, catalog.key, '/chat/completions', {
      model: 'cut-health',
      messages: hello,
      stream: true,
    });
    assert.match(ok.text, /\[DONE\]/);
    assert.equal(
      (await t.admin('GET', `/deployments/${deploymentIds[0]}`)).body.health.consecutiveFailures,
      0,
    );
  });

  test('embeddings: 500 then OK is retried, one usage record, charged once', async () => {
    fast.queueBehaviors('error:500');
    const answer = await postV1(t, catalog.key, '/embeddings', { model: 'embed-test', input: '안녕하세요' });
    assert.equal(answer.status, 200, answer.text);
    assert.equal(JSON.parse(answer.text).model, 'embed-test');
    assert.equal(fast.requests.length, 2);
    const event = await usageEvent(t, answer.requestId);
    assert.equal(event.status, 'ok');
    assert.ok(BigInt(event.costMicroKrw) > 0n);
  });

  test('priority tiers: the standby tier serves only while the first tier cannot', async () => {
    const { deploymentIds } = await addProduct(t, catalog, 'tier-test', [
      { baseUrl: fast.url, upstreamModel: 'tier-chat', priority: 0 },
      { baseUrl: other.url, upstreamModel: 'tier-chat', priority: 1 },
    ]);
    for (let i = 0; i < 6; i++) {
      const r = await postV1(t, catalog.key, '/chat/completions', { model: 'tier-test', messages: hello });
      assert.equal(r.status, 200, r.text);
    }
    assert.equal(calls(fast, 'tier-chat'), 6, 'the first tier takes everything while healthy');
    assert.equal(calls(other, 'tier-chat'), 0);

    // the first tier fails: its retries, then the standby tier answers; the record names it
    fast.setBehavior('error:503', { model: 'tier-chat' });
    const r = await postV1(t, catalog.key, '/chat/completions', { model: 'tier-test', messages: hello });
    assert.equal(r.status, 200, r.text);
    const event = await usageEvent(t, r.requestId);
    assert.equal(event.deploymentId, deploymentIds[1]);
    assert.equal(attemptTrace(event).at(-1), `${deploymentIds[1]}:ok`);
    assert.ok(
      attemptTrace(event)
        .slice(0, -1)
        .every((a) => a === `${deploymentIds[0]}:http 503`),
      attemptTrace(event).join(', '),
    );
    assert.equal(calls(other, 'tier-chat'), 1);
  });

  test('routingStrategy: validated, stored, read back; defaults to weighted', async () => {
    const base = {
      supplierId: catalog.supplierId,
      displayName: 'x',
      purposes: ['chat'],
      modality: 'text',
      contextWindow: 1,
      priceInputPer1M: '1',
      priceOutputPer1M: '1',
      residency: 'domestic',
    };
    const bad = await t.admin('POST', '/products', {
      ...base,
      model: 'strategy-bad',
      routingStrategy: 'fastest',
    });
    assert.equal(bad.status, 400);
    assert.match(JSON.stringify(bad.body), /routingStrategy/);
    const plain = await t.admin('POST', '/products', { ...base, model: 'strategy-default' });
    assert.equal(plain.status, 201);
    assert.equal(plain.body.routingStrategy, 'weighted');
    const patched = await t.admin('PATCH', `/products/${plain.body.id}`, {
      routingStrategy: 'least-in-flight',
    });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    assert.equal(patched.body.routingStrategy, 'least-in-flight');
    assert.equal(
      (await t.admin('GET', `/products/${plain.body.id}`)).body.routingStrategy,
      'least-in-flight',
    );
    const badPatch = await t.admin('PATCH', `/products/${plain.body.id}`, { routingStrategy: 'random' });
    assert.equal(badPatch.status, 400);
  });

  test('lowest-latency: each deployment is measured once, then the fast one serves', async () => {
    const { deploymentIds } = await addProduct(
      t,
      catalog,
      'latency-test',
      [
        { baseUrl: fast.url, upstreamModel: 'latency-chat' },
        { baseUrl: other.url, upstreamModel: 'latency-chat' },
      ],
      { routingStrategy: 'lowest-latency' },
    );
    other.setBehavior('slow:80', { model: 'latency-chat' });
    const served: string[] = [];
    for (let i = 0; i < 10; i++) {
      const stream = i % 2 === 1;
      const answer = await postV1(t, catalog.key, '/chat/completions', {
        model: 'latency-test',
        messages: hello,
        stream,
      });
      assert.equal(answer.status, 200, answer.text);
      served.push((await usageEvent(t, answer.requestId)).deploymentId);
    }
    assert.equal(calls(other, 'latency-chat'), 1, 'the slow one: measured once');
    assert.equal(calls(fast, 'latency-chat'), 9);
    assert.deepEqual(served.slice(2), Array(8).fill(deploymentIds[0]));
  });

  test('least-in-flight: concurrent long streams spread across both deployments', async () => {
    await addProduct(
      t,
      catalog,
      'inflight-test',
      [
        { baseUrl: paced.url, upstreamModel: 'inflight-chat' },
        { baseUrl: paced2.url, upstreamModel: 'inflight-chat' },
      ],
      { routingStrategy: 'least-in-flight' },
    );
    for (let round = 0; round < 2; round++) {
      paced.reset();
      paced2.reset();
      const answers = await Promise.all(
        Array.from({ length: 4 }, () =>
          postV1(t, catalog.key, '/chat/completions', {
            model: 'inflight-test',
            messages: long,
            stream: true,
          }),
        ),
      );
      for (const a of answers) assert.match(a.text, /\[DONE\]/);
      assert.equal(calls(paced, 'inflight-chat'), 2, `round ${round}`);
      assert.equal(calls(paced2, 'inflight-chat'), 2, `round ${round}`);
    }
  });
});
