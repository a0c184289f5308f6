import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { createLogger } from '../../src/observability/logger.ts';
import { type FakeOpenAI, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import { seedCatalog, startTestHub, type TestHub } from '../helpers/hub.ts';
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
