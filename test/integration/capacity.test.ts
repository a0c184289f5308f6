import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Agent, request as undiciRequest } from 'undici';
import { type GatedUpstream, startGatedUpstream } from '../fakes/gated-upstream.ts';
import { type FakeOpenAI, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/databases.ts';
import { ADMIN_TOKEN, type Catalog, seedCatalog, startTestHub, type TestHub } from '../helpers/hub.ts';
import { type HubProcess, spawnHub } from '../helpers/hub-process.ts';
import { addProduct, postV1, usageEvent } from '../helpers/v1.ts';

const say = (label: string) => [{ role: 'user', content: label }];

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function deployment(t: TestHub, productId: string, baseUrl: string, maxConcurrent?: number) {
  const created = await t.admin('POST', '/deployments', {
    productId,
    adapter: 'openai-compatible',
    baseUrl,
    upstreamModel: 'gated',
    ...(maxConcurrent !== undefined && { maxConcurrent }),
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  return created.body.id as string;
}

describe('concurrency towards suppliers: caps, peers, a fair queue with a deadline', () => {
  let gate: GatedUpstream;
  let t: TestHub;
  let catalog: Catalog;
  let orgB: string;
  before(async () => {
    gate = await startGatedUpstream();
    t = await startTestHub({ KAIHUB_QUEUE_TIMEOUT_MS: '1500', KAIHUB_UPSTREAM_RETRIES: '0' });
    catalog = await seedCatalog(t, gate.url);
    const org = await t.admin('POST', '/organizations', { name: '나중기관', class: 'sme' });
    orgB = (await t.admin('POST', `/organizations/${org.body.id}/keys`, {})).body.key;
  });
  after(async () => {
    for (const h of [...gate.held]) h.release();
    await t?.close();
    await gate?.close();
  });

  test('a full deployment sends the call to its peer; when all are full, calls wait and are served round robin across organisations', async () => {
    const { productId } = await addProduct(t, catalog, 'cap-fair', []);
    const only = await deployment(t, productId, gate.url, 1);
    const pending = [postV1(t, catalog.key, '/chat/completions', { model: 'cap-fair', messages: say('A1') })];
    await gate.waitForArrivals(1);
    // the slot is taken: these wait, A's two first, then B's
    pending.push(postV1(t, catalog.key, '/chat/completions', { model: 'cap-fair', messages: say('A2') }));
    pending.push(postV1(t, catalog.key, '/chat/completions', { model: 'cap-fair', messages: say('A3') }));
    await until(
      async () => (await t.admin('GET', `/deployments/${only}`)).body.load.queued === 2,
      'A2, A3 queued',
    );
    pending.push(postV1(t, orgB, '/chat/completions', { model: 'cap-fair', messages: say('B1') }));
    const shown = await until(
      async () => (await t.admin('GET', `/deployments/${only}`)).body.load.queued === 3,
      'B1 queued',
    );
    assert.equal(shown, undefined);
    const view = (await t.admin('GET', `/deployments/${only}`)).body;
    assert.equal(view.maxConcurrent, 1);
    assert.deepEqual(view.load, { inFlight: 1, maxConcurrent: 1, queued: 3 });
    const metrics = await (
      await fetch(`${t.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
    ).text();
    assert.match(metrics, new RegExp(`kaihub_deployment_in_flight\\{[^}]*deployment="${only}"[^}]*\\} 1`));
    assert.match(
      metrics,
      new RegExp(`kaihub_deployment_max_concurrent\\{[^}]*deployment="${only}"[^}]*\\} 1`),
    );
    assert.match(metrics, /kaihub_deployment_queued\{[^}]*product="cap-fair"[^}]*\} 3/);
    for (let served = 1; served <= 4; served++) {
      await gate.waitForArrivals(served);
      gate.held[0]!.release();
    }
    const answers = await Promise.all(pending);
    for (const a of answers) assert.equal(a.status, 200, a.text);
    // A2 waited first; then B's first call comes before A's second: one turn each, not first come first served
    assert.deepEqual(gate.arrivals.slice(-4), ['A1', 'A2', 'B1', 'A3']);

    // two deployments of one slot each: the second call goes to the peer at once
    const { productId: twin } = await addProduct(t, catalog, 'cap-twin', []);
    const [d1, d2] = [await deployment(t, twin, gate.url, 1), await deployment(t, twin, gate.url, 1)];
    const before = gate.arrivals.length;
    const first = postV1(t, catalog.key, '/chat/completions', { model: 'cap-twin', messages: say('T1') });
    const second = postV1(t, catalog.key, '/chat/completions', { model: 'cap-twin', messages: say('T2') });
    await gate.waitForArrivals(before + 2);
    const loads = await Promise.all(
      [d1, d2].map(async (id) => (await t.admin('GET', `/deployments/${id}`)).body.load),
    );
    assert.deepEqual(
      loads.map((l) => l.inFlight),
      [1, 1],
      'one call on each',
    );
    for (const h of [...gate.held]) h.release();
    assert.deepEqual(
      (await Promise.all([first, second])).map((a) => a.status),
      [200, 200],
    );
  });

  test('a call that finds every slot taken until the deadline gets a clear 503, recorded, not charged', async () => {
    const { productId } = await addProduct(t, catalog, 'cap-deadline', []);
    await deployment(t, productId, gate.url, 1);
    const holder = postV1(t, catalog.key, '/chat/completions', { model: 'cap-deadline', messages: say('H') });
    const arrived = gate.arrivals.length;
    await gate.waitForArrivals(arrived);
    await until(() => gate.held.some((h) => h.label === 'H'), 'the holder');
    const started = Date.now();
    const late = await postV1(t, catalog.key, '/chat/completions', {
      model: 'cap-deadline',
      messages: say('L'),
    });
    const waited = Date.now() - started;
    assert.equal(late.status, 503);
    assert.equal(late.body.error.code, 'upstream_capacity_exhausted');
    assert.equal(late.headers.get('retry-after'), '1');
    assert.ok(waited >= 1400 && waited < 4000, `waited ${waited} ms for the 1,500 ms deadline`);
    const event = await usageEvent(t, late.requestId);
    assert.equal(event.status, 'rejected');
    assert.equal(event.costMicroKrw, '0');
    gate.held.find((h) => h.label === 'H')!.release();
    assert.equal((await holder).status, 200);
  });

  test("an organisation's own cap refuses its next call with 429, and another organisation is not affected", async () => {
    const { productId } = await addProduct(t, catalog, 'org-cap', []);
    await deployment(t, productId, gate.url);
    const patched = await t.admin('PATCH', `/organizations/${catalog.organizationId}`, {
      maxConcurrentRequests: 2,
    });
    assert.equal(patched.status, 200);
    assert.equal(patched.body.maxConcurrentRequests, 2);
    const before = gate.arrivals.length;
    const open = [1, 2].map((i) =>
      postV1(t, catalog.key, '/chat/completions', { model: 'org-cap', messages: say(`O${i}`), stream: true }),
    );
    await gate.waitForArrivals(before + 2);
    const refused = await postV1(t, catalog.key, '/chat/completions', {
      model: 'org-cap',
      messages: say('O3'),
    });
    assert.equal(refused.status, 429);
    assert.equal(refused.body.error.code, 'concurrency_limit_exceeded');
    assert.ok(refused.headers.get('retry-after'));
    const other = postV1(t, orgB, '/chat/completions', { model: 'org-cap', messages: say('OB') });
    await gate.waitForArrivals(before + 3);
    for (const h of [...gate.held]) h.release();
    assert.equal((await other).status, 200);
    for (const a of await Promise.all(open)) assert.equal(a.status, 200);
    await t.admin('PATCH', `/organizations/${catalog.organizationId}`, { maxConcurrentRequests: null });
  });
});

describe('one organisation cannot exhaust a supplier for another', () => {
  let fake: FakeOpenAI;
  let hub: HubProcess;
  let database: TestDatabase;
  let catalog: Catalog;
  before(async () => {
    // every stream takes about eight seconds: 16 words, 500 ms apart
    fake = await startFakeOpenAI({ apiKey: 'upstream-secret', chunkDelayMs: 500 });
    // the hub in its own process, as it runs: 2,000 sockets on this test's event loop would be the test's
    database = await createTestDatabase();
    hub = await spawnHub({ KAIHUB_DATABASE: database.location, KAIHUB_DATA_DIR: database.dataDir });
    catalog = await seedCatalog(hub, fake.url);
  });
  after(async () => {
    await hub?.stop();
    await fake?.close();
    await database?.drop();
  });

  test("520 open streams of one organisation do not make another's call to the same supplier wait", async () => {
    await addProduct(hub, catalog, 'busy-a', [{ baseUrl: fake.url, upstreamModel: 'busy-chat' }]);
    await addProduct(hub, catalog, 'quiet-b', [{ baseUrl: fake.url, upstreamModel: 'quiet-chat' }]);
    const org = await hub.admin('POST', '/organizations', { name: '조용한기관', class: 'public' });
    const keyB = (await hub.admin('POST', `/organizations/${org.body.id}/keys`, {})).body.key;
    fake.setReply(Array.from({ length: 16 }, (_, i) => `w${i}`).join(' '));
    const client = new Agent({ connections: 600, connect: { timeout: 30_000 }, bodyTimeout: 60_000 });
    try {
      const streams = Array.from({ length: 520 }, () =>
        undiciRequest(`${hub.url}/v1/chat/completions`, {
          method: 'POST',
          dispatcher: client,
          headers: { authorization: `Bearer ${catalog.key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'busy-a', messages: say('x'), stream: true }),
        }).then((r) => r.body.text()),
      );
      // before this work the hub let 512 connections reach one origin: B's call would wait behind A's 520
      await fake.waitForRequests(512, 30_000);
      await new Promise((resolve) => setTimeout(resolve, 300));
      fake.setReply(undefined);
      const started = performance.now();
      const b = await postV1(hub, keyB, '/chat/completions', { model: 'quiet-b', messages: say('hello') });
      const tookMs = performance.now() - started;
      assert.equal(b.status, 200);
      assert.ok(tookMs < 2000, `the other organisation waited ${tookMs.toFixed(0)} ms (a stream lasts 8 s)`);
      for (const text of await Promise.all(streams)) assert.match(text, /\[DONE\]/);
    } finally {
      await client.close();
    }
  });
});

describe("a request's own size does not cool a shared deployment down", () => {
  let t: TestHub;
  let catalog: Catalog;
  let server: ReturnType<typeof createServer>;
  let baseUrl: string;
  before(async () => {
    // a supplier that never finishes reading a long prompt, and answers short ones at once
    server = createServer((req, res) => {
      let raw = '';
      req.on('data', (d: Buffer) => {
        raw += d;
      });
      req.on('end', () => {
        if (raw.length > 20_000) return; // hangs: the hub's headers timeout ends it
        const body = JSON.parse(raw) as { stream?: boolean; model: string };
        if (body.stream) {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          if (raw.includes('"hang"')) return;
          res.write(
            `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: body.model, choices: [{ index: 0, delta: { content: 'ok' }, finish_reason: 'stop' }] })}\n\n`,
          );
          res.end('data: [DONE]\n\n');
          return;
        }
        if (raw.includes('"hang"')) return;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            id: 'c',
            object: 'chat.completion',
            created: 1,
            model: body.model,
            choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
            usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 },
          }),
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
    t = await startTestHub({ KAIHUB_UPSTREAM_HEADERS_TIMEOUT_MS: '300' });
    catalog = await seedCatalog(t, baseUrl);
  });
  after(async () => {
    await t?.close();
    server.closeAllConnections();
    server.close();
  });

  test('time-outs of over-long requests are not retried and do not count; time-outs of ordinary ones do', async () => {
    const { deploymentIds } = await addProduct(t, catalog, 'shared', [{ baseUrl }]);
    const org = await t.admin('POST', '/organizations', { name: '평범한기관', class: 'sme' });
    const keyB = (await t.admin('POST', `/organizations/${org.body.id}/keys`, {})).body.key;
    const long = 'word '.repeat(6000); // ≈ 7,500 tokens: over half this product's 8,192-token window
    for (let i = 0; i < 5; i++) {
      const answer = await postV1(t, catalog.key, '/chat/completions', {
        model: 'shared',
        messages: say(long),
        stream: i % 2 === 1,
      });
      assert.equal(answer.status, 504, answer.text);
      assert.equal((await usageEvent(t, answer.requestId)).attempts.length, 1, 'not retried');
    }
    const health = (await t.admin('GET', `/deployments/${deploymentIds[0]}`)).body.health;
    assert.equal(health.consecutiveFailures, 0, 'no verdict on the deployment');
    const b = await postV1(t, keyB, '/chat/completions', { model: 'shared', messages: say('hello') });
    assert.equal(b.status, 200, 'another organisation is served');
    // an ordinary request that times out is the deployment's: counted, and retried
    const hung = await postV1(t, keyB, '/chat/completions', { model: 'shared', messages: say('hang') });
    assert.equal(hung.status, 504);
    const after = (await t.admin('GET', `/deployments/${deploymentIds[0]}`)).body.health;
    assert.ok(after.consecutiveFailures >= 1, 'an ordinary time-out counts');
  });
});
