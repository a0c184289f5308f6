import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, test } from 'node:test';
import { Redis } from 'ioredis';
import OpenAI from 'openai';
import { openDatabase } from '../../src/storage/database.ts';
import { type FakeOpenAI, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/databases.ts';
import { fundWithVoucher } from '../helpers/funding.ts';
import { seedCatalog, type TestHub } from '../helpers/hub.ts';
import { type HubProcess, spawnHub } from '../helpers/hub-process.ts';
import { dropRedisPrefix, TEST_REDIS_URL, testRedisPrefix } from '../helpers/redis.ts';

const prefix = testRedisPrefix();
let fake: FakeOpenAI | undefined;
let database: TestDatabase | undefined;
const hubs: HubProcess[] = [];
after(async () => {
  for (const h of hubs) await h.stop();
  await fake?.close();
  await database?.drop();
  await dropRedisPrefix(prefix);
});

const LEASE_MS = 4_000;

test('a replica killed (-9) while holding: its holds come back when their leases expire, and no charge is lost or doubled', async () => {
  fake = await startFakeOpenAI({ apiKey: 'upstream-secret', chunkDelayMs: 5 });
  database = await createTestDatabase();
  const secret = randomBytes(32).toString('hex');
  const env = {
    KAIHUB_DATABASE: database.location,
    KAIHUB_DATA_DIR: database.dataDir,
    REDIS_URL: TEST_REDIS_URL,
    KAIHUB_REDIS_PREFIX: prefix,
    KAIHUB_HOLD_LEASE_MS: String(LEASE_MS),
  };
  const doomed = await spawnHub(env, secret);
  hubs.push(doomed);
  const catalog = await seedCatalog(doomed as unknown as TestHub, fake.url);
  const survivor = await spawnHub(env, secret);
  hubs.push(survivor);
  const { voucherId } = await fundWithVoucher(doomed, catalog.organizationId, '복제본 내구성', 'block');
  const client = new OpenAI({
    apiKey: catalog.key,
    baseURL: `${doomed.url}/v1`,
    maxRetries: 0,
    timeout: 10_000,
  });

  const completed: string[] = [];
  let stop = false;
  const deadline = Date.now() + 15_000;
  async function worker(n: number) {
    for (let i = 0; !stop && Date.now() < deadline; i++) {
      try {
        const { data, response } = await client.chat.completions
          .create({
            model: 'hcx-test',
            messages: [{ role: 'user', content: `스트림 ${n} ${i} 하나 둘 셋 넷 다섯 여섯 일곱 여덟` }],
            max_tokens: 50,
            stream: true,
          })
          .withResponse();
        let sawFinish = false;
        for await (const chunk of data) if (chunk.choices[0]?.finish_reason) sawFinish = true;
        if (sawFinish) completed.push(response.headers.get('x-request-id')!);
      } catch {
        if (stop) return;
      }
    }
  }
  const workers = Array.from({ length: 12 }, (_, n) => worker(n));
  while (completed.length < 60 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  await doomed.kill9();
  stop = true;
  await Promise.all(workers);
  assert.ok(completed.length >= 60, `only ${completed.length} completed before the kill`);

  // the dead replica's calls still hold, seen from the survivor, until their leases run out
  const heldNow = async () =>
    (await survivor.admin('GET', `/organizations/${catalog.organizationId}/funds`)).body.heldKrw as string;
  assert.notEqual(await heldNow(), '0', 'calls in flight at the kill still hold');
  const killedAt = Date.now();
  let held = await heldNow();
  while (held !== '0' && Date.now() - killedAt < LEASE_MS + 5_000) {
    await new Promise((r) => setTimeout(r, 100));
    held = await heldNow();
  }
  assert.equal(held, '0', 'released by the leases');

  // the survivor goes on serving the organisation from the same funds
  const onSurvivor = new OpenAI({ apiKey: catalog.key, baseURL: `${survivor.url}/v1`, maxRetries: 0 });
  const reply = await onSurvivor.chat.completions.create({
    model: 'hcx-test',
    messages: [{ role: 'user', content: '안녕' }],
    max_tokens: 10,
  });
  assert.ok(reply.choices[0]);
  // its charge is posted just after the response (decision 0021): a reader of balances syncs first
  await heldNow();

  const db = await openDatabase(database.location);
  const redis = new Redis(TEST_REDIS_URL);
  try {
    const events = await db.all<{ request_id: string; cost: string }>(
      `SELECT request_id, CAST(cost_micro_krw AS TEXT) AS cost FROM usage_events WHERE organization_id = ?`,
      [catalog.organizationId],
    );
    const byId = new Map(events.map((e) => [e.request_id, BigInt(e.cost)]));
    assert.equal(byId.size, events.length, 'no request metered twice');
    for (const id of completed) assert.ok(byId.has(id), `request ${id} completed but has no usage record`);
    const charges = await db.get<{ n: number; requests: number }>(
      `SELECT COUNT(*) AS n, COUNT(DISTINCT request_id) AS requests FROM ledger_transactions WHERE kind = 'charge'`,
    );
    const costly = [...byId.values()].filter((c) => c > 0n);
    assert.equal(Number(charges!.n), costly.length, 'one charge per usage record, none twice');
    assert.equal(Number(charges!.requests), costly.length);
    const payable = await db.get<{ total: string }>(
      `SELECT CAST(COALESCE(SUM(e.amount_micro_krw), 0) AS TEXT) AS total FROM ledger_entries e
         JOIN ledger_transactions t ON t.id = e.transaction_id
       WHERE t.kind = 'charge' AND e.account_id LIKE 'payable:%'`,
    );
    assert.equal(
      BigInt(payable!.total),
      costly.reduce((a, b) => a + b, 0n),
      'suppliers are owed what was used',
    );
    // the shared counter agrees with the ledger, up to the calls the dead replica had charged and
    // not yet settled at the instant it died (each at most its worst case: 50 tokens and the prompt, under 0.2 KRW)
    const ledger = await db.get<{ b: string }>(
      'SELECT CAST(balance_micro_krw AS TEXT) AS b FROM ledger_accounts WHERE id = ?',
      [`voucher:${voucherId}`],
    );
    const counter = await redis.get(`${prefix}{${catalog.organizationId}}:a:voucher:${voucherId}`);
    const drift = BigInt(counter!) - BigInt(ledger!.b);
    assert.ok(drift >= 0n && drift <= 12n * 200_000n, `counter − ledger = ${drift} µ₩`);
  } finally {
    redis.disconnect();
    await db.close();
  }
});
