import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import OpenAI from 'openai';
import { SCRIPTS } from '../../src/limits/redis-scripts.ts';
import { type Database, openDatabase } from '../../src/storage/database.ts';
import { type FakeOpenAI, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import { fundWithVoucher } from '../helpers/funding.ts';
import { type Catalog, seedCatalog, startTestHub, type TestHub } from '../helpers/hub.ts';
import { dropRedisPrefix, TEST_REDIS_URL, testRedisPrefix } from '../helpers/redis.ts';
import { addProduct, closedPort } from '../helpers/v1.ts';

// Allowances (decision 0027): a replica takes several calls' worth of an organisation's accounts and
// of a key's buckets in one Redis round trip and admits the next calls from it in memory. Two replicas
// on one PostgreSQL and one Redis: far fewer admission scripts than calls, and once the calls are over
// the counters in Redis are the ledger's balances to the µ₩, with nothing left held.
describe('allowances: several calls per Redis round trip, exact afterwards', () => {
  const prefix = testRedisPrefix();
  let fake: FakeOpenAI;
  let replicas: TestHub[];
  let db: Database;
  let redis: Redis;
  let catalog: Catalog;
  let n = 0;
  /** MONITOR connections, closed at the end even when a test fails before closing its own. */
  const monitors = new Set<Socket>();
  /** A third replica whose allowances do not retire on their own, started by the test that needs it. */
  let lasting: TestHub | undefined;

  const env = {
    REDIS_URL: TEST_REDIS_URL,
    KAIHUB_REDIS_PREFIX: prefix,
    // two hubs in this process on two shared cores: a stalled event loop must not count as Redis down
    KAIHUB_REDIS_TIMEOUT_MS: '2000',
  };

  async function admin(method: string, path: string, body?: unknown) {
    const r = await replicas[0]!.admin(method, path, body);
    assert.ok(
      r.status === 200 || r.status === 201,
      `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`,
    );
    return r.body;
  }

  async function balance(account: string): Promise<bigint> {
    const row = await db.get<{ b: string }>(
      'SELECT CAST(balance_micro_krw AS TEXT) AS b FROM ledger_accounts WHERE id = ?',
      [account],
    );
    return BigInt(row?.b ?? '0');
  }

  /** A prepaid organisation paying through a voucher (20 % co-payment) and a wallet, with a limited key. */
  async function organization(keyRequestsPerMinute: number) {
    n++;
    const org = await admin('POST', '/organizations', { name: `배분기업 ${n}`, class: 'sme' });
    const { voucherId } = await fundWithVoucher(replicas[0]!, org.id, `배분 ${n}`);
    const key = await admin('POST', `/organizations/${org.id}/keys`, {
      name: 'k',
      rateLimits: { requestsPerMinute: keyRequestsPerMinute, tokensPerMinute: 10_000_000 },
    });
    return {
      id: org.id as string,
      voucherId,
      clients: replicas.map((r) => new OpenAI({ apiKey: key.key, baseURL: `${r.url}/v1`, maxRetries: 0 })),
    };
  }

  /**
   * Counts the admission scripts Redis runs for one organisation: MONITOR on a plain socket sees every
   * command (ioredis's monitor mode can mistake a monitored line for a reply and then hang the test).
   */
  async function countAdmissions(organizationId: string) {
    const url = new URL(TEST_REDIS_URL);
    const socket = connect(Number(url.port || 6379), url.hostname);
    await once(socket, 'connect');
    socket.write('MONITOR\r\n');
    let count = 0;
    let pending = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      const lines = (pending + chunk).split('\r\n');
      pending = lines.pop() ?? '';
      for (const line of lines)
        if (
          line.includes(`{${organizationId}}`) &&
          /^\+\S+ \[[^\]]*\] "(evalsha|EVALSHA)"/.test(line) &&
          line.includes(`"${SCRIPTS.admit.sha}"`)
        )
          count++;
    });
    socket.on('error', () => {});
    monitors.add(socket);
    return {
      count: () => count,
      stop: () => socket.destroy(),
    };
  }

  /**
   * Once the calls are over and the allowances retired: nothing held on any replica, every call
   * charged once, and the counters Redis promises from equal the ledger's balances to the µ₩.
   */
  async function expectExact(org: { id: string; voucherId: string }, calls: number, depositedKrw: bigint) {
    // allowances retire when idle and give back what their calls did not use
    const holdKey = `${prefix}{${org.id}}:hold`;
    for (let i = 0; i < 100 && (await redis.hlen(holdKey)) > 0; i++)
      await new Promise((r) => setTimeout(r, 50));
    assert.equal(await redis.hlen(holdKey), 0, 'nothing held once the calls are over');
    for (const r of replicas)
      assert.equal((await r.admin('GET', `/organizations/${org.id}/funds`)).body.heldKrw, '0');
    const charged = await db.get<{ total: string; count: number }>(
      `SELECT CAST(SUM(cost_micro_krw) AS TEXT) AS total, COUNT(*) AS count FROM usage_events
       WHERE organization_id = ? AND status = 'ok'`,
      [org.id],
    );
    assert.equal(Number(charged!.count), calls, 'every call has its record');
    const wallet = await balance(`wallet:${org.id}`);
    const voucher = await balance(`voucher:${org.voucherId}`);
    const krw = 1_000_000n;
    assert.equal(
      100_000n * krw + 100_000n * krw + depositedKrw * krw - wallet - voucher,
      BigInt(charged!.total),
      'the ledger paid exactly what was charged',
    );
    // the counters Redis promises from are the ledger's balances: the allowances' use became the charges
    // (a counter that idled out would be read from the ledger again; it is still here after these calls)
    const counter = async (account: string) =>
      BigInt((await redis.get(`${prefix}{${org.id}}:a:${account}`))!);
    assert.equal(await counter(`voucher:${org.voucherId}`), voucher, 'voucher counter = ledger');
    assert.equal(await counter(`wallet:${org.id}`), wallet, 'wallet counter = ledger');
  }

  before(async () => {
    fake = await startFakeOpenAI({ apiKey: 'upstream-secret' });
    const first = await startTestHub(env);
    catalog = await seedCatalog(first, fake.url);
    replicas = [first, await startTestHub(env, { replicaOf: first })];
    db = await openDatabase(first.database.location);
    redis = new Redis(TEST_REDIS_URL);
  });
  after(async () => {
    for (const m of monitors) m.destroy();
    redis?.disconnect();
    await db?.close();
    await lasting?.close();
    for (const r of [...(replicas ?? [])].reverse()) await r.close();
    await fake?.close();
    await dropRedisPrefix(prefix);
  });

  test('bursts on two replicas, with a deposit in the middle: far fewer admission scripts than calls; afterwards the counters equal the ledger and nothing is held', async () => {
    const org = await organization(100_000);
    fake.setReply('하나 둘 셋 넷');
    const admissions = await countAdmissions(org.id);
    const calls = 2 * 4 * 40;
    let served = 0;
    let deposited = false;
    const worker = async (replica: number, w: number) => {
      for (let i = 0; i < calls / 8; i++) {
        if (!deposited && replica === 1 && w === 0 && i === 20) {
          deposited = true;
          const r = await replicas[1]!.admin('POST', `/organizations/${org.id}/deposits`, {
            amountKrw: '1000',
          });
          assert.equal(r.status, 201, JSON.stringify(r.body));
        }
        const client = org.clients[replica]!;
        const request = {
          model: 'hcx-test',
          messages: [{ role: 'user' as const, content: `할당 ${replica} ${w} ${i}` }],
          // worst cases differ from call to call: an allowance sized on one may not fit the next
          max_tokens: 5 + ((i * 7 + w) % 40),
        };
        if (i % 5 === 4) {
          const stream = await client.chat.completions.create({ ...request, stream: true });
          for await (const _ of stream);
        } else {
          const answer = await client.chat.completions.create(request);
          assert.ok(answer.choices[0]?.message.content);
        }
        served++;
      }
    };
    await Promise.all([0, 1].flatMap((replica) => [0, 1, 2, 3].map((w) => worker(replica, w))));
    assert.equal(served, calls);
    assert.ok(deposited);
    // every call admitted, most from allowances: one script per allowance, not per call
    const scripts = admissions.count();
    admissions.stop();
    assert.ok(scripts < calls / 3, `${scripts} admission scripts for ${calls} calls`);

    await expectExact(org, calls, 1000n);
  });

  test('calls from an allowance that fall back to a dearer product hold the difference from it or from Redis, and end exact', async () => {
    const dead = `http://127.0.0.1:${await closedPort()}/v1`;
    await addProduct(replicas[0]!, catalog, 'al-costly', [{ baseUrl: fake.url }], {
      priceInputPer1M: '10000',
      priceOutputPer1M: '30000',
    });
    await addProduct(replicas[0]!, catalog, 'al-main', [{ baseUrl: dead }], {
      fallbackModels: ['al-costly'],
    });
    const org = await organization(100_000);
    fake.setReply('대체 상품이 답합니다');
    const admissions = await countAdmissions(org.id);
    const calls = 60;
    const worker = async () => {
      for (let i = 0; i < calls / 3; i++) {
        const answer = await org.clients[0]!.chat.completions.create({
          model: 'al-main',
          messages: [{ role: 'user', content: `대체 ${i}` }],
          max_tokens: 10 + (i % 30),
        });
        assert.equal(answer.model, 'al-costly', 'the fallback served');
      }
    };
    await Promise.all([worker(), worker(), worker()]);
    const scripts = admissions.count();
    admissions.stop();
    assert.ok(scripts < calls / 3, `${scripts} admission scripts for ${calls} calls`);
    await expectExact(org, calls, 0n);
  });

  test('a call the counters refuse while this replica holds an allowance of the organisation is admitted from what the allowance gives back', async () => {
    // The test looks at an allowance that still admits once the first call's own hold has gone. That
    // hold goes when the journal has posted the call's charge, which on SQLite under load took up to
    // 1.6 s (the applier runs only in the gaps the event loops leave), while an allowance retires after
    // 200 ms without a call. On this replica allowances retire only when something retires them: here,
    // the refusal.
    lasting = await startTestHub(env, {
      replicaOf: replicas[0]!,
      hub: { allowances: { sliceMs: 600_000, idleMs: 600_000 } },
    });
    n++;
    const org = await admin('POST', '/organizations', { name: `배분기업 ${n}`, class: 'sme' });
    const programme = await admin('POST', '/programmes', {
      name: `배분 ${n}`,
      startsOn: '2026-01-01',
      endsOn: '2030-12-31',
      budgetKrw: '1000',
      copayPercent: { sme: 0 },
      onExhausted: 'block',
    });
    const voucher = await admin('POST', `/programmes/${programme.id}/vouchers`, {
      organizationId: org.id,
      amountKrw: '50',
    });
    await admin('PATCH', `/organizations/${org.id}`, { spendMode: 'prepaid' });
    const client = async () => {
      const key = await admin('POST', `/organizations/${org.id}/keys`, { name: `k${n}` });
      return new OpenAI({ apiKey: key.key, baseURL: `${lasting!.url}/v1`, maxRetries: 0 });
    };
    const [a, b] = [await client(), await client()];
    fake.setReply('하나');
    // key A's calls take an allowance of the voucher on this replica
    for (let i = 0; i < 4; i++)
      await a.chat.completions.create({
        model: 'hcx-test',
        messages: [{ role: 'user', content: '안녕' }],
        max_tokens: 5,
      });
    // the first call's own hold goes once its charge is in the ledger: the allowance stays
    const deadline = Date.now() + 30_000;
    let held = await redis.hvals(`${prefix}{${org.id}}:hold`);
    while (held.length > 1 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
      held = await redis.hvals(`${prefix}{${org.id}}:hold`);
    }
    assert.equal(held.length, 1, `one allowance held, the first call's hold gone within 30 s: ${held}`);
    const counter = BigInt((await redis.get(`${prefix}{${org.id}}:a:voucher:${voucher.id}`))!);
    const allowance = BigInt(held[0]!.match(/voucher:[^=]+=(\d+)/)![1]!);
    assert.ok(allowance > 100_000n, `the allowance holds several calls' worth (${allowance} µ₩)`);
    // key B asks for more than the counter has and less than counter + allowance: output tokens cost
    // 3,000 µ₩ each, the prompt a few thousand more
    const maxTokens = Number((counter + allowance / 2n) / 3000n);
    const answer = await b.chat.completions.create({
      model: 'hcx-test',
      messages: [{ role: 'user', content: '안녕' }],
      max_tokens: maxTokens,
    });
    assert.ok(answer.choices[0], 'admitted: the allowance gave back what no call held');
    await lasting.close();
    lasting = undefined;
  });

  test('the x-ratelimit headers count down by one call at a time while calls come from an allowance', async () => {
    const org = await organization(6_000);
    const remaining: number[] = [];
    const started = Date.now();
    for (let i = 0; i < 30; i++) {
      const { response } = await org.clients[0]!.chat.completions.create({
        model: 'hcx-test',
        messages: [{ role: 'user', content: '안녕' }],
        max_tokens: 5,
      }).withResponse();
      remaining.push(Number(response.headers.get('x-ratelimit-remaining-requests')));
    }
    // 6,000 a minute refill 0.1 a millisecond: the count may gain what refilled meanwhile, and each
    // step loses at most the one call
    const refilled = Math.ceil((Date.now() - started) / 10) + 1;
    let gained = 0;
    for (let i = 1; i < remaining.length; i++) {
      const step = remaining[i]! - remaining[i - 1]!;
      assert.ok(step >= -1, `step ${i}: ${remaining[i - 1]} → ${remaining[i]}`);
      gained += Math.max(0, step);
    }
    assert.ok(gained <= refilled, `gained ${gained}, refilled at most ${refilled}: ${remaining.join(',')}`);
    // never above the limit less the call: what an allowance still has is the bucket's, capped with it
    assert.ok(
      remaining.every((r) => r <= 6_000 - 1),
      remaining.join(','),
    );
  });
});
