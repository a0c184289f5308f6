import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, test } from 'node:test';
import OpenAI from 'openai';
import { costOf, parseKrwAmount } from '../../src/billing/money.ts';
import { openDatabase } from '../../src/storage/database.ts';
import { type FakeOpenAI, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import { createTestDatabase, type TestDatabase, testEngine } from '../helpers/databases.ts';
import { fundWithVoucher } from '../helpers/funding.ts';
import { seedCatalog, type TestHub } from '../helpers/hub.ts';
import { spawnHub } from '../helpers/hub-process.ts';

let fake: FakeOpenAI | undefined;
let database: TestDatabase | undefined;
after(async () => {
  await fake?.close();
  await database?.drop();
});

test('kill -9 under load: every request a client saw complete is metered and charged exactly once after restart', async () => {
  fake = await startFakeOpenAI({ apiKey: 'upstream-secret', chunkDelayMs: 2 });
  database = await createTestDatabase();
  const secret = randomBytes(32).toString('hex');
  const env = { KAIHUB_DATABASE: database.location, KAIHUB_DATA_DIR: database.dataDir };
  const first = await spawnHub(env, secret);
  const catalog = await seedCatalog(first as unknown as TestHub, fake.url);
  // the organisation pays through a voucher with co-payment and its wallet, with holds on every call
  const { voucherId } = await fundWithVoucher(first, catalog.organizationId, '내구성 바우처', 'self-pay');
  const client = new OpenAI({
    apiKey: catalog.key,
    baseURL: `${first.url}/v1`,
    maxRetries: 0,
    timeout: 10_000,
  });

  const completed: { id: string; stream: boolean; content: string }[] = [];
  let stop = false;
  const deadline = Date.now() + 15_000;
  async function worker(n: number) {
    for (let i = 0; !stop && Date.now() < deadline; i++) {
      const stream = (n + i) % 2 === 0;
      try {
        if (stream) {
          const content = `스트림 ${n} ${i} 하나 둘 셋`;
          const { data, response } = await client.chat.completions
            .create({ model: 'hcx-test', messages: [{ role: 'user', content }], stream: true })
            .withResponse();
          let sawFinish = false;
          for await (const chunk of data) if (chunk.choices[0]?.finish_reason) sawFinish = true;
          // the openai client ends quietly when the connection drops; only a finished answer counts
          if (sawFinish) completed.push({ id: response.headers.get('x-request-id')!, stream, content });
        } else {
          const content = `요청 ${n} ${i}`;
          const { response } = await client.chat.completions
            .create({ model: 'hcx-test', messages: [{ role: 'user', content }] })
            .withResponse();
          completed.push({ id: response.headers.get('x-request-id')!, stream, content });
        }
      } catch {
        if (stop) return;
      }
    }
  }
  const workers = Array.from({ length: 16 }, (_, n) => worker(n));
  while (completed.length < 150 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  await first.kill9();
  stop = true;
  await Promise.all(workers);
  assert.ok(completed.length >= 150, `only ${completed.length} completed before the kill`);
  assert.ok(completed.some((c) => c.stream) && completed.some((c) => !c.stream));

  const second = await spawnHub(env, secret);
  try {
    const events = await second.admin(
      'GET',
      `/usage/events?organizationId=${catalog.organizationId}&limit=1000`,
    );
    assert.equal(events.status, 200);
    const byId = new Map<
      string,
      { status: string; costMicroKrw: string; promptTokens: number; completionTokens: number }
    >();
    for (const e of events.body.data) {
      assert.ok(!byId.has(e.requestId), `request ${e.requestId} metered twice`);
      byId.set(e.requestId, e);
    }
    for (const c of completed) {
      const e = byId.get(c.id);
      assert.ok(e, `request ${c.id} (stream: ${c.stream}) completed for the client but has no usage record`);
      assert.equal(e.status, 'ok');
      assert.ok(BigInt(e.costMicroKrw) > 0n);
    }
    const usage = await second.admin('GET', `/usage?organizationId=${catalog.organizationId}`);
    assert.equal(usage.body.totals.requests, byId.size);

    // what the fake upstream says it served: each answer the client saw complete is metered with the
    // upstream's own counts (its token rule: 3 + words of the prompt, 1 + words for "Echo: …"), and the
    // ledger holds between what those answers cost and what everything the upstream answered cost
    const prices = { inputMicroPer1M: parseKrwAmount('1000'), outputMicroPer1M: parseKrwAmount('3000') };
    const words = (text: string) => text.trim().split(/\s+/).length;
    const servedBy = new Map<string, number>();
    let servedCost = 0n;
    for (const r of fake!.requests) {
      const content = (r.body as { messages?: { content?: unknown }[] } | undefined)?.messages?.[0]?.content;
      if (r.path !== '/v1/chat/completions' || typeof content !== 'string' || r.status !== 200) continue;
      servedBy.set(content, (servedBy.get(content) ?? 0) + 1);
      servedCost += costOf(3 + words(content), 1 + words(content), prices);
    }
    let completedCost = 0n;
    for (const c of completed) {
      assert.equal(servedBy.get(c.content), 1, `the upstream answered "${c.content}" once`);
      const e = byId.get(c.id)!;
      assert.equal(e.promptTokens, 3 + words(c.content), 'prompt tokens as the upstream counted them');
      assert.equal(
        e.completionTokens,
        1 + words(c.content),
        'completion tokens as the upstream counted them',
      );
      assert.equal(BigInt(e.costMicroKrw), costOf(e.promptTokens, e.completionTokens, prices));
      completedCost += BigInt(e.costMicroKrw);
    }

    // the ledger: one charge per usage record that cost something, splitting exactly what usage says
    const db = await openDatabase(database.location);
    try {
      const charges = await db.get<{ n: number; requests: number }>(
        `SELECT COUNT(*) AS n, COUNT(DISTINCT request_id) AS requests FROM ledger_transactions WHERE kind = 'charge'`,
      );
      const costly = [...byId.values()].filter((e) => BigInt(e.costMicroKrw) > 0n);
      assert.equal(Number(charges!.n), costly.length, 'one charge per usage record, none twice');
      assert.equal(Number(charges!.requests), costly.length);
      const total = costly.reduce((sum, e) => sum + BigInt(e.costMicroKrw), 0n);
      const moved = await db.get<{ voucher: string; wallet: string; payable: string }>(
        `SELECT
           CAST(COALESCE(SUM(CASE WHEN e.account_id = ? THEN e.amount_micro_krw END), 0) AS TEXT) AS voucher,
           CAST(COALESCE(SUM(CASE WHEN e.account_id = ? THEN e.amount_micro_krw END), 0) AS TEXT) AS wallet,
           CAST(COALESCE(SUM(CASE WHEN e.account_id LIKE 'payable:%' THEN e.amount_micro_krw END), 0) AS TEXT) AS payable
         FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id WHERE t.kind = 'charge'`,
        [`voucher:${voucherId}`, `wallet:${catalog.organizationId}`],
      );
      assert.equal(BigInt(moved!.payable), total, 'suppliers are owed exactly what was used');
      assert.ok(
        total >= completedCost && total <= servedCost,
        `charged ${total} µ₩: at least the ${completedCost} the client saw complete, at most the ${servedCost} the upstream answered`,
      );
      assert.equal(-BigInt(moved!.voucher) - BigInt(moved!.wallet), total, 'voucher and wallet paid it all');
      // the voucher paid ⌊C·0.8⌋ of each charge (it never ran short here)
      const expectedVoucher = costly.reduce((sum, e) => sum + (BigInt(e.costMicroKrw) * 8000n) / 10_000n, 0n);
      assert.equal(-BigInt(moved!.voucher), expectedVoucher);
    } finally {
      await db.close();
    }
  } finally {
    await second.stop();
  }
});

test('kill -9 between the records and their charges: the next start posts each charge the dead hub never posted, once', {
  skip:
    testEngine() === 'postgres'
      ? false
      : 'SQLite posts each record in the transaction that applies it (decision 0021)',
}, async () => {
  const upstream = await startFakeOpenAI({ apiKey: 'upstream-secret' });
  const own = await createTestDatabase();
  const db = await openDatabase(own.location);
  try {
    const secret = randomBytes(32).toString('hex');
    const env = { KAIHUB_DATABASE: own.location, KAIHUB_DATA_DIR: own.dataDir };
    const first = await spawnHub(env, secret);
    const catalog = await seedCatalog(first as unknown as TestHub, upstream.url);
    const { voucherId } = await fundWithVoucher(first, catalog.organizationId, '청구 전 종료', 'self-pay');

    // the hub's charges wait behind a lock on the wallet: records land, charges cannot
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => {
      locked = resolve;
    });
    const holding = db.transaction(async (tx) => {
      await tx.get('SELECT id FROM ledger_accounts WHERE id = ? FOR UPDATE', [
        `wallet:${catalog.organizationId}`,
      ]);
      locked();
      await released;
    });
    await isLocked;
    const client = new OpenAI({
      apiKey: catalog.key,
      baseURL: `${first.url}/v1`,
      maxRetries: 0,
      timeout: 10_000,
    });
    const completed: string[] = [];
    await Promise.all(
      Array.from({ length: 8 }, async (_, w) => {
        for (let i = 0; i < 5; i++) {
          const { response } = await client.chat.completions
            .create({
              model: 'hcx-test',
              messages: [{ role: 'user', content: `요청 ${w} ${i}` }],
              max_tokens: 20,
            })
            .withResponse();
          completed.push(response.headers.get('x-request-id')!);
        }
      }),
    );
    const ids = `{${completed.join(',')}}`;
    const recorded = await db.get<{ n: number }>(
      'SELECT COUNT(*) AS n FROM usage_events WHERE request_id = ANY(?)',
      [ids],
    );
    assert.equal(
      Number(recorded!.n),
      completed.length,
      'every completed call has its record before its answer',
    );
    const early = await db.get<{ n: number }>(
      "SELECT COUNT(*) AS n FROM ledger_transactions WHERE kind = 'charge' AND request_id = ANY(?)",
      [ids],
    );
    assert.equal(Number(early!.n), 0, 'and none is charged yet: the charges wait behind the lock');

    await first.kill9();
    release();
    await holding;

    const second = await spawnHub(env, secret);
    try {
      // any read that must show every completed call (here the usage events) waits for the charges
      const events = await second.admin(
        'GET',
        `/usage/events?organizationId=${catalog.organizationId}&limit=1000`,
      );
      assert.equal(events.status, 200);
      const cost = new Map<string, bigint>(
        events.body.data.map((e: { requestId: string; costMicroKrw: string }) => [
          e.requestId,
          BigInt(e.costMicroKrw),
        ]),
      );
      const charges = await db.all<{ request_id: string; n: number; payable: string; voucher: string }>(
        `SELECT t.request_id, COUNT(DISTINCT t.id) AS n,
           CAST(SUM(CASE WHEN e.account_id LIKE 'payable:%' THEN e.amount_micro_krw ELSE 0 END) AS TEXT) AS payable,
           CAST(SUM(CASE WHEN e.account_id = ? THEN e.amount_micro_krw ELSE 0 END) AS TEXT) AS voucher
         FROM ledger_transactions t JOIN ledger_entries e ON e.transaction_id = t.id
         WHERE t.kind = 'charge' AND t.request_id = ANY(?) GROUP BY t.request_id`,
        [`voucher:${voucherId}`, ids],
      );
      assert.equal(charges.length, completed.length, 'every completed call is charged');
      for (const c of charges) {
        assert.equal(Number(c.n), 1, `${c.request_id} charged once`);
        assert.equal(BigInt(c.payable), cost.get(c.request_id), 'for what its record says');
        assert.equal(
          -BigInt(c.voucher),
          (cost.get(c.request_id)! * 8000n) / 10_000n,
          'the voucher paid its share',
        );
      }
      const left = await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM usage_uncharged');
      assert.equal(Number(left!.n), 0);
    } finally {
      await second.stop();
    }
  } finally {
    await db.close();
    await upstream.close();
    await own.drop();
  }
});
