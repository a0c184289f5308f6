import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { runScript } from '../../src/limits/redis-connection.ts';
import { SCRIPTS } from '../../src/limits/redis-scripts.ts';
import { dropRedisPrefix, TEST_REDIS_URL, testRedisPrefix } from '../helpers/redis.ts';

// The Lua scripts of the shared holds and limits against a real Redis (decision 0019).
const prefix = testRedisPrefix();
let redis: Redis;
let n = 0;

before(async () => {
  redis = new Redis(TEST_REDIS_URL);
});
after(async () => {
  redis?.disconnect();
  await dropRedisPrefix(prefix);
});

interface AccountArg {
  id: string;
  balance: bigint;
  version?: string;
  share?: bigint;
  selfPay?: boolean;
}

/** A fresh organisation's keys. */
function org() {
  n++;
  const base = `${prefix}{org-${n}}:`;
  return {
    base,
    holds: `${base}holds`,
    hold: `${base}hold`,
    ver: `${base}ver`,
    iv: `${base}iv`,
    counter: (account: string) => `${base}a:${account}`,
  };
}

async function admit(
  o: ReturnType<typeof org>,
  holdId: string,
  opts: {
    prepaid?: boolean;
    worst: bigint;
    wallet: AccountArg;
    vouchers?: AccountArg[];
    buckets?: { key: string; capacity: number; amount: number }[];
    leaseMs?: number;
    /** Asking for an allowance of this many calls' worth (decision 0027). */
    calls?: number;
  },
): Promise<(string | number)[]> {
  const accounts = [opts.wallet, ...(opts.vouchers ?? [])];
  const buckets = opts.buckets ?? [];
  const keys = [
    o.holds,
    o.hold,
    o.ver,
    o.iv,
    ...accounts.map((a) => o.counter(a.id)),
    ...buckets.map((b) => b.key),
  ];
  const args: (string | number)[] = [
    holdId,
    opts.leaseMs ?? 60_000,
    600_000,
    `${o.base}a:`,
    opts.prepaid === false ? '0' : '1',
    opts.worst.toString(),
    holdId === '' ? 0 : accounts.length,
    buckets.length,
    opts.calls ?? 1,
    16,
  ];
  if (holdId !== '')
    for (const a of accounts)
      args.push(
        a.id,
        a.balance.toString(),
        a.version ?? '0',
        (a.share ?? 0n).toString(),
        a.selfPay ? '1' : '0',
      );
  for (const b of buckets) args.push(b.capacity, b.amount);
  return (await runScript(redis, SCRIPTS.admit, keys, args)) as (string | number)[];
}

async function settle(
  o: ReturnType<typeof org>,
  holdId: string,
  voucher: string,
  wallet: string,
  share: bigint,
  cost: bigint,
  sentAgain = false,
): Promise<string> {
  return (await runScript(
    redis,
    SCRIPTS.settle,
    [o.holds, o.hold, o.ver, voucher === '' ? o.counter(wallet) : o.counter(voucher), o.counter(wallet)],
    [holdId, voucher, wallet, share.toString(), cost.toString(), 600_000, 0, sentAgain ? '1' : '0'],
  )) as string;
}

/** GIVE_BACK of an allowance (`holdId` '' for one of buckets only), with zeros where not given. */
function giveBackTo(o: ReturnType<typeof org>, holdId: string, buckets: string[], id = holdId) {
  return async (
    seq: number,
    a: {
      backV?: bigint;
      backW?: bigint;
      usedV?: bigint;
      usedW?: bigint;
      exShare?: bigint;
      exCost?: bigint;
      last?: boolean;
      units?: number[];
    },
  ) =>
    (await runScript(
      redis,
      SCRIPTS.giveBack,
      [
        o.holds,
        o.hold,
        o.ver,
        o.counter('voucher:v'),
        o.counter('wallet:o'),
        `${o.base}gb:${id}`,
        ...buckets,
      ],
      [
        seq,
        holdId,
        holdId === '' ? '' : 'voucher:v',
        'wallet:o',
        ...[a.backV, a.backW, a.usedV, a.usedW, a.exShare, a.exCost].map((x) => (x ?? 0n).toString()),
        600_000,
        a.last ? '1' : '0',
        ...buckets.flatMap((_, i) => [a.units?.[i] ?? 0, 1000]),
      ],
    )) as string;
}

const counter = async (key: string) => (await redis.get(key)) ?? 'absent';

describe('shared holds: the Lua scripts', () => {
  test('a missing counter is initialised from the ledger balance, once; the hold takes voucher and wallet parts', async () => {
    const o = org();
    const first = await admit(o, 'h1', {
      worst: 1000n,
      wallet: { id: 'wallet:o', balance: 500n },
      vouchers: [{ id: 'voucher:v', balance: 2000n, share: 800n }],
    });
    assert.deepEqual(first, ['ok', 2, '800', '200', 1]);
    assert.equal(await counter(o.counter('voucher:v')), '1200');
    assert.equal(await counter(o.counter('wallet:o')), '300');
    // another replica's older read does not initialise again
    const second = await admit(o, 'h2', {
      worst: 1000n,
      wallet: { id: 'wallet:o', balance: 999_999n },
      vouchers: [{ id: 'voucher:v', balance: 999_999n, share: 800n }],
    });
    assert.deepEqual(second, ['ok', 2, '800', '200', 1]);
    assert.equal(await counter(o.counter('voucher:v')), '400');
    assert.equal(await counter(o.counter('wallet:o')), '100');
  });

  test('all or nothing: a wallet that cannot cover its part takes nothing from the voucher or the buckets', async () => {
    const o = org();
    const bucket = `${o.base}rl:o:r`;
    const refused = await admit(o, 'h1', {
      worst: 1000n,
      wallet: { id: 'wallet:o', balance: 100n },
      vouchers: [{ id: 'voucher:v', balance: 2000n, share: 800n }],
      buckets: [{ key: bucket, capacity: 10, amount: 1 }],
    });
    assert.deepEqual(refused, ['wallet', 2, '100', '200']);
    assert.equal(await counter(o.counter('voucher:v')), '2000', 'initialised, nothing taken');
    assert.equal(await redis.hlen(o.hold), 0);
    assert.equal(await redis.exists(bucket), 0, 'the bucket was not touched');
    // block: a voucher that cannot hold its share refuses, naming it
    const blocked = await admit(o, 'h2', {
      worst: 10_000n,
      wallet: { id: 'wallet:o', balance: 100n },
      vouchers: [{ id: 'voucher:v', balance: 2000n, share: 8000n }],
    });
    assert.deepEqual(blocked, ['voucher', 2, '2000', '8000']);
    // self-pay: the voucher holds what it has, the wallet the rest (here too much)
    const selfPay = await admit(o, 'h3', {
      worst: 2050n,
      wallet: { id: 'wallet:o', balance: 100n },
      vouchers: [{ id: 'voucher:v', balance: 2000n, share: 2050n, selfPay: true }],
    });
    assert.deepEqual(selfPay, ['ok', 2, '2000', '50', 1]);
    // a postpaid organisation is never refused for money
    const postpaid = await admit(o, 'h4', {
      prepaid: false,
      worst: 5000n,
      wallet: { id: 'wallet:o', balance: 0n },
      vouchers: [{ id: 'voucher:v', balance: 0n, share: 4000n }],
    });
    assert.deepEqual(
      postpaid,
      ['ok', 0, '0', '5000', 1],
      'no voucher with money left: the wallet holds it all',
    );
  });

  test('rate limits: every bucket is checked before any is taken; a refusal names the bucket', async () => {
    const o = org();
    const requests = `${o.base}rl:o:r`;
    const tokens = `${o.base}rl:o:t`;
    const buckets = [
      { key: requests, capacity: 3, amount: 1 },
      { key: tokens, capacity: 100, amount: 40 },
    ];
    assert.deepEqual(await admit(o, '', { worst: 0n, wallet: { id: 'w', balance: 0n }, buckets }), [
      'ok',
      0,
      '0',
      '0',
      1,
      '2',
      '60',
    ]);
    await admit(o, '', { worst: 0n, wallet: { id: 'w', balance: 0n }, buckets });
    const refused = await admit(o, '', { worst: 0n, wallet: { id: 'w', balance: 0n }, buckets });
    assert.equal(refused[0], 'rate');
    assert.equal(refused[1], 2, 'the tokens bucket refused');
    assert.ok(Number(refused[2]) >= 1 && Number(refused[2]) < 1.1, 'requests level untouched by the refusal');
    assert.ok(Number(refused[3]) >= 20 && Number(refused[3]) < 21);
  });

  test('an expired hold is reaped and given back; its settle then takes the real cost', async () => {
    const o = org();
    const accounts = {
      worst: 1000n,
      wallet: { id: 'wallet:o', balance: 10_000n },
      vouchers: [{ id: 'voucher:v', balance: 10_000n, share: 800n }],
    };
    assert.equal((await admit(o, 'short', { ...accounts, leaseMs: 50 }))[0], 'ok');
    assert.equal(await counter(o.counter('voucher:v')), '9200');
    await new Promise((r) => setTimeout(r, 80));
    // the next admission reaps it first
    assert.equal((await admit(o, 'next', accounts))[0], 'ok');
    assert.equal(
      await counter(o.counter('voucher:v')),
      '9200',
      'the expired 800 came back, the new 800 went',
    );
    assert.equal(await counter(o.counter('wallet:o')), '9800');
    assert.equal(await redis.hexists(o.hold, 'short'), 0);
    // the expired call ends after all: its real cost 500 (voucher 400, wallet 100) is taken
    assert.equal(await settle(o, 'short', 'voucher:v', 'wallet:o', 400n, 500n), '400');
    assert.equal(await counter(o.counter('voucher:v')), '8800');
    assert.equal(await counter(o.counter('wallet:o')), '9700');
    // a live hold settles: held − real given back
    assert.equal(await settle(o, 'next', 'voucher:v', 'wallet:o', 400n, 500n), '400');
    assert.equal(await counter(o.counter('voucher:v')), '9200');
    assert.equal(await counter(o.counter('wallet:o')), '9800');
    // the same settle sent again (its reply lost to a timeout, within the lease) finds its hold gone:
    // it had run, and it is not a second charge
    assert.equal(await settle(o, 'next', 'voucher:v', 'wallet:o', 400n, 500n, true), 'dup');
    assert.equal(await counter(o.counter('voucher:v')), '9200');
    assert.equal(await counter(o.counter('wallet:o')), '9800');
    // one whose first sending never ran finds its hold and settles it
    assert.equal((await admit(o, 'lost', accounts))[0], 'ok');
    assert.equal(await counter(o.counter('voucher:v')), '8400');
    assert.equal(await settle(o, 'lost', 'voucher:v', 'wallet:o', 400n, 500n, true), '400');
    assert.equal(await counter(o.counter('voucher:v')), '8800');
    assert.equal(await counter(o.counter('wallet:o')), '9700');
    assert.equal(await redis.zcard(o.holds), 0);
    const held = await runScript(redis, SCRIPTS.held, [o.holds, o.hold], [`${o.base}a:`]);
    assert.equal(held, '0');
  });

  test('a counter initialised again subtracts the live holds; a stale read is told to read again', async () => {
    const o = org();
    const accounts = {
      worst: 1000n,
      wallet: { id: 'wallet:o', balance: 10_000n },
      vouchers: [{ id: 'voucher:v', balance: 10_000n, share: 800n }],
    };
    await admit(o, 'live', accounts);
    // the counters expire (idle), the hold is still live: the ledger has not seen its charge
    await redis.del(o.counter('voucher:v'), o.counter('wallet:o'));
    assert.equal((await admit(o, 'again', accounts))[0], 'ok');
    assert.equal(await counter(o.counter('voucher:v')), '8400', 'ledger 10,000 less two live holds of 800');
    // a charge meets a missing counter: a replica that read before it is stale
    await redis.del(o.counter('voucher:v'));
    await settle(o, 'gone-hold', 'voucher:v', 'wallet:o', 400n, 500n);
    assert.deepEqual(await admit(o, 'stale', accounts), ['stale', 2]);
    const version = await redis.hget(o.ver, 'voucher:v');
    const fresh = await admit(o, 'fresh', {
      ...accounts,
      wallet: { ...accounts.wallet, version: (await redis.hget(o.ver, 'wallet:o')) ?? '0' },
      vouchers: [{ ...accounts.vouchers[0]!, balance: 9_600n, version: version! }],
    });
    assert.equal(fresh[0], 'ok');
  });

  test('a deposit reaches the counter exactly once, also against an initialisation racing it', async () => {
    const o = org();
    const wallet = 'wallet:o';
    const accounts = (balance: bigint, version = '0') => ({
      worst: 100n,
      wallet: { id: wallet, balance, version },
    });
    const deposit = async (amount: bigint, token: string) =>
      runScript(
        redis,
        SCRIPTS.fundsCommit,
        [o.ver, o.iv, o.counter(wallet)],
        [wallet, amount.toString(), token],
      );
    const prepare = async () => String(await runScript(redis, SCRIPTS.fundsPrepare, [o.ver], [wallet]));

    // the counter exists before the deposit begins: the deposit is added
    await admit(o, 'a', accounts(1000n));
    await settle(o, 'a', '', wallet, 0n, 0n);
    assert.equal(await counter(o.counter(wallet)), '1000');
    assert.equal(await deposit(500n, await prepare()), 'added');
    assert.equal(await counter(o.counter(wallet)), '1500');

    // a replica initialises while the deposit is in flight (its ledger read may or may not have it):
    // the counter is dropped and read again
    await redis.del(o.counter(wallet));
    const token = await prepare();
    const version = (await redis.hget(o.ver, wallet))!;
    assert.equal((await admit(o, 'b', accounts(2000n, version)))[0], 'ok');
    assert.equal(await deposit(300n, token), 'dropped');
    assert.equal(await counter(o.counter(wallet)), 'absent');
    // a read from before the commit is stale now; one after it initialises
    assert.deepEqual(await admit(o, 'c', accounts(2000n, version)), ['stale', 1]);
    const after = (await redis.hget(o.ver, wallet))!;
    assert.equal((await admit(o, 'd', accounts(2300n, after)))[0], 'ok');
    assert.equal(await counter(o.counter(wallet)), String(2300 - 100 - 100), 'less the two live holds');
  });

  test("an allowance takes several calls' worth at once, at most 1/16 of each account and bucket; alone when fewer than two fit", async () => {
    const o = org();
    const requests = `${o.base}rl:k:r:k1`;
    const buckets = [{ key: requests, capacity: 1000, amount: 1 }];
    const accounts = {
      worst: 1000n,
      wallet: { id: 'wallet:o', balance: 64_000n },
      vouchers: [{ id: 'voucher:v', balance: 800_000n, share: 800n }],
      buckets,
    };
    // 8 asked; the wallet's 1/16 (4,000) covers 20 calls' 200, the voucher's 50,000 covers 62: 8 taken
    assert.deepEqual(await admit(o, 'a1', { ...accounts, calls: 8 }), ['ok', 2, '6400', '1600', 8, '992']);
    assert.equal(await counter(o.counter('voucher:v')), String(800_000 - 6400));
    assert.equal(await counter(o.counter('wallet:o')), String(64_000 - 1600));
    assert.equal(await redis.hget(o.hold, 'a1'), 'wallet:o=1600;voucher:v=6400');
    // 100 asked: the wallet's 1/16 (3,900) limits it to 19
    const big = await admit(o, 'a2', { ...accounts, calls: 100 });
    assert.deepEqual(big.slice(0, 5), ['ok', 2, String(19 * 800), String(19 * 200), 19]);
    // a bucket with 1/16 of it under two calls: the call goes alone, as with calls = 1
    const small = org();
    const tight = [{ key: `${small.base}rl:k:r:k1`, capacity: 20, amount: 1 }];
    assert.deepEqual(await admit(small, 's1', { ...accounts, buckets: tight, calls: 8 }), [
      'ok',
      2,
      '800',
      '200',
      1,
      '19',
    ]);
    // refusals are the call's own: a wallet that cannot pay one call's part is refused as before
    const poor = org();
    assert.deepEqual(
      await admit(poor, 'p1', { ...accounts, wallet: { id: 'wallet:o', balance: 100n }, calls: 8 }),
      ['wallet', 2, '100', '200'],
    );
  });

  test('an allowance gives back what its calls did not use and keeps what they used as charges; a reaped one charges the used part', async () => {
    const o = org();
    const requests = `${o.base}rl:k:r:k1`;
    const accounts = {
      worst: 1000n,
      wallet: { id: 'wallet:o', balance: 100_000n },
      vouchers: [{ id: 'voucher:v', balance: 100_000n, share: 800n }],
      buckets: [{ key: requests, capacity: 1000, amount: 1 }],
    };
    assert.equal((await admit(o, 'a', { ...accounts, calls: 4 }))[4], 4); // held 3,200 + 800
    const giveBack = giveBackTo(o, 'a', [requests]);
    // a flush while calls go on: 1,000 used (voucher 800), nothing back yet
    assert.equal(await giveBack(1, { usedV: 800n, usedW: 200n }), 'ok');
    assert.equal(await redis.hget(o.hold, 'a'), 'wallet:o=600;voucher:v=2400');
    assert.equal(await counter(o.counter('voucher:v')), String(100_000 - 3200), 'used stays taken');
    // sent again after a timeout (it ran): applied once
    assert.equal(await giveBack(1, { usedV: 800n, usedW: 200n }), 'dup');
    assert.equal(await redis.hget(o.hold, 'a'), 'wallet:o=600;voucher:v=2400');
    // retired: the unused 2,400 + 600 and 2 requests come back; 100 used beyond it (voucher 80)
    const level = Number(await redis.hget(requests, 'level'));
    assert.equal(
      await giveBack(2, { backV: 2400n, backW: 600n, exShare: 80n, exCost: 100n, last: true, units: [2] }),
      'ok',
    );
    assert.equal(await redis.hexists(o.hold, 'a'), 0, 'the last give-back removes the hold');
    assert.equal(await counter(o.counter('voucher:v')), String(100_000 - 800 - 80));
    assert.equal(await counter(o.counter('wallet:o')), String(100_000 - 200 - 20));
    assert.equal(Number(await redis.hget(requests, 'level')), Math.min(1000, level + 2));
    // a bucket never gives back past its capacity
    await giveBackTo(o, '', [requests], 'only-buckets')(1, { last: true, units: [50] });
    assert.equal(Number(await redis.hget(requests, 'level')), 1000);

    // reaped before its calls' use was sent: everything came back, so the use is charged now
    assert.equal((await admit(o, 'b', { ...accounts, calls: 4, leaseMs: 30 }))[4], 4);
    await new Promise((r) => setTimeout(r, 50));
    await runScript(redis, SCRIPTS.held, [o.holds, o.hold], [`${o.base}a:`]); // reaps
    assert.equal(await counter(o.counter('voucher:v')), String(100_000 - 880));
    assert.equal(
      await giveBackTo(o, 'b', [requests])(1, {
        backV: 2400n,
        backW: 600n,
        usedV: 800n,
        usedW: 200n,
        last: true,
      }),
      'gone',
    );
    assert.equal(await counter(o.counter('voucher:v')), String(100_000 - 880 - 800));
    assert.equal(await counter(o.counter('wallet:o')), String(100_000 - 220 - 200));
  });

  test('a give-back never returns more than the hold still holds, and a charge meeting no counter makes older reads stale', async () => {
    const o = org();
    const accounts = {
      worst: 1000n,
      wallet: { id: 'wallet:o', balance: 100_000n },
      vouchers: [{ id: 'voucher:v', balance: 100_000n, share: 800n }],
    };
    assert.equal((await admit(o, 'a', { ...accounts, calls: 4 }))[4], 4); // 3,200 + 800
    // the replica believes it holds 500 more on the wallet (an extension that never reached Redis)
    assert.equal(await giveBackTo(o, 'a', [])(1, { backW: 1300n, usedW: 0n }), 'ok');
    assert.equal(await counter(o.counter('wallet:o')), String(100_000), 'only the 800 held came back');
    assert.equal(await redis.hget(o.hold, 'a'), 'wallet:o=0;voucher:v=3200', 'never negative');
    // the counter disappears (a deposit dropped it); the allowance's use is sent: a replica that read
    // the ledger before that charge must read again, as after a settle
    await redis.del(o.counter('voucher:v'));
    const before = await redis.hget(o.ver, 'voucher:v');
    assert.equal(await giveBackTo(o, 'a', [])(2, { usedV: 700n }), 'ok');
    assert.equal(Number(await redis.hget(o.ver, 'voucher:v')), Number(before ?? '0') + 1);
    assert.deepEqual(
      await admit(o, 'c', { ...accounts, vouchers: [{ ...accounts.vouchers[0]!, version: before ?? '0' }] }),
      ['stale', 2],
    );
    // the last returns what the hold still has less what was used
    assert.equal(await giveBackTo(o, 'a', [])(3, { last: true }), 'ok');
    assert.equal(await redis.hexists(o.hold, 'a'), 0);
  });

  test('allowances for postpaid organisations and self-paying vouchers: only whole calls the voucher pays in full', async () => {
    const o = org();
    // postpaid: the wallet is not a limit, the voucher's 1/16 is (16,000 / 800 = 20)
    const postpaid = await admit(o, 'p', {
      prepaid: false,
      worst: 1000n,
      wallet: { id: 'wallet:o', balance: 0n },
      vouchers: [{ id: 'voucher:v', balance: 256_000n, share: 800n }],
      calls: 64,
    });
    assert.deepEqual(postpaid.slice(0, 5), ['ok', 2, String(20 * 800), String(20 * 200), 20]);
    // a self-paying voucher that cannot pay one call's share in full: the call alone, partly from it
    const s = org();
    const selfPay = await admit(s, 's', {
      worst: 1000n,
      wallet: { id: 'wallet:o', balance: 100_000n },
      vouchers: [{ id: 'voucher:v', balance: 500n, share: 800n, selfPay: true }],
      calls: 8,
    });
    assert.deepEqual(selfPay, ['ok', 2, '500', '500', 1]);
  });

  test('amounts past 2^32 stay exact integers (no exponent, no rounding)', async () => {
    const o = org();
    const big = 4_000_000_000_123_457n; // under 2^53
    assert.deepEqual(await admit(o, 'h', { worst: 1n, wallet: { id: 'w', balance: big } }), [
      'ok',
      0,
      '0',
      '1',
      1,
    ]);
    assert.equal(await counter(o.counter('w')), (big - 1n).toString());
  });
});
