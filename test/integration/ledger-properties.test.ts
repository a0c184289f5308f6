import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { AuditTrail } from '../../src/audit/audit-log.ts';
import { FundsService } from '../../src/billing/funds.ts';
import { accountId, type Chargeable, chargeUsage, splitCharge } from '../../src/billing/ledger.ts';
import { ProgrammeService } from '../../src/billing/programmes.ts';
import { ConflictError } from '../../src/errors.ts';
import { type Database, openDatabase } from '../../src/storage/database.ts';
import { migrate } from '../../src/storage/migrator.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/databases.ts';
import { seededRandom } from '../helpers/seeded-random.ts';

/**
 * Random programmes, vouchers, deposits, charges and replays of charges, applied to the real ledger
 * and to a model of it written from the rules alone (docs/billing.md); after every step the two must
 * agree to the µ₩, and the ledger's own invariants must hold. A failing seed is printed: rerun with
 * KAIHUB_LEDGER_SEED=<seed>.
 */

const noTrail: AuditTrail = async () => {};
const DAY = 86_400_000;
const KST = 9 * 3600_000;
const kstMidnight = (day: string) => Date.parse(`${day}T00:00:00Z`) - KST;

let database: TestDatabase;
let db: Database;
before(async () => {
  database = await createTestDatabase();
  db = await openDatabase(database.location);
  await migrate(db);
  const now = Date.now();
  await db.run(
    `INSERT INTO suppliers (id, name, status, created_at, updated_at) VALUES ('sup_a', 'A', 'active', ?, ?),
       ('sup_b', 'B', 'active', ?, ?)`,
    [now, now, now, now],
  );
  for (const [id, supplier] of [
    ['prd_1', 'sup_a'],
    ['prd_2', 'sup_a'],
    ['prd_3', 'sup_b'],
  ] as const) {
    await db.run(
      `INSERT INTO products (id, supplier_id, model, display_name, purposes, modality, context_window,
         price_input_micro_per_1m, price_output_micro_per_1m, residency, status, created_at, updated_at)
       VALUES (?, ?, ?, ?, '["chat"]', 'text', 8192, 1, 1, 'domestic', 'active', ?, ?)`,
      [id, supplier, id, id, now, now],
    );
  }
  for (const [id, cls] of [
    ['org_1', 'sme'],
    ['org_2', 'midsize'],
    ['org_3', 'public'],
  ] as const) {
    await db.run(
      `INSERT INTO organizations (id, name, class, status, created_at, updated_at) VALUES (?, ?, ?, 'active', ?, ?)`,
      [id, id, cls, now, now],
    );
  }
});
after(async () => {
  await db?.close();
  await database?.drop();
});

interface ModelVoucher {
  id: string;
  organizationId: string;
  copayBp: number;
  validFrom: number;
  validUntil: number;
}

test('random programmes, vouchers, deposits, charges and replays keep every ledger invariant', async () => {
  const seed = Number(process.env.KAIHUB_LEDGER_SEED ?? Date.now() % 1_000_000);
  const random = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const programmes = new ProgrammeService(db);
  const funds = new FundsService(db, programmes);
  const orgs = ['org_1', 'org_2', 'org_3'];
  const products = { prd_1: 'sup_a', prd_2: 'sup_a', prd_3: 'sup_b' } as Record<string, string>;

  // the model: balances by account, from the rules alone
  const expected = new Map<string, bigint>();
  const move = (account: string, amount: bigint) =>
    expected.set(account, (expected.get(account) ?? 0n) + amount);
  const vouchers: ModelVoucher[] = [];
  const programmeIds: string[] = [];
  const charged: Chargeable[] = [];
  let requests = 0;

  const steps = Number(process.env.KAIHUB_LEDGER_STEPS ?? 300);
  try {
    for (let step = 0; step < steps; step++) {
      const r = random();
      if (r < 0.05 || programmeIds.length === 0) {
        const budget = BigInt(1 + Math.floor(random() * 5000)) * 1_000_000n;
        const p = await programmes.create(
          {
            name: `P${seed}-${step}`,
            startsOn: '2026-01-01',
            endsOn: '2026-12-31',
            budgetKrw: (budget / 1_000_000n).toString(),
            copayPercent: { sme: Math.floor(random() * 10000) / 100, midsize: 50, public: 0 },
            onExhausted: pick(['block', 'self-pay'] as const),
          },
          noTrail,
          'operator-token',
        );
        programmeIds.push(p.id);
        move(accountId.funding, -budget);
        move(accountId.programme(p.id), budget);
      } else if (r < 0.2) {
        const programmeId = pick(programmeIds);
        const organizationId = pick(orgs);
        const amount = BigInt(1 + Math.floor(random() * 2_000_000_000));
        const left = expected.get(accountId.programme(programmeId)) ?? 0n;
        try {
          const v = await programmes.issueVoucher(
            programmeId,
            {
              organizationId,
              amountKrw: `${amount / 1_000_000n}.${(amount % 1_000_000n).toString().padStart(6, '0')}`,
              validFrom: pick(['2026-01-01', '2026-03-01']),
              validUntil: pick(['2026-06-30', '2026-12-31']),
            },
            noTrail,
            'operator-token',
          );
          assert.ok(amount <= left, 'issued no more than the budget had');
          const row = await db.get<{ copay_bp: number; valid_from: number; valid_until: number }>(
            'SELECT copay_bp, valid_from, valid_until FROM vouchers WHERE id = ?',
            [v.id],
          );
          vouchers.push({
            id: v.id,
            organizationId,
            copayBp: Number(row!.copay_bp),
            validFrom: Number(row!.valid_from),
            validUntil: Number(row!.valid_until),
          });
          move(accountId.programme(programmeId), -amount);
          move(accountId.voucher(v.id), amount);
        } catch (error) {
          assert.ok(error instanceof ConflictError, String(error));
          assert.ok(amount > left, 'refused only beyond the budget');
        }
      } else if (r < 0.3) {
        const organizationId = pick(orgs);
        const won = 1 + Math.floor(random() * 100);
        await funds.deposit(organizationId, { amountKrw: String(won) }, noTrail, 'operator-token');
        move(accountId.deposits, -BigInt(won) * 1_000_000n);
        move(accountId.wallet(organizationId), BigInt(won) * 1_000_000n);
      } else if (r < 0.45 && charged.length > 0) {
        // a replay: the journal applied again after a crash
        const again = Array.from({ length: 1 + Math.floor(random() * 5) }, () => pick(charged));
        await db.transaction((tx) => chargeUsage(tx, db.dialect, again));
      } else {
        const batch: Chargeable[] = [];
        for (let i = 0, n = 1 + Math.floor(random() * 20); i < n; i++) {
          const organizationId = pick(orgs);
          const own = vouchers.filter((v) => v.organizationId === organizationId);
          const productId = pick(Object.keys(products));
          batch.push({
            requestId: `req-${seed}-${requests++}`,
            createdAtMs: pick([
              kstMidnight('2026-02-01'),
              kstMidnight('2026-05-01'),
              kstMidnight('2026-09-01') + DAY,
            ]),
            organizationId,
            productId,
            voucherId: own.length > 0 && random() < 0.8 ? pick(own).id : null,
            // zero, small, and now and then larger than any voucher
            costMicroKrw: pick([0n, 1n, 7n, BigInt(Math.floor(random() * 5_000_000)), 3_000_000_000n]),
          });
        }
        await db.transaction((tx) => chargeUsage(tx, db.dialect, batch));
        for (const c of batch) {
          charged.push(c);
          if (c.costMicroKrw === 0n) continue;
          let fromVoucher = 0n;
          const v = c.voucherId === null ? undefined : vouchers.find((x) => x.id === c.voucherId);
          if (v !== undefined && c.createdAtMs >= v.validFrom && c.createdAtMs < v.validUntil) {
            fromVoucher = splitCharge(
              c.costMicroKrw,
              v.copayBp,
              expected.get(accountId.voucher(v.id)) ?? 0n,
            ).voucher;
            move(accountId.voucher(v.id), -fromVoucher);
          }
          move(accountId.wallet(c.organizationId), -(c.costMicroKrw - fromVoucher));
          move(accountId.payable(products[c.productId]!), c.costMicroKrw);
        }
      }
      if (step % 25 === 24 || step === steps - 1) await checkInvariants(expected);
    }
  } catch (error) {
    throw new Error(`ledger property failed with KAIHUB_LEDGER_SEED=${seed}: ${String(error)}`, {
      cause: error,
    });
  }
});

async function checkInvariants(expected: Map<string, bigint>): Promise<void> {
  const unbalanced = await db.all(
    'SELECT transaction_id FROM ledger_entries GROUP BY transaction_id HAVING SUM(amount_micro_krw) <> 0',
  );
  assert.deepEqual(unbalanced, [], 'every transaction sums to zero');
  const rows = await db.all<{ id: string; balance: string; summed: string }>(
    `SELECT a.id, CAST(a.balance_micro_krw AS TEXT) AS balance,
       CAST(COALESCE((SELECT SUM(e.amount_micro_krw) FROM ledger_entries e WHERE e.account_id = a.id), 0) AS TEXT) AS summed
     FROM ledger_accounts a`,
  );
  for (const r of rows) {
    assert.equal(r.balance, r.summed, `${r.id}: the balance is the sum of its entries`);
    if (/^(voucher|programme):/.test(r.id)) assert.ok(BigInt(r.balance) >= 0n, `${r.id} below zero`);
  }
  const actual = new Map(rows.map((r) => [r.id, BigInt(r.balance)]));
  for (const [id, amount] of expected) assert.equal(actual.get(id) ?? 0n, amount, `${id} as the rules say`);
  const total = rows.reduce((sum, r) => sum + BigInt(r.balance), 0n);
  assert.equal(total, 0n, 'all accounts together sum to zero');
}
