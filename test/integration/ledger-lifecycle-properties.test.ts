import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Caller } from '../../src/accounts/key-cache.ts';
import { FundsService } from '../../src/billing/funds.ts';
import { accountId } from '../../src/billing/ledger.ts';
import { costOf, formatKrw } from '../../src/billing/money.ts';
import { ProgrammeService } from '../../src/billing/programmes.ts';
import { SettlementService } from '../../src/billing/settlement.ts';
import { insertUsageRecords, type UsageRecord } from '../../src/billing/usage-journal.ts';
import type { RoutableProduct } from '../../src/catalog/catalog-snapshot.ts';
import { inForce, insertPriceRow, type PriceRow, priceRows } from '../../src/catalog/product-prices.ts';
import { kstMonth, kstMonthStart, nextMonth } from '../../src/kst.ts';
import type { AdmissionTicket } from '../../src/limits/admission.ts';
import { BudgetHolds } from '../../src/limits/budget-holds.ts';
import { type Database, openDatabase } from '../../src/storage/database.ts';
import { migrate } from '../../src/storage/migrator.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/databases.ts';
import {
  insertLedgerParties,
  LEDGER_PRODUCT_IDS,
  LEDGER_PRODUCTS,
  type LedgerProductId,
  LedgerRun,
  noTrail,
} from '../helpers/ledger-model.ts';

/**
 * The ledger's life around the calls (issue 13): random deposits, vouchers, calls admitted with budget
 * holds and then settled or released (some still in flight across a month's end), effective-dated
 * price changes, month closes and replays, on a virtual clock through January–October 2026 KST.
 * After every step: every transaction sums to zero, balances are the sums of their entries and what
 * the rules say, no voucher or programme below zero, no prepaid wallet below zero, holds never
 * negative; every charge used the price in force when its call was made, and never changes; a late
 * charge lands in the first open month; a closed month's statements and totals never change. At the
 * end nothing is held. A failing seed is printed: rerun with KAIHUB_LEDGER_SEED=<seed>
 * (KAIHUB_LEDGER_STEPS sets the length).
 *
 * Prices are appended with `insertPriceRow` (what the catalog service calls) rather than through the
 * service, which refuses a change before the real clock's now, and months are closed by the real
 * SettlementService, which refuses a month that has not ended by the real clock: the virtual clock
 * runs in months that have.
 */

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const START = Date.parse('2026-01-01T00:00:00+09:00');
const LAST = Date.parse('2026-10-31T23:00:00+09:00');
const ORGS = [
  { id: 'org_1', cls: 'sme', prepaid: true },
  { id: 'org_2', cls: 'midsize', prepaid: false },
  { id: 'org_3', cls: 'public', prepaid: false },
] as const;

let database: TestDatabase;
let db: Database;
before(async () => {
  database = await createTestDatabase();
  db = await openDatabase(database.location);
  await migrate(db);
  await insertLedgerParties(db, ORGS);
});
after(async () => {
  await db?.close();
  await database?.drop();
});

interface InFlight {
  ticket: AdmissionTicket;
  requestId: string;
  organizationId: string;
  productId: LedgerProductId;
  /** The virtual time the call was made: the price in force then is the one it is charged at. */
  at: number;
  prompt: number;
  maxCompletion: number;
  inputMicroPer1M: bigint;
  outputMicroPer1M: bigint;
}

/** Whole won or odd µ₩; input now and then free (output never, so a call with output costs something). */
const randomPrice = (random: () => number, free: boolean): bigint =>
  free && random() < 0.1
    ? 0n
    : BigInt(1 + Math.floor(random() * 5_000)) * (random() < 0.5 ? 1_000_000n : 1_777n);

test('random holds, releases, deposits, price changes, month closes and late charges keep every ledger invariant', async () => {
  const run = new LedgerRun(db);
  const { seed, random, pick, model } = run;
  const steps = Number(process.env.KAIHUB_LEDGER_STEPS ?? 400);
  const settlement = new SettlementService(db);
  // every record is inserted (and charged) before the next admission: nothing to wait for
  const holds = new BudgetHolds(db, async () => {});

  const schedules = new Map<LedgerProductId, PriceRow[]>();
  const inserted: UsageRecord[] = [];
  /** request id → the cost it was charged and the settlement month it must land in */
  const charges = new Map<string, { cost: bigint; month: string }>();
  const closed = new Map<string, { statements: unknown; summary: unknown }>();
  const inFlight: InFlight[] = [];
  let now = START;
  let requests = 0;
  let admitted = 0;
  let refused = 0;
  let released = 0;
  let late = 0;

  for (const productId of LEDGER_PRODUCT_IDS) {
    const row: PriceRow = {
      productId,
      effectiveFrom: Date.parse('2025-01-01T00:00:00+09:00'),
      inputMicroPer1M: randomPrice(random, true),
      outputMicroPer1M: randomPrice(random, false),
      setBy: 'system',
      setAt: START,
    };
    await insertPriceRow(db, row);
    schedules.set(productId, [row]);
  }

  const productAt = (productId: LedgerProductId, at: number): RoutableProduct => {
    const row = inForce(schedules.get(productId)!, at)!;
    return {
      id: productId,
      model: productId,
      displayName: productId,
      supplierId: LEDGER_PRODUCTS[productId],
      supplierName: LEDGER_PRODUCTS[productId],
      modality: 'text',
      residency: 'domestic',
      contextWindow: 8192,
      createdAtSeconds: 0,
      prices: { inputMicroPer1M: row.inputMicroPer1M, outputMicroPer1M: row.outputMicroPer1M },
      fallbackModels: [],
      routingStrategy: 'weighted',
      deployments: [],
    };
  };

  /** A call admitted at the virtual now on the price in force then; null when refused. */
  const admitCall = async (
    o: (typeof ORGS)[number],
    productId: LedgerProductId,
    prompt: number,
    maxCompletion: number,
  ): Promise<InFlight | null> => {
    const product = productAt(productId, now);
    const requestId = `req-${seed}-${requests++}`;
    const caller: Caller = {
      keyId: `key_${o.id}`,
      organizationId: o.id,
      organizationName: o.id,
      organizationClass: o.cls,
      allowedModels: null,
      fallbackModels: null,
      maxConcurrentRequests: null,
    };
    const decision = await holds.admit({
      requestId,
      caller,
      product,
      estimatedPromptTokens: prompt,
      maxCompletionTokens: maxCompletion,
    });
    if (!decision.admitted) {
      assert.ok(o.prepaid, `${o.id} is postpaid, yet refused: ${decision.message}`);
      refused++;
      return null;
    }
    admitted++;
    return {
      ticket: decision.ticket,
      requestId,
      organizationId: o.id,
      productId,
      at: now,
      prompt,
      maxCompletion,
      inputMicroPer1M: product.prices.inputMicroPer1M,
      outputMicroPer1M: product.prices.outputMicroPer1M,
    };
  };

  const record = async (records: UsageRecord[]): Promise<void> => {
    await db.transaction((tx) => insertUsageRecords(tx, records, db.dialect));
    for (const r of records) {
      inserted.push(r);
      if (r.costMicroKrw === 0n) continue;
      let month = kstMonth(r.createdAtMs);
      while (closed.has(month)) month = nextMonth(month);
      if (month !== kstMonth(r.createdAtMs)) late++;
      charges.set(r.requestId, { cost: r.costMicroKrw, month });
      model.charge(r);
    }
  };

  const finish = async (call: InFlight, settle: boolean, completion?: number): Promise<void> => {
    if (!settle) {
      call.ticket.release();
      released++;
      return;
    }
    const tokens = completion ?? Math.floor(random() * (call.maxCompletion + 1));
    const prices = { inputMicroPer1M: call.inputMicroPer1M, outputMicroPer1M: call.outputMicroPer1M };
    const r: UsageRecord = {
      requestId: call.requestId,
      createdAtMs: call.at,
      organizationId: call.organizationId,
      apiKeyId: `key_${call.organizationId}`,
      productId: call.productId,
      deploymentId: null,
      model: call.productId,
      endpoint: 'chat.completions',
      stream: false,
      status: 'ok',
      httpStatus: 200,
      errorCode: null,
      promptTokens: call.prompt,
      completionTokens: tokens,
      usageSource: 'upstream',
      priceInputMicroPer1M: call.inputMicroPer1M,
      priceOutputMicroPer1M: call.outputMicroPer1M,
      costMicroKrw: costOf(call.prompt, tokens, prices),
      latencyMs: 10,
      ttftMs: null,
      usageNote: null,
      voucherId: call.ticket.voucherId,
    };
    // as the call layer does: the ticket first (it knows what was held), then the journal
    call.ticket.settle(r);
    await record([r]);
  };

  const check = async (): Promise<void> => {
    const actual = await run.assertLedgerAgrees();
    for (const o of ORGS) {
      if (o.prepaid)
        assert.ok((actual.get(accountId.wallet(o.id)) ?? 0n) >= 0n, `prepaid ${o.id}: wallet below zero`);
      assert.ok(holds.heldFor(o.id) >= 0n, `${o.id}: negative hold`);
    }
    // every charge as it was made: its cost, and the month it was settled in (late: the next open one)
    const charged = await db.all<{ request_id: string; month: string; payable: string }>(
      `SELECT t.request_id, t.settlement_month AS month, CAST(SUM(e.amount_micro_krw) AS TEXT) AS payable
       FROM ledger_transactions t JOIN ledger_entries e ON e.transaction_id = t.id
       WHERE t.kind = 'charge' AND e.account_id LIKE 'payable:%' GROUP BY t.request_id, t.settlement_month`,
    );
    assert.equal(charged.length, charges.size, 'one charge per costed call');
    for (const c of charged) {
      const want = charges.get(c.request_id);
      assert.ok(want, `${c.request_id}: charged though never costed`);
      assert.equal(BigInt(c.payable), want.cost, `${c.request_id}: charged its cost, once`);
      assert.equal(c.month, want.month, `${c.request_id}: settled in the first open month`);
    }
    for (const [month, before] of closed) {
      assert.deepEqual(await closedMonth(month), before, `${month} changed after it was closed`);
    }
  };

  const closedMonth = async (month: string) => ({
    statements: await db.all(
      `SELECT party_kind, party_id, statement_json FROM settlement_statements WHERE month = ?
       ORDER BY party_kind, party_id`,
      [month],
    ),
    summary: await settlement.month(month),
  });

  await run.property(async () => {
    for (let step = 0; step < steps; step++) {
      now = Math.min(LAST, now + Math.floor(random() < 0.3 ? random() * 5 * DAY : random() * 2 * HOUR));
      const r = random();
      if (r < 0.03 || model.programmeIds.length === 0) {
        await run.createProgramme(step, '2099-12-31');
      } else if (r < 0.1) {
        const programmeId = pick(model.programmeIds);
        const organizationId = pick(ORGS).id;
        const amount = BigInt(1 + Math.floor(random() * 200_000_000));
        if (amount > model.balance(accountId.programme(programmeId))) continue;
        // valid for the whole virtual year and by the real clock too, which admission reads
        await run.issueVoucher(
          programmeId,
          organizationId,
          amount,
          '2026-01-01',
          pick(['2098-12-31', '2099-12-31']),
        );
        holds.forget(organizationId);
      } else if (r < 0.2) {
        const organizationId = random() < 0.6 ? 'org_1' : pick(ORGS).id;
        await run.deposit(organizationId, 1 + Math.floor(random() * 50));
        holds.forget(organizationId);
      } else if (r < 0.25) {
        // a price change from now or later on: never in the past
        const productId = pick(LEDGER_PRODUCT_IDS);
        const schedule = schedules.get(productId)!;
        const effectiveFrom = Math.max(
          now + Math.floor(random() * 10 * DAY),
          schedule[schedule.length - 1]!.effectiveFrom + 1,
        );
        const row: PriceRow = {
          productId,
          effectiveFrom,
          inputMicroPer1M: randomPrice(random, true),
          outputMicroPer1M: randomPrice(random, false),
          setBy: 'operator-token',
          setAt: now,
        };
        await insertPriceRow(db, row);
        schedule.push(row);
      } else if (r < 0.29) {
        // the earliest month that has ended on the virtual clock and is still open
        let month = kstMonth(START);
        while (closed.has(month)) month = nextMonth(month);
        if (kstMonthStart(nextMonth(month)) > now) continue;
        await settlement.close({ month }, noTrail, 'operator-token');
        closed.set(month, await closedMonth(month));
      } else if (r < 0.31 && inserted.length > 0) {
        // a replay of the journal after a crash: charged once all the same
        const again = Array.from({ length: 1 + Math.floor(random() * 4) }, () => pick(inserted));
        await db.transaction((tx) => insertUsageRecords(tx, again, db.dialect));
      } else if (r < 0.65) {
        const o = pick(ORGS);
        const call = await admitCall(
          o,
          pick(LEDGER_PRODUCT_IDS),
          Math.floor(random() * 4000),
          pick([1, 16, 256, 2000]),
        );
        if (call === null) continue;
        inFlight.push(call);
      } else if (inFlight.length > 0) {
        // some calls end; the rest stay in flight, perhaps past a month's close (a late charge)
        for (let n = 1 + Math.floor(random() * 3); n > 0 && inFlight.length > 0; n--) {
          const [call] = inFlight.splice(Math.floor(random() * inFlight.length), 1);
          await finish(call!, random() < 0.75);
        }
      }
      await check();
    }
    while (inFlight.length > 0) await finish(inFlight.pop()!, random() < 0.75);
    for (const o of ORGS) assert.equal(holds.heldFor(o.id), 0n, `${o.id}: held after every call ended`);
    await check();
    // October ends with one call still in flight: every month still open is closed, then the call
    // ends and its charge is late, so every run has at least one
    const last = await admitCall(ORGS[1], pick(LEDGER_PRODUCT_IDS), 1_000, 2_000);
    for (let month = kstMonth(START); month <= kstMonth(LAST); month = nextMonth(month)) {
      if (closed.has(month)) continue;
      await settlement.close({ month }, noTrail, 'operator-token');
      closed.set(month, await closedMonth(month));
    }
    await check();
    assert.ok(last, 'a postpaid organisation is admitted');
    await finish(last, true, last.maxCompletion);
    for (const o of ORGS) assert.equal(holds.heldFor(o.id), 0n, `${o.id}: held after every call ended`);
    await check();

    // every charge at the price in force when its call was made, whatever changed since
    const history = await priceRows(db);
    const usage = await db.all<{
      request_id: string;
      created_at: number;
      product_id: string;
      prompt_tokens: number;
      completion_tokens: number;
      price_in: string;
      price_out: string;
      cost: string;
    }>(
      `SELECT request_id, created_at, product_id, prompt_tokens, completion_tokens,
         CAST(price_input_micro_per_1m AS TEXT) AS price_in, CAST(price_output_micro_per_1m AS TEXT) AS price_out,
         CAST(cost_micro_krw AS TEXT) AS cost FROM usage_events`,
    );
    assert.equal(usage.length, inserted.length);
    for (const u of usage) {
      const row = inForce(history.get(u.product_id)!, Number(u.created_at))!;
      assert.equal(BigInt(u.price_in), row.inputMicroPer1M, `${u.request_id}: input price in force`);
      assert.equal(BigInt(u.price_out), row.outputMicroPer1M, `${u.request_id}: output price in force`);
      assert.equal(BigInt(u.cost), costOf(Number(u.prompt_tokens), Number(u.completion_tokens), row));
    }
    // the statements show prices each charge used: ones the product's history has
    for (const [month, { statements }] of closed) {
      for (const s of statements as { statement_json: string }[]) {
        const lines = (
          JSON.parse(s.statement_json) as {
            lines: { productId: string; priceInputPer1M: string; priceOutputPer1M: string }[];
          }
        ).lines;
        for (const line of lines) {
          const known = history
            .get(line.productId)!
            .some(
              (p) =>
                formatKrw(p.inputMicroPer1M) === line.priceInputPer1M &&
                formatKrw(p.outputMicroPer1M) === line.priceOutputPer1M,
            );
          assert.ok(known, `${month}: a statement line at a price ${line.productId} never had`);
        }
      }
    }
    // the run did what it is for
    assert.ok(
      admitted > 0 && released > 0 && late > 0 && closed.size === 10,
      'calls, releases, late charges and closes happened',
    );
    console.log(
      `seed ${seed}: ${admitted} admitted, ${refused} refused, ${released} released, ${charges.size} charged, ${late} late, ${closed.size} months closed`,
    );
  });
});

test('the database refuses to change or delete ledger transactions and entries', async () => {
  const funds = new FundsService(db, new ProgrammeService(db));
  await funds.deposit('org_2', { amountKrw: '5' }, noTrail, 'operator-token');
  const read = async () => ({
    transactions: await db.all(
      'SELECT id, kind, request_id, created_at FROM ledger_transactions ORDER BY id',
    ),
    entries: await db.all(
      `SELECT transaction_id, account_id, CAST(amount_micro_krw AS TEXT) AS amount FROM ledger_entries
       ORDER BY transaction_id, account_id`,
    ),
  });
  const before = await read();
  assert.ok(before.entries.length > 0);
  await assert.rejects(
    db.run('UPDATE ledger_entries SET amount_micro_krw = amount_micro_krw * 2'),
    /append-only/,
  );
  await assert.rejects(db.run('DELETE FROM ledger_entries'), /append-only/);
  await assert.rejects(db.run("UPDATE ledger_transactions SET memo = 'rewritten'"), /append-only/);
  await assert.rejects(db.run('DELETE FROM ledger_transactions'), /append-only/);
  if (db.dialect === 'postgres') {
    await assert.rejects(db.run('TRUNCATE ledger_entries'), /append-only/);
    await assert.rejects(db.run('TRUNCATE ledger_transactions CASCADE'), /append-only/);
  }
  // not even inside a transaction that would otherwise commit
  await assert.rejects(
    db.transaction(async (tx) => {
      await tx.run("UPDATE ledger_entries SET amount_micro_krw = 1 WHERE account_id LIKE 'wallet:%'");
    }),
    /append-only/,
  );
  assert.deepEqual(await read(), before);
});
