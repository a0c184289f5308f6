import type { Migration } from '../migrator.ts';

/**
 * Usage records that cannot be wrong: money and token counts never negative (and tokens within
 * PostgreSQL's INTEGER on both engines), enforced by the database itself; a `usage_note` saying why a
 * record bills an estimate (an upstream's implausible counts); and `usage_rejected`, where a journal
 * line that cannot be applied is set aside and reported instead of blocking every later one.
 *
 * Rows already violating the new rules (negative costs from upstreams reporting negative counts before
 * this version) are moved to `usage_rejected` first, whole, so nothing is lost and nothing is edited.
 *
 * SQLite cannot add a CHECK to an existing table: `usage_events` is rebuilt (nothing references it);
 * `products`, which deployments reference, gets triggers that refuse the same values instead.
 */
const VIOLATES = `cost_micro_krw < 0 OR price_input_micro_per_1m < 0 OR price_output_micro_per_1m < 0
  OR prompt_tokens < 0 OR completion_tokens < 0`;

const REJECTED_TABLE = `CREATE TABLE usage_rejected (
  request_id TEXT PRIMARY KEY,
  rejected_at BIGINT NOT NULL,
  source TEXT NOT NULL,
  reason TEXT NOT NULL,
  record TEXT NOT NULL
)`;

const USAGE_COLUMNS = `request_id, created_at, organization_id, api_key_id, product_id, deployment_id, model, endpoint,
  stream, status, http_status, error_code, prompt_tokens, completion_tokens, usage_source,
  price_input_micro_per_1m, price_output_micro_per_1m, cost_micro_krw, latency_ms, ttft_ms`;

export const migration005UsageIntegrity: Migration = {
  id: '005-usage-integrity',
  statements: [REJECTED_TABLE],
  dialectStatements: {
    postgres: [
      `INSERT INTO usage_rejected (request_id, rejected_at, source, reason, record)
         SELECT u.request_id, (EXTRACT(EPOCH FROM now()) * 1000)::bigint, 'migration 005',
                'negative amount or token count', row_to_json(u)::text
           FROM usage_events u WHERE ${VIOLATES}`,
      `DELETE FROM usage_events WHERE ${VIOLATES}`,
      'ALTER TABLE usage_events ADD COLUMN usage_note TEXT',
      `ALTER TABLE usage_events ADD CONSTRAINT usage_events_amounts_nonnegative
         CHECK (cost_micro_krw >= 0 AND price_input_micro_per_1m >= 0 AND price_output_micro_per_1m >= 0)`,
      `ALTER TABLE usage_events ADD CONSTRAINT usage_events_tokens_nonnegative
         CHECK (prompt_tokens >= 0 AND completion_tokens >= 0)`,
      `ALTER TABLE products ADD CONSTRAINT products_prices_nonnegative
         CHECK (price_input_micro_per_1m >= 0 AND price_output_micro_per_1m >= 0)`,
    ],
    sqlite: [
      `INSERT INTO usage_rejected (request_id, rejected_at, source, reason, record)
         SELECT request_id, CAST(strftime('%s', 'now') AS INTEGER) * 1000, 'migration 005',
                'negative amount or token count',
                json_object('request_id', request_id, 'created_at', created_at, 'organization_id', organization_id,
                  'api_key_id', api_key_id, 'product_id', product_id, 'deployment_id', deployment_id, 'model', model,
                  'endpoint', endpoint, 'stream', stream, 'status', status, 'http_status', http_status,
                  'error_code', error_code, 'prompt_tokens', prompt_tokens, 'completion_tokens', completion_tokens,
                  'usage_source', usage_source, 'price_input_micro_per_1m', CAST(price_input_micro_per_1m AS TEXT),
                  'price_output_micro_per_1m', CAST(price_output_micro_per_1m AS TEXT),
                  'cost_micro_krw', CAST(cost_micro_krw AS TEXT), 'latency_ms', latency_ms, 'ttft_ms', ttft_ms)
           FROM usage_events WHERE ${VIOLATES}`,
      `DELETE FROM usage_events WHERE ${VIOLATES}`,
      `CREATE TABLE usage_events_checked (
        request_id TEXT PRIMARY KEY,
        created_at BIGINT NOT NULL,
        organization_id TEXT NOT NULL,
        api_key_id TEXT NOT NULL,
        product_id TEXT NOT NULL,
        deployment_id TEXT,
        model TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        stream INTEGER NOT NULL,
        status TEXT NOT NULL,
        http_status INTEGER NOT NULL,
        error_code TEXT,
        prompt_tokens INTEGER NOT NULL CHECK (prompt_tokens BETWEEN 0 AND 2147483647),
        completion_tokens INTEGER NOT NULL CHECK (completion_tokens BETWEEN 0 AND 2147483647),
        usage_source TEXT NOT NULL,
        price_input_micro_per_1m BIGINT NOT NULL CHECK (price_input_micro_per_1m >= 0),
        price_output_micro_per_1m BIGINT NOT NULL CHECK (price_output_micro_per_1m >= 0),
        cost_micro_krw BIGINT NOT NULL CHECK (cost_micro_krw >= 0),
        latency_ms INTEGER NOT NULL,
        ttft_ms INTEGER,
        usage_note TEXT
      )`,
      `INSERT INTO usage_events_checked (${USAGE_COLUMNS}) SELECT ${USAGE_COLUMNS} FROM usage_events`,
      'DROP TABLE usage_events',
      'ALTER TABLE usage_events_checked RENAME TO usage_events',
      'CREATE INDEX usage_events_org_time ON usage_events (organization_id, created_at)',
      'CREATE INDEX usage_events_product_time ON usage_events (product_id, created_at)',
      'CREATE INDEX usage_events_key_time ON usage_events (api_key_id, created_at)',
      'CREATE INDEX usage_events_time ON usage_events (created_at)',
      `CREATE TRIGGER products_prices_nonnegative_insert BEFORE INSERT ON products
         WHEN NEW.price_input_micro_per_1m < 0 OR NEW.price_output_micro_per_1m < 0
         BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: products_prices_nonnegative'); END`,
      `CREATE TRIGGER products_prices_nonnegative_update BEFORE UPDATE ON products
         WHEN NEW.price_input_micro_per_1m < 0 OR NEW.price_output_micro_per_1m < 0
         BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: products_prices_nonnegative'); END`,
    ],
  },
};
