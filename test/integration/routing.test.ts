import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { type FakeOpenAI, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import { ADMIN_TOKEN, type Catalog, seedCatalog, startTestHub, type TestHub } from '../helpers/hub.ts';
import { addProduct, attemptTrace, closedPort, postV1, usageEvent } from '../helpers/v1.ts';

async function gauge(t: TestHub, deploymentId: string): Promise<number | undefined> {
  const text = await (
    await fetch(`${t.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
  ).text();
  const line = text
    .split('\n')
    .find((l) => l.startsWith('kaihub_deployment_healthy{') && l.includes(`deployment="${deploymentId}"`));
  return line === undefined ? undefined : Number(line.split(' ').at(-1));
}

const hello = [{ role: 'user' as const, content: '안녕하세요 반갑습니다' }];

describe('routing: retries, cooldowns, fallbacks', () => {
  let fake: FakeOpenAI;
  let fake2: FakeOpenAI;
  let t: TestHub;
  let catalog: Catalog;
  let dead: string;

  before(async () => {
    fake = await startFakeOpenAI({ apiKey: 'upstream-secret' });
    fake2 = await startFakeOpenAI({ apiKey: 'upstream-secret' });
    t = await startTestHub({
      KAIHUB_UPSTREAM_RETRIES: '2',
      KAIHUB_UPSTREAM_RETRY_BASE_MS: '10',
      KAIHUB_UPSTREAM_HEADERS_TIMEOUT_MS: '300',
      KAIHUB_UPSTREAM_COOLDOWN_MS: '300',
    });
    catalog = await seedCatalog(t, fake.url);
    dead = `http://127.0.0.1:${await closedPort()}/v1`;
  });
  after(async () => {
    await t?.close();
    await fake?.close();
    await fake2?.close();
  });
  beforeEach(() => {
    fake.reset();
    fake2.reset();
  });

  test('a refused deployment: the other one serves, once, and is the one named and charged', async () => {
    const { deploymentIds } = await addProduct(t, catalog, 'refuse-test', [
      { baseUrl: dead, upstreamModel: 'refuse-chat' },
      { baseUrl: fake.url, upstreamModel: 'refuse-chat' },
    ]);
    for (const stream of [false, true]) {
      const answer = await postV1(t, catalog.key, '/chat/completions', {
        model: 'refuse-test',
        messages: hello,
        stream,
      });
      assert.equal(answer.status, 200, answer.text);
      const event = await usageEvent(t, answer.requestId);
      assert.equal(event.deploymentId, deploymentIds[1]);
      assert.equal(event.status, 'ok');
      assert.ok(BigInt(event.costMicroKrw) > 0n);
      // every attempt is kept with the record, in order (the first one only while not cooling down)
      const trace = attemptTrace(event);
      assert.equal(trace.at(-1), `${deploymentIds[1]}:ok`);
      if (trace.length > 1)
        assert.deepEqual(trace, [`${deploymentIds[0]}:connect`, `${deploymentIds[1]}:ok`]);
    }
  });

  test('500 then OK: retried, one usage record, charged once, naming the deployment that answered', async () => {
    const { deploymentIds } = await addProduct(t, catalog, 'retry-test', [
      { baseUrl: fake.url, upstreamModel: 'retry-chat' },
    ]);
    fake.queueBehaviors('error:500');
    const answer = await postV1(t, catalog.key, '/chat/completions', {
      model: 'retry-test',
      messages: hello,
    });
    assert.equal(answer.status, 200, answer.text);
    assert.equal(JSON.parse(answer.text).model, 'retry-test');
    assert.equal(fake.requests.length, 2);
    const event = await usageEvent(t, answer.requestId);
    assert.equal(event.deploymentId, deploymentIds[0]);
    assert.equal(event.status, 'ok');
    assert.deepEqual(attemptTrace(event), [`${deploymentIds[0]}:http 500`, `${deploymentIds[0]}:ok`]);
    for (const a of event.attempts) {
      assert.equal(a.model, 'retry-test');
      assert.ok(Number.isInteger(a.durationMs) && a.durationMs >= 0);
    }
    const { usage } = JSON.parse(answer.text);
    assert.equal(
      BigInt(event.costMicroKrw),
      BigInt(usage.prompt_tokens * 1000 + usage.completion_tokens * 3000),
    );

    // a deployment that keeps answering 500 next to a healthy one: the healthy one serves
    const pair = await addProduct(t, catalog, 'pair-test', [
      { baseUrl: fake.url, upstreamModel: 'broken-chat' },
      { baseUrl: fake2.url, upstreamModel: 'broken-chat' },
    ]);
    fake.setBehavior('error:500', { model: 'broken-chat' });
    for (const stream of [false, true]) {
      const served = await postV1(t, catalog.key, '/chat/completions', {
        model: 'pair-test',
        messages: hello,
        stream,
      });
      assert.equal(served.status, 200, served.text);
      assert.match(served.text, /Echo:/);
      const pairEvent = await usageEvent(t, served.requestId);
      assert.equal(pairEvent.deploymentId, pair.deploymentIds[1]);
      assert.equal(pairEvent.status, 'ok');
    }
  });

  test('429 with Retry-After: the hub waits as told, then the retry answers', async () => {
    await addProduct(t, catalog, 'throttle-test', [{ baseUrl: fake.url, upstreamModel: 'throttle-chat' }]);
    fake.queueBehaviors('error:429');
    const started = Date.now();
    const answer = await postV1(t, catalog.key, '/chat/completions', {
      model: 'throttle-test',
      messages: hello,
    });
    assert.equal(answer.status, 200, answer.text);
    assert.ok(Date.now() - started >= 900, 'waited for retry-after: 1');
    assert.equal(fake.requests.length, 2);
    assert.deepEqual(
      attemptTrace(await usageEvent(t, answer.requestId)).map((a) => a.split(':')[1]),
      ['http 429', 'ok'],
    );
  });

  test('hang before the first byte: the headers timeout ends the attempt and the retry answers', async () => {
    await addProduct(t, catalog, 'hang-test', [{ baseUrl: fake.url, upstreamModel: 'hang-chat' }]);
    for (const stream of [false, true]) {
      fake.reset();
      fake.queueBehaviors('hang');
      const answer = await postV1(t, catalog.key, '/chat/completions', {
        model: 'hang-test',
        messages: hello,
        stream,
      });
      assert.equal(answer.status, 200, answer.text);
      assert.equal(fake.requests.length, 2);
      const event = await usageEvent(t, answer.requestId);
      assert.equal(event.status, 'ok');
      assert.deepEqual(
        attemptTrace(event).map((a) => a.split(':')[1]),
        ['timeout', 'ok'],
      );
    }
  });

  test('a stream cut after the first byte is not retried: the client sees the error, pays for what it got', async () => {
    await addProduct(t, catalog, 'cut-test', [{ baseUrl: fake.url, upstreamModel: 'cut-chat' }]);
    fake.queueBehaviors('reset-mid-stream');
    const answer = await postV1(t, catalog.key, '/chat/completions', {
      model: 'cut-test',
      messages: hello,
      stream: true,
    });
    assert.equal(answer.status, 200);
    assert.match(answer.text, /"error"/);
    assert.doesNotMatch(answer.text, /\[DONE\]/);
    assert.equal(fake.requests.length, 1, 'no retry after the first byte');
    const event = await usageEvent(t, answer.requestId);
    assert.ok(BigInt(event.costMicroKrw) > 0n, 'the delivered part is charged');
    assert.equal(event.usageSource, 'estimate');
    assert.notEqual(event.status, 'ok');
    // one attempt, accepted: the record is that attempt (nothing extra stored), its status says how it ended
    assert.equal(event.attempts.length, 1);
    assert.equal(event.attempts[0].outcome, 'ok');
    assert.equal(event.attempts[0].durationMs, null);
  });

  test('repeated failures cool a deployment down (admin API, /metrics); a probe brings it back', async () => {
    const {
      deploymentIds: [id],
    } = await addProduct(t, catalog, 'cool-test', [{ baseUrl: fake.url, upstreamModel: 'cool-chat' }]);
    assert.equal(await gauge(t, id!), 1);
    fake.setBehavior('error:500', { model: 'cool-chat' });
    const failed = await postV1(t, catalog.key, '/chat/completions', { model: 'cool-test', messages: hello });
    assert.equal(failed.status, 502);
    assert.equal(fake.requests.length, 3, 'first attempt and two retries');
    const failedEvent = await usageEvent(t, failed.requestId);
    assert.equal(failedEvent.costMicroKrw, '0');
    assert.deepEqual(attemptTrace(failedEvent), new Array(3).fill(`${id}:http 500`));
    const health = (await t.admin('GET', `/deployments/${id}`)).body.health;
    assert.equal(health.state, 'cooling_down');
    assert.equal(health.consecutiveFailures, 3);
    assert.ok(Date.parse(health.cooldownUntil) > Date.now());
    assert.match(health.lastError, /500/);
    const listed = (await t.admin('GET', '/deployments')).body.data.find((d: { id: string }) => d.id === id);
    assert.equal(listed.health.state, 'cooling_down');
    assert.equal(await gauge(t, id!), 0);

    // while it cools, it is skipped: no call reaches it
    const skipped = await postV1(t, catalog.key, '/chat/completions', {
      model: 'cool-test',
      messages: hello,
    });
    assert.equal(skipped.status, 503);
    assert.equal(skipped.body.error.code, 'model_unavailable');
    assert.match(skipped.text, /cooling down/);
    assert.equal(fake.requests.length, 3);
    assert.deepEqual((await usageEvent(t, skipped.requestId)).attempts, [], 'no upstream call was made');

    // after the period one request probes it; success makes it healthy
    fake.setBehavior('ok', { model: 'cool-chat' });
    await new Promise((resolve) => setTimeout(resolve, Date.parse(health.cooldownUntil) - Date.now() + 20));
    const probed = await postV1(t, catalog.key, '/chat/completions', { model: 'cool-test', messages: hello });
    assert.equal(probed.status, 200, probed.text);
    const after = (await t.admin('GET', `/deployments/${id}`)).body.health;
    assert.deepEqual(after, {
      state: 'healthy',
      consecutiveFailures: 0,
      cooldownUntil: null,
      lastError: null,
    });
    assert.equal(await gauge(t, id!), 1);
  });

  test('fallback to another product: the answer and the usage record name it, at its prices', async () => {
    const solar = await addProduct(
      t,
      catalog,
      'solar-fb',
      [{ baseUrl: fake2.url, upstreamModel: 'solar-chat' }],
      {
        priceInputPer1M: '2000',
        priceOutputPer1M: '5000',
      },
    );
    const local = await addProduct(
      t,
      catalog,
      'local-fb',
      [{ baseUrl: fake2.url, upstreamModel: 'local-chat' }],
      {
        priceInputPer1M: '0',
        priceOutputPer1M: '0',
      },
    );
    const bad = await t.admin('POST', '/products', {
      supplierId: catalog.supplierId,
      model: 'hcx-bad',
      displayName: 'x',
      purposes: ['chat'],
      modality: 'text',
      contextWindow: 1,
      priceInputPer1M: '1',
      priceOutputPer1M: '1',
      residency: 'domestic',
      fallbackModels: ['no-such-model'],
    });
    assert.equal(bad.status, 400);
    assert.match(JSON.stringify(bad.body), /fallbackModels/);
    const main = await addProduct(t, catalog, 'hcx-fb', [{ baseUrl: fake.url, upstreamModel: 'hcx-chat' }], {
      fallbackModels: ['solar-fb', 'local-fb'],
    });
    assert.deepEqual((await t.admin('GET', `/products/${main.productId}`)).body.fallbackModels, [
      'solar-fb',
      'local-fb',
    ]);
    fake.setBehavior('error:503', { model: 'hcx-chat' });

    for (const stream of [false, true]) {
      const answer = await postV1(t, catalog.key, '/chat/completions', {
        model: 'hcx-fb',
        messages: hello,
        stream,
      });
      assert.equal(answer.status, 200, answer.text);
      assert.match(answer.text, /"model":"solar-fb"/);
      assert.doesNotMatch(answer.text, /"model":"hcx-fb"/);
      const event = await usageEvent(t, answer.requestId);
      assert.equal(event.model, 'solar-fb');
      assert.equal(event.productId, solar.productId);
      assert.equal(event.deploymentId, solar.deploymentIds[0]);
      // the asked product's failed attempts first (while it is not cooling down), then the fallback's
      assert.equal(attemptTrace(event).at(-1), `${solar.deploymentIds[0]}:ok`);
      assert.equal(event.attempts.at(-1).model, 'solar-fb');
      if (event.attempts.length > 1) {
        assert.equal(event.attempts[0].model, 'hcx-fb');
        assert.equal(event.attempts[0].outcome, 'http');
        assert.equal(event.attempts[0].httpStatus, 503);
      }
      assert.equal(
        BigInt(event.costMicroKrw),
        BigInt(event.promptTokens * 2000 + event.completionTokens * 5000),
        'priced at the serving product',
      );
    }

    // the organisation's own chain wins over the product's
    const invalid = await t.admin('PATCH', `/organizations/${catalog.organizationId}`, {
      fallbackModels: { 'hcx-fb': ['nope'] },
    });
    assert.equal(invalid.status, 400);
    const patched = await t.admin('PATCH', `/organizations/${catalog.organizationId}`, {
      fallbackModels: { 'hcx-fb': ['local-fb'] },
    });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    assert.deepEqual(patched.body.fallbackModels, { 'hcx-fb': ['local-fb'] });
    const answer = await postV1(t, catalog.key, '/chat/completions', { model: 'hcx-fb', messages: hello });
    assert.equal(answer.status, 200, answer.text);
    assert.equal(JSON.parse(answer.text).model, 'local-fb');
    const event = await usageEvent(t, answer.requestId);
    assert.equal(event.deploymentId, local.deploymentIds[0]);
    assert.equal(event.costMicroKrw, '0');
    await t.admin('PATCH', `/organizations/${catalog.organizationId}`, { fallbackModels: null });
  });
});
