import assert from 'node:assert/strict';
import type { Database } from '../../src/storage/database.ts';

/** Every ledger invariant the database can be asked about directly. */
export async function assertLedgerInvariants(db: Database): Promise<void> {
  const unbalanced = await db.all(
    `SELECT transaction_id, CAST(SUM(amount_micro_krw) AS TEXT) AS total FROM ledger_entries
     GROUP BY transaction_id HAVING SUM(amount_micro_krw) <> 0`,
  );
  assert.deepEqual(unbalanced, [], 'every transaction sums to zero');
  const drift = await db.all(
    `SELECT a.id, CAST(a.balance_micro_krw AS TEXT) AS balance, CAST(COALESCE(SUM(e.amount_micro_krw), 0) AS TEXT) AS summed
     FROM ledger_accounts a LEFT JOIN ledger_entries e ON e.account_id = a.id
     GROUP BY a.id, a.balance_micro_krw HAVING a.balance_micro_krw <> COALESCE(SUM(e.amount_micro_krw), 0)`,
  );
  assert.deepEqual(drift, [], 'every balance is the sum of its entries');
  const negative = await db.all(
    "SELECT id FROM ledger_accounts WHERE kind IN ('voucher', 'programme') AND balance_micro_krw < 0",
  );
  assert.deepEqual(negative, [], 'no voucher or programme below zero');
  const charges = await db.get<{ charged: string | null; used: string | null }>(
    `SELECT (SELECT CAST(SUM(e.amount_micro_krw) AS TEXT) FROM ledger_entries e
               JOIN ledger_transactions t ON t.id = e.transaction_id
             WHERE t.kind = 'charge' AND e.account_id LIKE 'payable:%') AS charged,
            (SELECT CAST(SUM(cost_micro_krw) AS TEXT) FROM usage_events
             WHERE request_id NOT IN (SELECT request_id FROM usage_uncharged)) AS used`,
  );
  // PostgreSQL posts a record's charge just after the record (decision 0021): at any instant every
  // record is charged or still in usage_uncharged, never both and never neither (one statement, one
  // snapshot)
  assert.equal(
    BigInt(charges?.charged ?? '0'),
    BigInt(charges?.used ?? '0'),
    'the ledger charged what usage says',
  );
}
