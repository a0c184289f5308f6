import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { AuditTrail } from '../../src/audit/audit-log.ts';
import { FundsService } from '../../src/billing/funds.ts';
import { accountId, voucherShare } from '../../src/billing/ledger.ts';
import { parseKrwAmount } from '../../src/billing/money.ts';
import { ProgrammeCloseService } from '../../src/billing/programme-close.ts';
import { ProgrammeService } from '../../src/billing/programmes.ts';
import { SettlementService } from '../../src/billing/settlement.ts';
import {
  DatabaseUsageJournal,
  recordForCharging,
  type UsageRecord,
} from '../../src/billing/usage-journal.ts';
import { kstMonth } from '../../src/kst.ts';
import type { Database } from '../../src/storage/database.ts';
import { openDatabase } from '../../src/storage/database.ts';
import { migrate } from '../../src/storage/migrator.ts';
import { createTestDatabase, type TestDatabase, testEngine } from '../helpers/databases.ts';

/**
 * Decision 0021: on PostgreSQL a usage record is made durable on its own and charged right after, off
 * the response path. These are the failures that split opens: a replica dying between the two, a
 * charge that fails, several replicas charging the same records, and a month or a programme closed
 * while charges are still on their way. SQLite posts a record in the transaction that applies it.
 */
const skip =
  testEngine() === 'postgres' ? false : 'SQLite posts each record in the transaction that applies it';

const noTrail: AuditTrail = async () => {};
const ORGS = ['org_1', 'org_2', 'org_3'] as const;
const SUPPLIER_OF: Record<string, string> = { prd_1: 'sup_a', prd_2: 'sup_b' };

let database: TestDatabase;
let db: Database;
let n = 0;
before(async () => {
  if (skip) return;
  database = await createTestDatabase();
  db = await openDatabase(database.location);
  await migrate(db);
  const now = Date.now();
  await db.run(
    `INSERT INTO suppliers (id, name, status, created_at, updated_at) VALUES ('sup_a', 'A', 'active', ?, ?),
       ('sup_b', 'B', 'active', ?, ?)`,
    [now, now, now, now],
  );
  for (const [id, supplier] of Object.entries(SUPPLIER_OF)) {
    await db.run(
      `INSERT INTO products (id, supplier_id, model, display_name, purposes, modality, context_window,
         price_input_micro_per_1m, price_output_micro_per_1m, residency, status, created_at, updated_at)
       VALUES (?, ?, ?, ?, '["chat"]', 'text', 8192, 1, 1, 'domestic', 'active', ?, ?)`,
      [id, supplier, id, id, now, now],
    );
  }
  for (const id of ORGS) {
    await db.run(
      `INSERT INTO organizations (id, name, class, status, created_at, updated_at) VALUES (?, ?, 'sme', 'active', ?, ?)`,
      [id, id, now, now],
    );
  }
});
after(async () => {
  await db?.close();
  await database?.drop();
});

function record(
  organizationId: string,
  cost: bigint,
  options: { createdAtMs?: number; voucherId?: string | null; productId?: string } = {},
): UsageRecord {
  const productId = options.productId ?? 'prd_1';
  return {
    requestId: `req_charging_${n++}`,
    createdAtMs: options.createdAtMs ?? Date.now(),
    organizationId,
    apiKeyId: `key_${organizationId}`,
    productId,
    deploymentId: 'dep_1',
    model: productId,
    endpoint: 'chat.completions',
    stream: false,
    status: 'ok',
    httpStatus: 200,
    errorCode: null,
    promptTokens: 10,
    completionTokens: 20,
    usageSource: 'upstream',
    priceInputMicroPer1M: 1_000_000n,
    priceOutputMicroPer1M: 1_000_000n,
    costMicroKrw: cost,
    latencyMs: 5,
    ttftMs: null,
    usageNote: null,
    voucherId: options.voucherId ?? null,
  };
}

/** What a replica that died right after its records' commit leaves: records, no charges. */
async function recordOnly(records: readonly UsageRecord[]): Promise<void> {
  for (let i = 0; i < records.length; i += 200) await recordForCharging(db, records.slice(i, i + 200));
}

/** Per request id: how many charge transactions, and what the supplier's payable got. */
async function chargesOf(
  records: readonly UsageRecord[],
): Promise<Map<string, { n: number; payable: bigint }>> {
  const ids = records.map((r) => r.requestId);
  const rows = await db.all<{ request_id: string; n: number; payable: string }>(
    `SELECT t.request_id, COUNT(DISTINCT t.id) AS n,
       CAST(COALESCE(SUM(CASE WHEN e.account_id LIKE 'payable:%' THEN e.amount_micro_krw END), 0) AS TEXT) AS payable
     FROM ledger_transactions t JOIN ledger_entries e ON e.transaction_id = t.id
     WHERE t.kind = 'charge' AND t.request_id = ANY(?) GROUP BY t.request_id`,
    [`{${ids.join(',')}}`],
  );
  return new Map(rows.map((r) => [r.request_id, { n: Number(r.n), payable: BigInt(r.payable) }]));
}

async function assertChargedOnce(records: readonly UsageRecord[]): Promise<void> {
  const charges = await chargesOf(records);
  for (const r of records) {
    const c = charges.get(r.requestId);
    assert.ok(c, `${r.requestId} was never charged`);
    assert.equal(c.n, 1, `${r.requestId} charged ${c.n} times`);
    assert.equal(c.payable, r.costMicroKrw, `${r.requestId}: the supplier is owed its cost`);
  }
  const left = await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM usage_uncharged');
  assert.equal(Number(left!.n), 0, 'nothing left uncharged');
}

async function dailyRequests(organizationId: string): Promise<{ requests: number; cost: bigint }> {
  const row = await db.get<{ requests: number | null; cost: string | null }>(
    `SELECT SUM(requests) AS requests, CAST(SUM(cost_micro_krw) AS TEXT) AS cost FROM usage_daily
     WHERE organization_id = ?`,
    [organizationId],
  );
  return { requests: Number(row?.requests ?? 0), cost: BigInt(row?.cost ?? '0') };
}

async function balance(account: string): Promise<bigint> {
  const row = await db.get<{ b: string }>(
    'SELECT CAST(balance_micro_krw AS TEXT) AS b FROM ledger_accounts WHERE id = ?',
    [account],
  );
  return BigInt(row?.b ?? '0');
}

/** A transaction holding an account's row lock until released: charges touching it wait. */
async function holdAccount(account: string): Promise<{ release(): Promise<void> }> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let locked!: () => void;
  const isLocked = new Promise<void>((resolve) => {
    locked = resolve;
  });
  const holding = db.transaction(async (tx) => {
    const row = await tx.get('SELECT id FROM ledger_accounts WHERE id = ? FOR UPDATE', [account]);
    assert.ok(row, `${account} exists`);
    locked();
    await released;
  });
  await Promise.race([isLocked, holding]);
  return {
    async release() {
      release();
      await holding;
    },
  };
}

/** The test database, its transactions taken by `transaction` (to fail or count them); not closed by it. */
function withTransactions(transaction: Database['transaction']): Database {
  return {
    dialect: db.dialect,
    get commits() {
      return db.commits;
    },
    all: (sql, params) => db.all(sql, params),
    get: (sql, params) => db.get(sql, params),
    run: (sql, params) => db.run(sql, params),
    exec: (sql) => db.exec(sql),
    ping: () => db.ping(),
    close: async () => {},
    transaction,
  };
}

const settledWithin = (p: Promise<unknown>, ms: number) =>
  Promise.race([
    p.then(
      () => true,
      () => true,
    ),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms)),
  ]);

test('records made durable and never charged (their replica killed in between) are charged exactly once by the next start, daily sums included', {
  skip,
}, async () => {
  const records = Array.from({ length: 250 }, (_, i) => record('org_1', BigInt(1000 + i)));
  await recordOnly(records);
  assert.equal((await chargesOf(records)).size, 0, 'nothing charged yet');
  const before = await dailyRequests('org_1');
  // a record recorded again (a replay) is not queued again
  assert.deepEqual(await recordForCharging(db, records.slice(0, 3)), []);

  const restarted = new DatabaseUsageJournal(db);
  await restarted.sync();
  await assertChargedOnce(records);
  const daily = await dailyRequests('org_1');
  assert.equal(daily.requests - before.requests, records.length);
  assert.equal(
    daily.cost - before.cost,
    records.reduce((sum, r) => sum + r.costMicroKrw, 0n),
  );
  // another replica, and a second start, find nothing more to charge
  const other = new DatabaseUsageJournal(db);
  await other.syncAll();
  await restarted.syncAll();
  await assertChargedOnce(records);
  assert.equal((await dailyRequests('org_1')).requests - before.requests, records.length);
  await Promise.all([restarted.close(), other.close()]);
});

test('a charge step that fails: appends still resolve (the records are durable), sync says it failed, and the charges land once when the database answers again', {
  skip,
}, async () => {
  let failing = true;
  const errors: string[] = [];
  // the record is one statement outside any transaction; only the charge takes a transaction
  const flaky = withTransactions((fn) =>
    failing
      ? Promise.reject(Object.assign(new Error('terminating connection'), { code: '57P01' }))
      : db.transaction(fn),
  );
  const journal = new DatabaseUsageJournal(flaky, undefined, (message) => errors.push(message), {
    retryBaseMs: 20,
    maxRetryMs: 40,
    sweepIntervalMs: 60_000,
  });
  const records = Array.from({ length: 30 }, () => record('org_2', 5000n));
  await Promise.all(records.map((r) => journal.append(r)));
  const stored = await db.get<{ n: number }>(
    `SELECT COUNT(*) AS n FROM usage_events WHERE request_id = ANY(?)`,
    [`{${records.map((r) => r.requestId).join(',')}}`],
  );
  assert.equal(Number(stored!.n), records.length, 'every record is durable');
  assert.equal((await chargesOf(records)).size, 0);
  const charged = journal.whenCharged(records[0]!.requestId);
  assert.equal(await settledWithin(charged, 100), false, 'a hold waiting for this charge still waits');
  await assert.rejects(journal.sync(), /terminating connection/, 'a balance read must not go ahead');
  assert.ok(errors.length > 0, 'the failure is reported');

  failing = false;
  await journal.sync();
  await charged;
  await assertChargedOnce(records);
  await journal.close();
});

test('records recorded together wait for company and share one charge transaction; a reader does not wait for the window', {
  skip,
}, async () => {
  let transactions = 0;
  const counting = withTransactions((fn) => {
    transactions++;
    return db.transaction(fn);
  });
  const journal = new DatabaseUsageJournal(counting, undefined, undefined, {
    coalesceMs: 1_000,
    sweepIntervalMs: 60_000,
  });
  await journal.sync(); // what the start charges first is not this test's
  transactions = 0;
  const first = Array.from({ length: 20 }, () => record('org_3', 700n));
  await Promise.all(first.map((r) => journal.append(r)));
  assert.equal((await chargesOf(first)).size, 0, 'durable at once, charged only once the window ends');
  await Promise.all(first.map((r) => journal.whenCharged(r.requestId)));
  await assertChargedOnce(first);
  assert.equal(transactions, 1, 'twenty records, one charge transaction');

  // a reader (usage, funds, a month's close) syncs: charged now, not at the end of the window
  const second = Array.from({ length: 5 }, () => record('org_3', 900n));
  await Promise.all(second.map((r) => journal.append(r)));
  const started = Date.now();
  await journal.sync();
  assert.ok(Date.now() - started < 900, `sync waited ${Date.now() - started} ms`);
  await assertChargedOnce(second);
  assert.equal(transactions, 2);
  await journal.close();
});

test('replicas charging the same records at once never charge one twice, and the ledger still caps each voucher at its balance', {
  skip,
}, async () => {
  const programmes = new ProgrammeService(db);
  const p = await programmes.create(
    {
      name: '동시 청구',
      startsOn: '2026-01-01',
      endsOn: '2030-12-31',
      budgetKrw: '1000',
      copayPercent: { sme: 20 },
      onExhausted: 'self-pay',
    },
    noTrail,
    'operator',
  );
  // each voucher pays 800 µ₩ of a 1,000 µ₩ call: 0.05 KRW lasts 62 calls and a half
  const vouchers = new Map<string, string>();
  for (const org of ORGS) {
    const v = await programmes.issueVoucher(
      p.id,
      { organizationId: org, amountKrw: '0.05' },
      noTrail,
      'operator',
    );
    vouchers.set(org, v.id);
  }
  const waitingRecords = Array.from({ length: 1200 }, (_, i) => {
    const org = ORGS[i % 3]!;
    return record(org, 1000n, { voucherId: vouchers.get(org)!, productId: i % 5 === 0 ? 'prd_2' : 'prd_1' });
  });
  await recordOnly(waitingRecords);
  const dailyBefore = await Promise.all(ORGS.map((o) => dailyRequests(o)));
  const before = new Map(
    await Promise.all(ORGS.map(async (o) => [o, await balance(accountId.wallet(o))] as const)),
  );

  // three replicas draining and sweeping (no grace) while a fourth records and charges its own
  const settings = { orphanAfterMs: 0, sweepIntervalMs: 5 };
  const errors: string[] = [];
  const replicas = Array.from(
    { length: 3 },
    () => new DatabaseUsageJournal(db, undefined, (m, e) => errors.push(`${m}: ${String(e)}`), settings),
  );
  const owner = new DatabaseUsageJournal(
    db,
    undefined,
    (m, e) => errors.push(`${m}: ${String(e)}`),
    settings,
  );
  const ownRecords = Array.from({ length: 300 }, (_, i) => {
    const org = ORGS[i % 3]!;
    return record(org, 1000n, { voucherId: vouchers.get(org)! });
  });
  await Promise.all([
    ...replicas.flatMap((r) => [r.syncAll(), r.syncAll()]),
    Promise.all(ownRecords.map((r) => owner.append(r))).then(() => owner.sync()),
    replicas[0]!.syncAll(),
  ]);
  // sweeps may still be under way: one more drain everywhere, then stop them
  await Promise.all([...replicas, owner].map((r) => r.syncAll()));
  await Promise.all([...replicas, owner].map((r) => r.close()));
  if (errors.length > 0) console.log(`charging errors (retried): ${errors.join('\n')}`);

  const all = [...waitingRecords, ...ownRecords];
  await assertChargedOnce(all);
  // the ledger's unique request id alone would hide a record posted twice; the daily sums would not
  const dailyAfter = await Promise.all(ORGS.map((o) => dailyRequests(o)));
  assert.equal(
    dailyAfter.reduce((sum, d) => sum + d.requests, 0) - dailyBefore.reduce((sum, d) => sum + d.requests, 0),
    all.length,
    'each record is in the daily sums once',
  );
  for (const org of ORGS) {
    const mine = all.filter((r) => r.organizationId === org);
    const cost = mine.reduce((sum, r) => sum + r.costMicroKrw, 0n);
    const shares = mine.reduce((sum, r) => sum + voucherShare(r.costMicroKrw, 2000), 0n);
    const amount = parseKrwAmount('0.05');
    const left = await balance(accountId.voucher(vouchers.get(org)!));
    assert.equal(left, 0n, `${org}: the voucher is used up, never below zero`);
    // whatever the order of the charges, the voucher pays min(Σ shares, its amount) and the wallet the rest
    const paid = shares < amount ? shares : amount;
    assert.equal(amount - left, paid);
    assert.equal(before.get(org)! - (await balance(accountId.wallet(org))), cost - paid);
  }
  const payable = (await balance(accountId.payable('sup_a'))) + (await balance(accountId.payable('sup_b')));
  assert.ok(payable >= all.reduce((sum, r) => sum + r.costMicroKrw, 0n));
});

test('closing a month right after: what another replica has recorded and not yet charged is in that month, not the next', {
  skip,
}, async () => {
  const month = kstMonth(Date.parse(`${kstMonth(Date.now())}-01T00:00:00+09:00`) - 86_400_000);
  const inMonth = Date.parse(`${month}-15T12:00:00+09:00`);
  const funds = new FundsService(db, new ProgrammeService(db));
  await funds.deposit('org_3', { amountKrw: '1' }, noTrail, 'operator');
  // replica A has been up for a while: its start found nothing to charge
  const a = new DatabaseUsageJournal(db);
  await a.sync();
  // replica B records calls of that month; its charge is held up behind a lock on the wallet
  const lock = await holdAccount(accountId.wallet('org_3'));
  const b = new DatabaseUsageJournal(db);
  const fromB = Array.from({ length: 20 }, () => record('org_3', 3000n, { createdAtMs: inMonth }));
  await Promise.all(fromB.map((r) => b.append(r)));
  // and a replica that died after recording, before charging
  const orphans = Array.from({ length: 10 }, () => record('org_3', 7000n, { createdAtMs: inMonth }));
  await recordOnly(orphans);

  // the operator closes the month on replica A at once
  const settlement = new SettlementService(db, () => a.syncAll());
  const closing = settlement.close({ month, vatPercent: 10 }, noTrail, 'operator');
  assert.equal(await settledWithin(closing, 300), false, 'the close waits for the charges in flight');
  await lock.release();
  const summary = await closing;
  assert.equal(summary.status, 'closed');
  const all = [...fromB, ...orphans];
  assert.equal(summary.totals!.charges, all.length, 'every call recorded before the close is in it');
  assert.equal(summary.totals!.adjustments, 0);
  assert.equal(BigInt(parseKrwAmount(summary.totals!.amountKrw)), 20n * 3000n + 10n * 7000n);
  const months = await db.all<{ settlement_month: string }>(
    'SELECT DISTINCT settlement_month FROM ledger_transactions WHERE request_id = ANY(?)',
    [`{${all.map((r) => r.requestId).join(',')}}`],
  );
  assert.deepEqual(
    months.map((m) => m.settlement_month),
    [month],
  );
  await assertChargedOnce(all);
  await Promise.all([a.close(), b.close()]);
});

test('closing a programme right after: charges still on their way are paid by its vouchers before the unspent rest goes back', {
  skip,
}, async () => {
  const programmes = new ProgrammeService(db);
  const p = await programmes.create(
    {
      name: '종료 직전 청구',
      startsOn: '2026-01-01',
      endsOn: '2030-12-31',
      budgetKrw: '10',
      copayPercent: { sme: 20 },
      onExhausted: 'self-pay',
    },
    noTrail,
    'operator',
  );
  const voucher = await programmes.issueVoucher(
    p.id,
    { organizationId: 'org_2', amountKrw: '1' },
    noTrail,
    'operator',
  );
  const a = new DatabaseUsageJournal(db);
  await a.sync();
  const lock = await holdAccount(accountId.voucher(voucher.id));
  const b = new DatabaseUsageJournal(db);
  const calls = Array.from({ length: 15 }, () => record('org_2', 10_000n, { voucherId: voucher.id }));
  await Promise.all(calls.map((r) => b.append(r)));
  const orphans = Array.from({ length: 5 }, () => record('org_2', 10_000n, { voucherId: voucher.id }));
  await recordOnly(orphans);

  const closing = new ProgrammeCloseService(db, () => a.syncAll()).close(
    p.id,
    { early: true, reason: '시험' },
    noTrail,
    'operator',
  );
  assert.equal(await settledWithin(closing, 300), false, 'the close waits for the charges in flight');
  await lock.release();
  const report = await closing;
  const paid = 20n * voucherShare(10_000n, 2000);
  const line = report.vouchers.find((v) => v.voucherId === voucher.id)!;
  assert.equal(parseKrwAmount(line.voucherPaidKrw), paid, 'the voucher paid for every call recorded before');
  assert.equal(parseKrwAmount(line.usedKrw), 20n * 10_000n);
  assert.equal(parseKrwAmount(line.returnedKrw), parseKrwAmount('1') - paid);
  assert.equal(await balance(accountId.voucher(voucher.id)), 0n);
  await assertChargedOnce([...calls, ...orphans]);
  await Promise.all([a.close(), b.close()]);
});
