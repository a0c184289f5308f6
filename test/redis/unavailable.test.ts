import assert from 'node:assert/strict';
import net from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import OpenAI from 'openai';
import { createLogger } from '../../src/observability/logger.ts';
import { type FakeOpenAI, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import { seedCatalog, startTestHub, type TestHub } from '../helpers/hub.ts';
import { dropRedisPrefix, TEST_REDIS_URL, testRedisPrefix } from '../helpers/redis.ts';
import { closedPort } from '../helpers/v1.ts';

// Redis gone (nothing listens where REDIS_URL points): what the hub does is chosen, not an accident
// (docs/billing.md "Several replicas"): prepaid calls are refused with 503, the others go on.
describe('with REDIS_URL set and Redis unreachable', () => {
  let fake: FakeOpenAI;
  let t: TestHub;
  const lines: string[] = [];
  let n = 0;

  before(async () => {
    fake = await startFakeOpenAI({ apiKey: 'upstream-secret' });
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    });
    t = await startTestHub(
      { REDIS_URL: `redis://127.0.0.1:${await closedPort()}`, KAIHUB_REDIS_TIMEOUT_MS: '100' },
      { logger: createLogger('info', sink) },
    );
    await seedCatalog(t, fake.url);
  });
  after(async () => {
    await t?.close();
    await fake?.close();
  });

  async function organization(body: Record<string, unknown>) {
    n++;
    const org = await t.admin('POST', '/organizations', { name: `장애기업 ${n}`, class: 'sme', ...body });
    assert.equal(org.status, 201, JSON.stringify(org.body));
    const key = await t.admin('POST', `/organizations/${org.body.id}/keys`, { name: 'k' });
    return {
      id: org.body.id as string,
      client: new OpenAI({ apiKey: key.body.key, baseURL: `${t.url}/v1`, maxRetries: 0 }),
    };
  }
  const ask = (client: OpenAI) =>
    client.chat.completions.create({
      model: 'hcx-test',
      messages: [{ role: 'user', content: '안녕' }],
      max_tokens: 5,
    });

  test('a prepaid organisation is refused with 503 limits_unavailable, quickly, and it is logged', async () => {
    const org = await organization({ spendMode: 'prepaid' });
    assert.equal(
      (await t.admin('POST', `/organizations/${org.id}/deposits`, { amountKrw: '100' })).status,
      201,
    );
    const before = fake.requests.length;
    const started = Date.now();
    const error = await ask(org.client).then(
      () => assert.fail('admitted without Redis'),
      (e: unknown) => e as InstanceType<typeof OpenAI.APIError>,
    );
    assert.ok(Date.now() - started < 2_000, 'no unbounded wait');
    assert.equal(error.status, 503);
    assert.equal(error.code, 'limits_unavailable');
    assert.match(error.message, /Redis/);
    assert.equal(error.headers?.get('retry-after'), '1');
    assert.equal(fake.requests.length, before, 'the upstream saw nothing');
    assert.ok(
      lines.some((l) => /Redis/.test(l) && /"level":50/.test(l)),
      'an error line says why',
    );
  });

  test('postpaid organisations go on: without vouchers or limits (never touching Redis), with limits, with a voucher', async () => {
    const plain = await organization({});
    assert.ok((await ask(plain.client)).choices[0]);
    const limited = await organization({ rateLimits: { requestsPerMinute: 1 } });
    // fail open: the limit is not enforced while Redis is away
    for (let i = 0; i < 2; i++) assert.ok((await ask(limited.client)).choices[0]);
    const programme = await t.admin('POST', '/programmes', {
      name: '장애 바우처',
      startsOn: '2026-01-01',
      endsOn: '2030-12-31',
      budgetKrw: '1000',
      copayPercent: { sme: 20 },
      onExhausted: 'block',
    });
    const withVoucher = await organization({});
    const voucher = await t.admin('POST', `/programmes/${programme.body.id}/vouchers`, {
      organizationId: withVoucher.id,
      amountKrw: '10',
    });
    assert.equal(voucher.status, 201);
    const { response } = await withVoucher.client.chat.completions
      .create({ model: 'hcx-test', messages: [{ role: 'user', content: '안녕' }], max_tokens: 5 })
      .withResponse();
    assert.equal(response.status, 200);
  });
});

/**
 * A Redis in front of the real one that can stop answering while the connection stays open (an
 * overloaded or paused server): the replies it holds back arrive later, in order, as a slow server's do.
 */
async function stallingRedis(): Promise<{ url: string; stall(on: boolean): void; close(): Promise<void> }> {
  const target = new URL(TEST_REDIS_URL);
  let stalled = false;
  const held: { to: net.Socket; data: Buffer }[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || 6379), target.hostname);
    sockets.add(client);
    sockets.add(upstream);
    client.on('data', (data) => upstream.write(data));
    upstream.on('data', (data) => {
      if (stalled) held.push({ to: client, data });
      else client.write(data);
    });
    for (const s of [client, upstream]) {
      s.on('error', () => {});
      s.on('close', () => {
        client.destroy();
        upstream.destroy();
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `redis://127.0.0.1:${port}`,
    stall(on) {
      stalled = on;
      if (!on) for (const { to, data } of held.splice(0)) to.write(data);
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('with Redis that stops answering while connected', () => {
  let fake: FakeOpenAI;
  let t: TestHub;
  let redis: Awaited<ReturnType<typeof stallingRedis>>;
  const prefix = testRedisPrefix();

  before(async () => {
    fake = await startFakeOpenAI({ apiKey: 'upstream-secret' });
    redis = await stallingRedis();
    t = await startTestHub({
      REDIS_URL: redis.url,
      KAIHUB_REDIS_PREFIX: prefix,
      KAIHUB_REDIS_TIMEOUT_MS: '150',
    });
    await seedCatalog(t, fake.url);
  });
  after(async () => {
    redis?.stall(false);
    await t?.close();
    await redis?.close();
    await fake?.close();
    await dropRedisPrefix(prefix);
  });

  test('a settle Redis did not answer is sent again once it does: its hold goes then, not at its lease', async () => {
    const org = await t.admin('POST', '/organizations', {
      name: '끊긴 정산',
      class: 'sme',
      spendMode: 'prepaid',
    });
    assert.equal(org.status, 201, JSON.stringify(org.body));
    await t.admin('POST', `/organizations/${org.body.id}/deposits`, { amountKrw: '1000' });
    const key = await t.admin('POST', `/organizations/${org.body.id}/keys`, { name: 'k' });
    const client = new OpenAI({ apiKey: key.body.key, baseURL: `${t.url}/v1`, maxRetries: 0 });
    const held = async () => (await t.admin('GET', `/organizations/${org.body.id}/funds`)).body.heldKrw;

    // admitted (its hold is in Redis), then Redis stops answering while the upstream thinks: the call's
    // settle is sent during the stall and its reply comes after the command timeout
    const seen = fake.requests.length;
    fake.queueBehaviors('slow:300');
    const answer = client.chat.completions.create({
      model: 'hcx-test',
      messages: [{ role: 'user', content: '안녕' }],
      max_tokens: 5,
    });
    await fake.waitForRequests(seen + 1);
    redis.stall(true);
    assert.ok((await answer).choices[0], 'the client has its answer');
    await new Promise((r) => setTimeout(r, 700));
    redis.stall(false);

    // the lease is minutes away (KAIHUB_HOLD_LEASE_MS's default): the hold must go long before it
    let left: unknown;
    for (const deadline = Date.now() + 3_000; ; await new Promise((r) => setTimeout(r, 50))) {
      left = await held();
      if (left === '0' || Date.now() > deadline) break;
    }
    assert.equal(left, '0', 'the settle was sent again once Redis answered');
    // and applied once: the wallet's counter in Redis (what replicas admit against) is what the ledger
    // says is left — a settle applied twice would have taken the cost twice from it
    const funds = (await t.admin('GET', `/organizations/${org.body.id}/funds`)).body;
    assert.ok(Number(funds.walletKrw) < 1000 && Number(funds.walletKrw) > 999, JSON.stringify(funds));
    const direct = new Redis(TEST_REDIS_URL);
    try {
      const wallet = `wallet:${org.body.id}`;
      const counter = await direct.get(`${prefix}{${org.body.id}}:a:${wallet}`);
      const [whole, fraction = ''] = String(funds.walletKrw).split('.');
      assert.equal(counter, (BigInt(whole!) * 1_000_000n + BigInt(fraction.padEnd(6, '0'))).toString());
    } finally {
      direct.disconnect();
    }
  });

  test('a prepaid call gets 503 within the command timeout, nothing reaches the supplier, and calls are admitted again once Redis answers', async () => {
    const org = await t.admin('POST', '/organizations', {
      name: '느린 레디스',
      class: 'sme',
      spendMode: 'prepaid',
      rateLimits: { requestsPerMinute: 3 },
    });
    assert.equal(org.status, 201, JSON.stringify(org.body));
    assert.equal(
      (await t.admin('POST', `/organizations/${org.body.id}/deposits`, { amountKrw: '1000' })).status,
      201,
    );
    const key = await t.admin('POST', `/organizations/${org.body.id}/keys`, { name: 'k' });
    const client = new OpenAI({ apiKey: key.body.key, baseURL: `${t.url}/v1`, maxRetries: 0 });
    const ask = () =>
      client.chat.completions.create({
        model: 'hcx-test',
        messages: [{ role: 'user', content: '안녕' }],
        max_tokens: 5,
      });
    const askWithHeaders = () =>
      client.chat.completions
        .create({ model: 'hcx-test', messages: [{ role: 'user', content: '안녕' }], max_tokens: 5 })
        .withResponse();
    // as after a Redis restart or a new version of the hub: Redis knows none of the hub's scripts;
    // the first call teaches it the admission's, the refused call's clean-up must not rely on a cache
    const direct = new Redis(TEST_REDIS_URL);
    await direct.script('FLUSH');
    direct.disconnect();
    const first = await askWithHeaders();
    assert.equal(first.response.headers.get('x-ratelimit-remaining-requests'), '2');
    // The first call settles once its charge is in the ledger, a moment after its answer (on SQLite
    // once the applier has applied it): let it, so that the stall below meets only the refused call
    // (a settle the stall catches is sent again once Redis answers: the test before this one).
    const heldNow = async () => (await t.admin('GET', `/organizations/${org.body.id}/funds`)).body.heldKrw;
    for (const deadline = Date.now() + 5_000; (await heldNow()) !== '0' && Date.now() < deadline; )
      await new Promise((r) => setTimeout(r, 20));
    assert.equal(await heldNow(), '0', 'the first call settled before the stall');

    redis.stall(true);
    const before = fake.requests.length;
    const started = Date.now();
    const error = await ask().then(
      () => assert.fail('admitted while Redis did not answer'),
      (e: unknown) => e as InstanceType<typeof OpenAI.APIError>,
    );
    const waited = Date.now() - started;
    assert.equal(error.status, 503);
    assert.equal(error.code, 'limits_unavailable');
    assert.ok(waited < 1_500, `refused after ${waited} ms: bounded by the 150 ms command timeout`);
    assert.equal(fake.requests.length, before, 'the upstream saw nothing');

    // the late replies arrive in order and are matched to the commands they answer, not to new ones
    redis.stall(false);
    let remaining: string | null = null;
    for (let i = 0; i < 20 && remaining === null; i++) {
      remaining = await askWithHeaders().then(
        ({ response }) => response.headers.get('x-ratelimit-remaining-requests'),
        () => null,
      );
      if (remaining === null) await new Promise((r) => setTimeout(r, 100));
    }
    assert.notEqual(remaining, null, 'admitted again once Redis answers');
    // 3 a minute: the first call and this one took two; the refused call took nothing in the end
    assert.equal(remaining, '1', 'the refused call’s late admission gave its request back');
    // the admitted calls' holds go once their charges are in the ledger, just after their answers (on
    // SQLite when the journal applier applies them); the refused call's must go too, and nothing stay
    let held: unknown;
    for (const deadline = Date.now() + 5_000; ; await new Promise((r) => setTimeout(r, 50))) {
      held = await heldNow();
      if (held === '0' || Date.now() > deadline) break;
    }
    assert.equal(held, '0', 'nothing left held by the refused call');
  });
});
