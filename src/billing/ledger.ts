import { kstMonth, nextMonth } from '../kst.ts';
import type { Dialect, SqlExecutor } from '../storage/database.ts';
import { newId } from '../storage/ids.ts';
import { insertNew } from '../storage/insert-new.ts';
import { rowBatches } from '../storage/row-batches.ts';
import { recordVoucherAlerts, type VoucherMovement } from './alerts.ts';
import type { MicroKrw } from './money.ts';

/**
 * The double-entry ledger (docs/billing.md). Every transaction moves money between accounts and its
 * entries sum to zero; entries are never changed (triggers refuse it), a correction is a new
 * transaction. A balance is the sum of the account's entries, kept beside the account in the same
 * transaction as the entries so that the hot path and statements never sum millions of rows.
 *
 * Accounts have fixed ids, so that any replica posts to the same account without looking it up:
 *
 *   programme:{id}       a programme's unissued budget           (never negative)
 *   voucher:{id}         what is left on a voucher               (never negative)
 *   wallet:{orgId}       an organisation's own money; negative = what it owes
 *   payable:{supplierId} what the hub owes a supplier for calls served
 *   external:funding     where programme budgets come from (the government's side)
 *   external:deposits    where wallet deposits come from (the organisation's bank)
 *   external:corrections the hub's side of operators' wallet corrections (billing/corrections.ts)
 */
export type AccountKind = 'wallet' | 'voucher' | 'supplier_payable' | 'programme' | 'external';
export type TransactionKind = 'charge' | 'deposit' | 'programme_funding' | 'voucher_issue' | 'correction';

export const accountId = {
  wallet: (organizationId: string) => `wallet:${organizationId}`,
  voucher: (voucherId: string) => `voucher:${voucherId}`,
  payable: (supplierId: string) => `payable:${supplierId}`,
  programme: (programmeId: string) => `programme:${programmeId}`,
  funding: 'external:funding',
  deposits: 'external:deposits',
  corrections: 'external:corrections',
} as const;

const KIND_OF_PREFIX: Record<string, AccountKind> = {
  wallet: 'wallet',
  voucher: 'voucher',
  payable: 'supplier_payable',
  programme: 'programme',
  external: 'external',
};

/** An account's kind, owner and floor, read from its id. */
export function describeAccount(id: string): {
  kind: AccountKind;
  ownerId: string | null;
  neverNegative: boolean;
} {
  const colon = id.indexOf(':');
  const kind = colon > 0 ? KIND_OF_PREFIX[id.slice(0, colon)] : undefined;
  if (kind === undefined) throw new Error(`not a ledger account id: ${id}`);
  return {
    kind,
    ownerId: kind === 'external' ? null : id.slice(colon + 1),
    neverNegative: kind === 'voucher' || kind === 'programme',
  };
}

export interface Posting {
  accountId: string;
  amount: MicroKrw;
}

export interface TransactionInput {
  kind: TransactionKind;
  createdAtMs: number;
  /** A charge's request id: the same request is never charged twice. */
  requestId?: string | null;
  actorId?: string | null;
  memo?: string | null;
  /** A charge's settlement month (settlementMonthOf); default: the KST month it is created in. */
  settlementMonth?: string;
  entries: readonly Posting[];
}

export class LedgerError extends Error {
  override name = 'LedgerError';
}

/** Entries of one transaction with one entry per account, checked to sum to zero. */
export function balancedEntries(entries: readonly Posting[]): Posting[] {
  const byAccount = new Map<string, bigint>();
  let sum = 0n;
  for (const e of entries) {
    byAccount.set(e.accountId, (byAccount.get(e.accountId) ?? 0n) + e.amount);
    sum += e.amount;
  }
  if (sum !== 0n) throw new LedgerError(`a ledger transaction must sum to zero; this one sums to ${sum} µ₩`);
  const merged: Posting[] = [];
  for (const [id, amount] of byAccount) if (amount !== 0n) merged.push({ accountId: id, amount });
  return merged;
}

/** Rows (or ids of an `IN` list) a statement, in the shapes `rowBatches` gives. */
const MAX_ROWS_PER_STATEMENT = 200;

/** Creates the accounts that do not exist yet (ids are fixed: see `accountId`). */
async function ensureAccounts(tx: SqlExecutor, ids: Iterable<string>, now: number): Promise<void> {
  // in id order, like the locks: two transactions creating the same new accounts queue, not deadlock
  for (const batch of rowBatches([...new Set(ids)].sort(), MAX_ROWS_PER_STATEMENT)) {
    await tx.run(
      `INSERT INTO ledger_accounts (id, kind, owner_id, never_negative, created_at)
       VALUES ${new Array(batch.length).fill('(?, ?, ?, ?, ?)').join(', ')} ON CONFLICT (id) DO NOTHING`,
      batch.flatMap((id) => {
        const d = describeAccount(id);
        return [id, d.kind, d.ownerId, d.neverNegative ? 1 : 0, now];
      }),
    );
  }
}

/**
 * Locks the accounts (PostgreSQL: in id order, so two replicas posting to the same accounts queue
 * instead of deadlocking; SQLite's write transaction already excludes every other writer) and reads
 * their balances.
 */
export async function lockBalances(
  tx: SqlExecutor,
  dialect: Dialect,
  ids: readonly string[],
): Promise<Map<string, MicroKrw>> {
  const balances = new Map<string, MicroKrw>();
  // batches in id order keep the locks in id order
  for (const batch of rowBatches([...new Set(ids)].sort(), MAX_ROWS_PER_STATEMENT)) {
    const rows = await tx.all<{ id: string; balance: string }>(
      `SELECT id, CAST(balance_micro_krw AS TEXT) AS balance FROM ledger_accounts
       WHERE id IN (${batch.map(() => '?').join(', ')}) ORDER BY id${dialect === 'postgres' ? ' FOR UPDATE' : ''}`,
      batch,
    );
    for (const r of rows) balances.set(r.id, BigInt(r.balance));
  }
  return balances;
}

/** Adds the entries' amounts to their accounts' balances. */
async function moveBalances(tx: SqlExecutor, entries: readonly Posting[]): Promise<void> {
  const delta = new Map<string, bigint>();
  for (const e of entries) delta.set(e.accountId, (delta.get(e.accountId) ?? 0n) + e.amount);
  for (const [id, amount] of [...delta].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (amount === 0n) continue;
    await tx.run('UPDATE ledger_accounts SET balance_micro_krw = balance_micro_krw + ? WHERE id = ?', [
      amount,
      id,
    ]);
  }
}

const ENTRY_TUPLE = '(?, ?, ?, ?)';

async function insertEntries(
  tx: SqlExecutor,
  rows: readonly { transactionId: string; posting: Posting; createdAtMs: number }[],
): Promise<void> {
  for (const batch of rowBatches(rows, MAX_ROWS_PER_STATEMENT)) {
    await tx.run(
      `INSERT INTO ledger_entries (transaction_id, account_id, amount_micro_krw, created_at)
       VALUES ${new Array(batch.length).fill(ENTRY_TUPLE).join(', ')}`,
      batch.flatMap((r) => [r.transactionId, r.posting.accountId, r.posting.amount, r.createdAtMs]),
    );
  }
}

/**
 * Posts one transaction inside the caller's database transaction. A never-negative account that would
 * go below zero fails the whole transaction (the database refuses it too). Returns the transaction's
 * id, or null when its request id was already posted.
 */
export async function postTransaction(
  tx: SqlExecutor,
  dialect: Dialect,
  input: TransactionInput,
): Promise<string | null> {
  const entries = balancedEntries(input.entries);
  if (entries.length === 0) throw new LedgerError('a ledger transaction moves some money');
  await ensureAccounts(
    tx,
    entries.map((e) => e.accountId),
    input.createdAtMs,
  );
  const balances = await lockBalances(
    tx,
    dialect,
    entries.map((e) => e.accountId),
  );
  for (const e of entries) {
    if (!describeAccount(e.accountId).neverNegative) continue;
    const after = (balances.get(e.accountId) ?? 0n) + e.amount;
    if (after < 0n) throw new LedgerError(`${e.accountId} would go below zero (${after} µ₩)`);
  }
  const id = newId('ltx');
  const inserted = await tx.all(
    `INSERT INTO ledger_transactions (id, kind, request_id, created_at, actor_id, memo, settlement_month)
     VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (request_id) DO NOTHING RETURNING id`,
    [
      id,
      input.kind,
      input.requestId ?? null,
      input.createdAtMs,
      input.actorId ?? null,
      input.memo ?? null,
      // deposits and issues are not in statements: their own month, for the ledger's readers
      input.settlementMonth ?? kstMonth(input.createdAtMs),
    ],
  );
  if (inserted.length === 0) return null;
  await insertEntries(
    tx,
    entries.map((posting) => ({ transactionId: id, posting, createdAtMs: input.createdAtMs })),
  );
  await moveBalances(tx, entries);
  return id;
}

/**
 * Where charges made in `months` are settled: each month itself while it is open, else the first open
 * month after it (a late charge lands in the next statement as an adjustment; a closed month never
 * changes). Each month's row is locked for share (PostgreSQL) until the caller's transaction ends, so
 * closing a month (which locks it exclusively) waits for charges in flight and is never overtaken.
 */
async function settlementMonths(
  tx: SqlExecutor,
  dialect: Dialect,
  months: readonly string[],
): Promise<Map<string, string>> {
  const result = new Map<string, string>();
  const lock = dialect === 'postgres' ? ' FOR SHARE' : '';
  const statusOf = async (wanted: readonly string[]) => {
    await tx.run(
      `INSERT INTO settlement_months (month, status) VALUES ${wanted.map(() => "(?, 'open')").join(', ')}
       ON CONFLICT (month) DO NOTHING`,
      [...wanted],
    );
    const rows = await tx.all<{ month: string; status: string }>(
      `SELECT month, status FROM settlement_months WHERE month IN (${wanted.map(() => '?').join(', ')})
       ORDER BY month${lock}`,
      [...wanted],
    );
    return new Map(rows.map((r) => [r.month, r.status]));
  };
  const sorted = [...new Set(months)].sort();
  if (sorted.length === 0) return result;
  const first = await statusOf(sorted);
  for (const month of sorted) {
    let target = month;
    let status = first.get(month);
    // closed months are few and in the past: this walks one or two steps
    for (let step = 0; status !== 'open' && step < 1200; step++) {
      target = nextMonth(target);
      status = (await statusOf([target])).get(target);
    }
    result.set(month, target);
  }
  return result;
}

/**
 * The settlement month of a charge for something done at `ms` (compute/charges.ts): that KST month
 * while it is open, else the first open one after it; locked for share like a usage charge's.
 */
export async function settlementMonthOf(tx: SqlExecutor, dialect: Dialect, ms: number): Promise<string> {
  return (await settlementMonths(tx, dialect, [kstMonth(ms)])).get(kstMonth(ms))!;
}

/** A usage record as the ledger charges it. */
export interface Chargeable {
  requestId: string;
  createdAtMs: number;
  organizationId: string;
  productId: string;
  voucherId: string | null;
  costMicroKrw: MicroKrw;
}

/** Basis points: 10,000 = 100 %. */
const WHOLE = 10_000n;

/**
 * The voucher's share of a charge C with co-payment ratio r: C·(1−r) rounded **down** to the µ₩; the
 * organisation pays the rest (C·r rounded up). So the programme never pays more than its ratio, and
 * the two shares always add up to C exactly.
 */
export function voucherShare(cost: MicroKrw, copayBp: number): MicroKrw {
  return (cost * (WHOLE - BigInt(copayBp))) / WHOLE;
}

/**
 * Splits a charge between a voucher and the wallet: the voucher pays its share as far as `available`
 * goes (never below zero), the wallet pays everything else.
 */
export function splitCharge(
  cost: MicroKrw,
  copayBp: number,
  available: MicroKrw,
): { voucher: MicroKrw; wallet: MicroKrw } {
  const share = voucherShare(cost, copayBp);
  const voucher = share <= available ? share : available > 0n ? available : 0n;
  return { voucher, wallet: cost - voucher };
}

interface VoucherTerms {
  copayBp: number;
  validFrom: number;
  validUntil: number;
  organizationId: string;
  amount: MicroKrw;
}

/**
 * Charges usage records to the ledger, inside the transaction that inserts them into `usage_events`
 * (billing/usage-journal.ts): a record is charged exactly when it lands, and a record applied again is
 * charged once (the request id is unique on charges). The voucher pays its share when the call was
 * made within its validity and as far as its balance goes; the organisation's wallet pays the rest;
 * the supplier's payable receives the whole cost.
 */
export async function chargeUsage(
  tx: SqlExecutor,
  dialect: Dialect,
  records: readonly Chargeable[],
): Promise<void> {
  const charged = records.filter((r) => r.costMicroKrw > 0n);
  if (charged.length === 0) return;
  const settledIn = await settlementMonths(
    tx,
    dialect,
    charged.map((r) => kstMonth(r.createdAtMs)),
  );
  // which of these were charged before (a replay): those get nothing new
  const ids = new Map<string, string>();
  for (const r of charged) ids.set(r.requestId, newId('ltx'));
  const fresh = new Set<string>();
  for (const batch of rowBatches(charged, MAX_ROWS_PER_STATEMENT)) {
    const added = await insertNew(
      tx,
      dialect,
      'request_id',
      `INSERT INTO ledger_transactions (id, kind, request_id, created_at, settlement_month)
       VALUES ${new Array(batch.length).fill("(?, 'charge', ?, ?, ?)").join(', ')}`,
      batch.flatMap((r) => [
        ids.get(r.requestId)!,
        r.requestId,
        r.createdAtMs,
        settledIn.get(kstMonth(r.createdAtMs))!,
      ]),
      batch.map((r) => r.requestId),
    );
    for (const requestId of added) fresh.add(requestId);
  }
  const toCharge = charged.filter((r) => fresh.has(r.requestId));
  if (toCharge.length === 0) return;

  const productIds = [...new Set(toCharge.map((r) => r.productId))];
  const suppliers = new Map<string, string>();
  for (const batch of rowBatches(productIds, MAX_ROWS_PER_STATEMENT))
    for (const row of await tx.all<{ id: string; supplier_id: string }>(
      `SELECT id, supplier_id FROM products WHERE id IN (${batch.map(() => '?').join(', ')})`,
      batch,
    ))
      suppliers.set(row.id, row.supplier_id);
  const voucherIds = [...new Set(toCharge.flatMap((r) => (r.voucherId === null ? [] : [r.voucherId])))];
  const terms = new Map<string, VoucherTerms>();
  for (const batch of rowBatches(voucherIds, MAX_ROWS_PER_STATEMENT)) {
    for (const row of await tx.all<{
      id: string;
      copay_bp: number;
      valid_from: number;
      valid_until: number;
      organization_id: string;
      amount: string;
    }>(
      `SELECT id, copay_bp, valid_from, valid_until, organization_id, CAST(amount_micro_krw AS TEXT) AS amount
       FROM vouchers WHERE id IN (${batch.map(() => '?').join(', ')})`,
      batch,
    )) {
      terms.set(row.id, {
        copayBp: Number(row.copay_bp),
        validFrom: Number(row.valid_from),
        validUntil: Number(row.valid_until),
        organizationId: row.organization_id,
        amount: BigInt(row.amount),
      });
    }
  }

  const accounts = new Set<string>();
  for (const r of toCharge) {
    accounts.add(accountId.wallet(r.organizationId));
    // a product removed since: the cost still lands somewhere an operator sees it
    accounts.add(accountId.payable(suppliers.get(r.productId) ?? 'unknown'));
    if (r.voucherId !== null && terms.has(r.voucherId)) accounts.add(accountId.voucher(r.voucherId));
  }
  const now = Date.now();
  await ensureAccounts(tx, accounts, now);
  const balances = await lockBalances(tx, dialect, [...accounts]);
  const before = new Map(balances);

  const entries: { transactionId: string; posting: Posting; createdAtMs: number }[] = [];
  const moved: Posting[] = [];
  const add = (transactionId: string, createdAtMs: number, posting: Posting) => {
    if (posting.amount === 0n) return;
    entries.push({ transactionId, posting, createdAtMs });
    moved.push(posting);
  };
  for (const r of toCharge) {
    const transactionId = ids.get(r.requestId)!;
    const voucher = r.voucherId === null ? undefined : terms.get(r.voucherId);
    let fromVoucher = 0n;
    if (voucher !== undefined && r.createdAtMs >= voucher.validFrom && r.createdAtMs < voucher.validUntil) {
      const id = accountId.voucher(r.voucherId!);
      const available = balances.get(id) ?? 0n;
      fromVoucher = splitCharge(r.costMicroKrw, voucher.copayBp, available).voucher;
      balances.set(id, available - fromVoucher);
      add(transactionId, r.createdAtMs, { accountId: id, amount: -fromVoucher });
    }
    add(transactionId, r.createdAtMs, {
      accountId: accountId.wallet(r.organizationId),
      amount: -(r.costMicroKrw - fromVoucher),
    });
    add(transactionId, r.createdAtMs, {
      accountId: accountId.payable(suppliers.get(r.productId) ?? 'unknown'),
      amount: r.costMicroKrw,
    });
  }
  await insertEntries(tx, entries);
  await moveBalances(tx, moved);
  const movements: VoucherMovement[] = [];
  for (const [voucherId, t] of terms) {
    const id = accountId.voucher(voucherId);
    const from = before.get(id);
    const to = balances.get(id);
    if (from !== undefined && to !== undefined && to !== from)
      movements.push({
        voucherId,
        organizationId: t.organizationId,
        amount: t.amount,
        balanceBefore: from,
        balanceAfter: to,
      });
  }
  await recordVoucherAlerts(tx, movements, now);
}

/** Balances of accounts by id (0 for an account that has no entries yet). */
export async function balancesOf(db: SqlExecutor, ids: readonly string[]): Promise<Map<string, MicroKrw>> {
  const result = new Map<string, MicroKrw>();
  for (const id of ids) result.set(id, 0n);
  if (ids.length === 0) return result;
  const rows = await db.all<{ id: string; balance: string }>(
    `SELECT id, CAST(balance_micro_krw AS TEXT) AS balance FROM ledger_accounts WHERE id IN (${ids.map(() => '?').join(', ')})`,
    [...ids],
  );
  for (const r of rows) result.set(r.id, BigInt(r.balance));
  return result;
}
