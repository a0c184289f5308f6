import assert from 'node:assert/strict';
import type { AuditTrail } from '../../src/audit/audit-log.ts';
import { FundsService } from '../../src/billing/funds.ts';
import { accountId, splitCharge } from '../../src/billing/ledger.ts';
import type { MicroKrw } from '../../src/billing/money.ts';
import { ProgrammeService } from '../../src/billing/programmes.ts';
import type { Database } from '../../src/storage/database.ts';
import { seededRandom } from './seeded-random.ts';

/**
 * What the ledger property tests (test/integration/ledger-properties.test.ts and
 * ledger-lifecycle-properties.test.ts) share: the parties they move money between, a model of the
 * ledger written from the rules alone (docs/billing.md), the steps that act on the real ledger and on
 * the model alike, and the check that the two agree. A step draws its random numbers in the order the
 * tests drew them before they shared it: a seed replays the same run.
 */

export const noTrail: AuditTrail = async () => {};

/** The products, each with its supplier. */
export const LEDGER_PRODUCTS = { prd_1: 'sup_a', prd_2: 'sup_a', prd_3: 'sup_b' } as const;
export type LedgerProductId = keyof typeof LEDGER_PRODUCTS;
export const LEDGER_PRODUCT_IDS = Object.keys(LEDGER_PRODUCTS) as LedgerProductId[];

export interface LedgerOrganization {
  id: string;
  cls: 'sme' | 'midsize' | 'public';
  prepaid: boolean;
}

/** Suppliers sup_a and sup_b, LEDGER_PRODUCTS at 1 µ₩ per 1M tokens, and the organisations. */
export async function insertLedgerParties(
  db: Database,
  organizations: readonly LedgerOrganization[],
): Promise<void> {
  const now = Date.now();
  await db.run(
    `INSERT INTO suppliers (id, name, status, created_at, updated_at) VALUES ('sup_a', 'A', 'active', ?, ?),
       ('sup_b', 'B', 'active', ?, ?)`,
    [now, now, now, now],
  );
  for (const [id, supplier] of Object.entries(LEDGER_PRODUCTS)) {
    await db.run(
      `INSERT INTO products (id, supplier_id, model, display_name, purposes, modality, context_window,
         price_input_micro_per_1m, price_output_micro_per_1m, residency, status, created_at, updated_at)
       VALUES (?, ?, ?, ?, '["chat"]', 'text', 8192, 1, 1, 'domestic', 'active', ?, ?)`,
      [id, supplier, id, id, now, now],
    );
  }
  for (const o of organizations) {
    await db.run(
      `INSERT INTO organizations (id, name, class, status, spend_mode, created_at, updated_at)
       VALUES (?, ?, ?, 'active', ?, ?, ?)`,
      [o.id, o.id, o.cls, o.prepaid ? 'prepaid' : 'postpaid', now, now],
    );
  }
}

export interface ModelVoucher {
  id: string;
  organizationId: string;
  copayBp: number;
  validFrom: number;
  validUntil: number;
}

/** A charge as the model sees it (a ledger Chargeable or a usage record). */
export interface ModelCharge {
  organizationId: string;
  productId: string;
  createdAtMs: number;
  voucherId?: string | null;
  costMicroKrw: MicroKrw;
}

/** The ledger's balances by account as the rules say they must be. */
export class LedgerModel {
  readonly expected = new Map<string, MicroKrw>();
  readonly vouchers: ModelVoucher[] = [];
  readonly programmeIds: string[] = [];

  balance(account: string): MicroKrw {
    return this.expected.get(account) ?? 0n;
  }

  move(account: string, amount: MicroKrw): void {
    this.expected.set(account, this.balance(account) + amount);
  }

  /**
   * The voucher pays its part while valid when the call was made (never below zero), the wallet the
   * rest; the product's supplier is owed all of it. Nothing for 0.
   */
  charge(c: ModelCharge): void {
    if (c.costMicroKrw === 0n) return;
    let fromVoucher = 0n;
    const v = c.voucherId ? this.vouchers.find((x) => x.id === c.voucherId) : undefined;
    if (v !== undefined && c.createdAtMs >= v.validFrom && c.createdAtMs < v.validUntil) {
      fromVoucher = splitCharge(c.costMicroKrw, v.copayBp, this.balance(accountId.voucher(v.id))).voucher;
      this.move(accountId.voucher(v.id), -fromVoucher);
    }
    this.move(accountId.wallet(c.organizationId), -(c.costMicroKrw - fromVoucher));
    this.move(accountId.payable(LEDGER_PRODUCTS[c.productId as LedgerProductId]), c.costMicroKrw);
  }
}

/**
 * One property run on `db`: its seed (KAIHUB_LEDGER_SEED, else from the clock), the random numbers
 * drawn from it, the services the steps call, and the model they keep beside the ledger.
 */
export class LedgerRun {
  readonly seed = Number(process.env.KAIHUB_LEDGER_SEED ?? Date.now() % 1_000_000);
  readonly random = seededRandom(this.seed);
  readonly pick = <T>(xs: readonly T[]): T => xs[Math.floor(this.random() * xs.length)]!;
  readonly model = new LedgerModel();
  readonly programmes: ProgrammeService;
  readonly funds: FundsService;

  constructor(readonly db: Database) {
    this.programmes = new ProgrammeService(db);
    this.funds = new FundsService(db, this.programmes);
  }

  /** Runs the property; a failure names the seed that replays it. */
  async property(body: () => Promise<void>): Promise<void> {
    try {
      await body();
    } catch (error) {
      throw new Error(`ledger property failed with KAIHUB_LEDGER_SEED=${this.seed}: ${String(error)}`, {
        cause: error,
      });
    }
  }

  /** A programme with a random budget, SME co-payment and exhaustion policy, funded from outside. */
  async createProgramme(step: number, endsOn: string): Promise<void> {
    const budget = BigInt(1 + Math.floor(this.random() * 5000)) * 1_000_000n;
    const p = await this.programmes.create(
      {
        name: `P${this.seed}-${step}`,
        startsOn: '2026-01-01',
        endsOn,
        budgetKrw: (budget / 1_000_000n).toString(),
        copayPercent: { sme: Math.floor(this.random() * 10000) / 100, midsize: 50, public: 0 },
        onExhausted: this.pick(['block', 'self-pay'] as const),
      },
      noTrail,
      'operator-token',
    );
    this.model.programmeIds.push(p.id);
    this.model.move(accountId.funding, -budget);
    this.model.move(accountId.programme(p.id), budget);
  }

  /** A voucher of `amount` µ₩ from the programme's budget; rejects as the service does when refused. */
  async issueVoucher(
    programmeId: string,
    organizationId: string,
    amount: MicroKrw,
    validFrom: string,
    validUntil: string,
  ): Promise<void> {
    const v = await this.programmes.issueVoucher(
      programmeId,
      {
        organizationId,
        amountKrw: `${amount / 1_000_000n}.${(amount % 1_000_000n).toString().padStart(6, '0')}`,
        validFrom,
        validUntil,
      },
      noTrail,
      'operator-token',
    );
    const row = await this.db.get<{ copay_bp: number; valid_from: number; valid_until: number }>(
      'SELECT copay_bp, valid_from, valid_until FROM vouchers WHERE id = ?',
      [v.id],
    );
    this.model.vouchers.push({
      id: v.id,
      organizationId,
      copayBp: Number(row!.copay_bp),
      validFrom: Number(row!.valid_from),
      validUntil: Number(row!.valid_until),
    });
    this.model.move(accountId.programme(programmeId), -amount);
    this.model.move(accountId.voucher(v.id), amount);
  }

  /** `won` whole won paid into the organisation's wallet. */
  async deposit(organizationId: string, won: number): Promise<void> {
    await this.funds.deposit(organizationId, { amountKrw: String(won) }, noTrail, 'operator-token');
    this.model.move(accountId.deposits, -BigInt(won) * 1_000_000n);
    this.model.move(accountId.wallet(organizationId), BigInt(won) * 1_000_000n);
  }

  /**
   * Every transaction sums to zero, every balance is the sum of its entries and what the model says,
   * no voucher or programme is below zero. Returns the balances, for a test's own checks.
   */
  async assertLedgerAgrees(): Promise<Map<string, MicroKrw>> {
    const unbalanced = await this.db.all(
      'SELECT transaction_id FROM ledger_entries GROUP BY transaction_id HAVING SUM(amount_micro_krw) <> 0',
    );
    assert.deepEqual(unbalanced, [], 'every transaction sums to zero');
    const rows = await this.db.all<{ id: string; balance: string; summed: string }>(
      `SELECT a.id, CAST(a.balance_micro_krw AS TEXT) AS balance,
         CAST(COALESCE((SELECT SUM(e.amount_micro_krw) FROM ledger_entries e WHERE e.account_id = a.id), 0) AS TEXT) AS summed
       FROM ledger_accounts a`,
    );
    for (const r of rows) {
      assert.equal(r.balance, r.summed, `${r.id}: the balance is the sum of its entries`);
      if (/^(voucher|programme):/.test(r.id)) assert.ok(BigInt(r.balance) >= 0n, `${r.id} below zero`);
    }
    const actual = new Map(rows.map((r) => [r.id, BigInt(r.balance)]));
    for (const [id, amount] of this.model.expected)
      assert.equal(actual.get(id) ?? 0n, amount, `${id} as the rules say`);
    return actual;
  }
}
