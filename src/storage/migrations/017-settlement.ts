import type { Migration } from '../migrator.ts';

/**
 * Monthly settlement (billing/settlement.ts, docs/billing.md).
 *
 * - `ledger_transactions.settlement_month` (`YYYY-MM`, KST): the month a transaction is settled in —
 *   its own month, or, for a charge that arrives after its month was closed, the first open month
 *   after it (an adjustment). Set when the transaction is posted, never changed.
 * - `settlement_months`: a row per month that has transactions, `open` → `closing` → `closed`. A charge
 *   takes a shared lock on its month's row; closing takes it exclusively, so no charge can land in a
 *   month after its statements were computed.
 * - `settlement_statements`: the statements of a closed month, per supplier and per organisation, as
 *   computed at closing and never changed (a trigger refuses it).
 */
const REFUSAL = 'a closed month never changes: statements are never changed or deleted';

export const migration017Settlement: Migration = {
  id: '017-settlement',
  statements: [
    'ALTER TABLE ledger_transactions ADD COLUMN settlement_month TEXT',
    'CREATE INDEX ledger_transactions_month ON ledger_transactions (settlement_month, kind)',
    `CREATE TABLE settlement_months (
      month TEXT PRIMARY KEY,
      status TEXT NOT NULL CHECK (status IN ('open', 'closing', 'closed')),
      vat_rate_bp INTEGER,
      closed_at BIGINT,
      closed_by TEXT,
      summary_json TEXT
    )`,
    `CREATE TABLE settlement_statements (
      month TEXT NOT NULL REFERENCES settlement_months(month),
      party_kind TEXT NOT NULL CHECK (party_kind IN ('supplier', 'organization')),
      party_id TEXT NOT NULL,
      statement_json TEXT NOT NULL,
      created_at BIGINT NOT NULL,
      PRIMARY KEY (month, party_kind, party_id)
    )`,
  ],
  dialectStatements: {
    sqlite: [
      `CREATE TRIGGER settlement_statements_no_update BEFORE UPDATE ON settlement_statements
       BEGIN SELECT RAISE(ABORT, '${REFUSAL}'); END`,
      `CREATE TRIGGER settlement_statements_no_delete BEFORE DELETE ON settlement_statements
       BEGIN SELECT RAISE(ABORT, '${REFUSAL}'); END`,
    ],
    postgres: [
      `CREATE FUNCTION kaihub_settlement_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION '${REFUSAL}'; END $$`,
      `CREATE TRIGGER settlement_statements_no_change BEFORE UPDATE OR DELETE ON settlement_statements
       FOR EACH ROW EXECUTE FUNCTION kaihub_settlement_refuse()`,
      `CREATE TRIGGER settlement_statements_no_truncate BEFORE TRUNCATE ON settlement_statements
       FOR EACH STATEMENT EXECUTE FUNCTION kaihub_settlement_refuse()`,
    ],
  },
};
