import type { Migration } from '../migrator.ts';

/**
 * Alerts (billing/alerts.ts): an organisation's events (a voucher crossing 80 % and 100 % used), each
 * recorded once (`dedupe_key`) in the transaction that charged the call crossing it; the webhooks the
 * organisation registered, with a signing secret sealed like supplier credentials; and one delivery row
 * per event and webhook, retried with backoff by the dispatcher, never on the request path.
 */
export const migration019Alerts: Migration = {
  id: '019-alerts',
  statements: [
    `CREATE TABLE webhooks (
      id TEXT PRIMARY KEY,
      organization_id TEXT NOT NULL REFERENCES organizations(id),
      url TEXT NOT NULL,
      secret_sealed TEXT NOT NULL,
      created_at BIGINT NOT NULL,
      disabled_at BIGINT
    )`,
    'CREATE INDEX webhooks_organization ON webhooks (organization_id)',
    `CREATE TABLE organization_events (
      id TEXT PRIMARY KEY,
      organization_id TEXT NOT NULL,
      kind TEXT NOT NULL,
      dedupe_key TEXT NOT NULL UNIQUE,
      payload_json TEXT NOT NULL,
      created_at BIGINT NOT NULL
    )`,
    'CREATE INDEX organization_events_organization ON organization_events (organization_id, created_at)',
    `CREATE TABLE webhook_deliveries (
      event_id TEXT NOT NULL REFERENCES organization_events(id),
      webhook_id TEXT NOT NULL REFERENCES webhooks(id),
      status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
      attempts INTEGER NOT NULL DEFAULT 0,
      next_attempt_at BIGINT NOT NULL,
      last_error TEXT,
      delivered_at BIGINT,
      PRIMARY KEY (event_id, webhook_id)
    )`,
    'CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at)',
  ],
};
