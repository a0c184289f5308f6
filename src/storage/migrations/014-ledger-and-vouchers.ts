import type { Migration } from '../migrator.ts';

const REFUSAL =
  'the ledger is append-only: entries are never changed or deleted; correct with a new transaction';

/**
 * Programmes, vouchers and the double-entry ledger (billing/ledger.ts, docs/billing.md).
 *
 * - `ledger_accounts` holds each account's balance as the sum of its entries, kept in the transaction
 *   that adds them (a test checks the two agree); a voucher or a programme budget can never go below
 *   zero, enforced here as well as in the code.
 * - `ledger_transactions` and `ledger_entries` are append-only in the database itself (triggers, as
 *   for the audit log). A charge's transaction carries the request id, unique: a usage record applied
 *   twice (a replay after a crash) is charged once.
 * - `usage_events.voucher_id` names the voucher the call was admitted against; the ledger charges it
 *   when the record is applied.
 */
export const migration014LedgerAndVouchers: Migration = {
  id: '014-ledger-and-vouchers',
  statements: [
    `CREATE TABLE programmes (
      id TEXT PRIMARY KEY,
      name TEXT NOT NULL UNIQUE,
      starts_at BIGINT NOT NULL,
      ends_at BIGINT NOT NULL,
      budget_micro_krw BIGINT NOT NULL CHECK (budget_micro_krw > 0),
      copay_bp TEXT NOT NULL,
      on_exhausted TEXT NOT NULL CHECK (on_exhausted IN ('block', 'self-pay')),
      eligible_products TEXT,
      per_organization_cap_micro_krw BIGINT CHECK (per_organization_cap_micro_krw > 0),
      created_at BIGINT NOT NULL,
      updated_at BIGINT NOT NULL,
      CHECK (ends_at > starts_at)
    )`,
    `CREATE TABLE vouchers (
      id TEXT PRIMARY KEY,
      programme_id TEXT NOT NULL REFERENCES programmes(id),
      organization_id TEXT NOT NULL REFERENCES organizations(id),
      amount_micro_krw BIGINT NOT NULL CHECK (amount_micro_krw > 0),
      copay_bp INTEGER NOT NULL CHECK (copay_bp BETWEEN 0 AND 10000),
      valid_from BIGINT NOT NULL,
      valid_until BIGINT NOT NULL,
      created_at BIGINT NOT NULL,
      CHECK (valid_until > valid_from)
    )`,
    'CREATE INDEX vouchers_organization ON vouchers (organization_id)',
    'CREATE INDEX vouchers_programme ON vouchers (programme_id)',
    `CREATE TABLE ledger_accounts (
      id TEXT PRIMARY KEY,
      kind TEXT NOT NULL CHECK (kind IN ('wallet', 'voucher', 'supplier_payable', 'programme', 'external')),
      owner_id TEXT,
      balance_micro_krw BIGINT NOT NULL DEFAULT 0,
      never_negative INTEGER NOT NULL CHECK (never_negative IN (0, 1)),
      created_at BIGINT NOT NULL,
      CHECK (never_negative = 0 OR balance_micro_krw >= 0)
    )`,
    `CREATE TABLE ledger_transactions (
      id TEXT PRIMARY KEY,
      kind TEXT NOT NULL CHECK (kind IN ('charge', 'deposit', 'programme_funding', 'voucher_issue', 'correction')),
      request_id TEXT UNIQUE,
      created_at BIGINT NOT NULL,
      actor_id TEXT,
      memo TEXT
    )`,
    `CREATE TABLE ledger_entries (
      transaction_id TEXT NOT NULL REFERENCES ledger_transactions(id),
      account_id TEXT NOT NULL REFERENCES ledger_accounts(id),
      amount_micro_krw BIGINT NOT NULL CHECK (amount_micro_krw <> 0),
      created_at BIGINT NOT NULL,
      PRIMARY KEY (transaction_id, account_id)
    )`,
    'CREATE INDEX ledger_entries_account ON ledger_entries (account_id, created_at)',
    'ALTER TABLE usage_events ADD COLUMN voucher_id TEXT',
    `ALTER TABLE organizations ADD COLUMN spend_mode TEXT NOT NULL DEFAULT 'postpaid'
       CHECK (spend_mode IN ('postpaid', 'prepaid'))`,
  ],
  dialectStatements: {
    sqlite: ['ledger_transactions', 'ledger_entries'].flatMap((table) => [
      `CREATE TRIGGER ${table}_no_update BEFORE UPDATE ON ${table}
       BEGIN SELECT RAISE(ABORT, '${REFUSAL}'); END`,
      `CREATE TRIGGER ${table}_no_delete BEFORE DELETE ON ${table}
       BEGIN SELECT RAISE(ABORT, '${REFUSAL}'); END`,
    ]),
    postgres: [
      `CREATE FUNCTION kaihub_ledger_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION '${REFUSAL}'; END $$`,
      ...['ledger_transactions', 'ledger_entries'].flatMap((table) => [
        `CREATE TRIGGER ${table}_no_change BEFORE UPDATE OR DELETE ON ${table}
         FOR EACH ROW EXECUTE FUNCTION kaihub_ledger_refuse()`,
        `CREATE TRIGGER ${table}_no_truncate BEFORE TRUNCATE ON ${table}
         FOR EACH STATEMENT EXECUTE FUNCTION kaihub_ledger_refuse()`,
      ]),
    ],
  },
};
