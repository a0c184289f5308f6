import type { Migration } from '../migrator.ts';

/**
 * The upstream calls behind a usage record, when there was more than the one that answered at once:
 * retries, failovers, fallbacks to other products, and requests every attempt of which failed. A
 * request served by its first attempt has no rows here: its usage record is that attempt (it names
 * the deployment, the status and the timings), so the common case writes nothing extra.
 */
export const migration004UsageAttempts: Migration = {
  id: '004-usage-attempts',
  statements: [
    `CREATE TABLE usage_attempts (
      request_id TEXT NOT NULL,
      attempt INTEGER NOT NULL,
      created_at BIGINT NOT NULL,
      product_id TEXT NOT NULL,
      model TEXT NOT NULL,
      deployment_id TEXT NOT NULL,
      outcome TEXT NOT NULL,
      http_status INTEGER,
      duration_ms INTEGER NOT NULL,
      PRIMARY KEY (request_id, attempt)
    )`,
    'CREATE INDEX usage_attempts_deployment_time ON usage_attempts (deployment_id, created_at)',
  ],
};
