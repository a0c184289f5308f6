import type { Migration } from '../migrator.ts';

/**
 * On PostgreSQL a usage record is made durable on its own, in one statement, and charged right after,
 * off the response path (decision 0021, billing/usage-charger.ts): `usage_uncharged` holds the request
 * ids of records whose charge, daily sums and alerts are not posted yet. A row is inserted in the
 * statement that inserts its record and deleted in the transaction that posts its charge, so a record
 * is charged exactly once whichever replica posts it, and one left by a replica that died is found by
 * any other. It stays a few hundred rows long; SQLite's journal applier still posts records in the
 * transaction that inserts them and never writes here.
 */
export const migration023UsageUncharged: Migration = {
  id: '023-usage-uncharged',
  statements: [
    `CREATE TABLE usage_uncharged (
      request_id TEXT PRIMARY KEY,
      recorded_at BIGINT NOT NULL
    )`,
  ],
};
