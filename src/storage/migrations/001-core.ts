import type { Migration } from '../migrator.ts';

// BIGINT, TEXT and INTEGER mean the same to SQLite and PostgreSQL here, so one script serves both.
export const migration001Core: Migration = {
  id: '001-core',
  statements: [
    `CREATE TABLE settings (
      key TEXT PRIMARY KEY,
      value TEXT NOT NULL,
      updated_at BIGINT NOT NULL
    )`,
    `CREATE TABLE suppliers (
      id TEXT PRIMARY KEY,
      name TEXT NOT NULL UNIQUE,
      name_en TEXT,
      contact_name TEXT,
      contact_email TEXT,
      website TEXT,
      status TEXT NOT NULL,
      created_at BIGINT NOT NULL,
      updated_at BIGINT NOT NULL
    )`,
    `CREATE TABLE products (
      id TEXT PRIMARY KEY,
      supplier_id TEXT NOT NULL REFERENCES suppliers(id),
      model TEXT NOT NULL UNIQUE,
      display_name TEXT NOT NULL,
      description TEXT,
      parameters BIGINT,
      purposes TEXT NOT NULL,
      modality TEXT NOT NULL,
      context_window INTEGER NOT NULL,
      price_input_micro_per_1m BIGINT NOT NULL,
      price_output_micro_per_1m BIGINT NOT NULL,
      residency TEXT NOT NULL,
      status TEXT NOT NULL,
      created_at BIGINT NOT NULL,
      updated_at BIGINT NOT NULL
    )`,
    `CREATE TABLE deployments (
      id TEXT PRIMARY KEY,
      product_id TEXT NOT NULL REFERENCES products(id),
      adapter TEXT NOT NULL,
      base_url TEXT NOT NULL,
      api_key_sealed TEXT,
      upstream_model TEXT NOT NULL,
      weight INTEGER NOT NULL,
      priority INTEGER NOT NULL,
      status TEXT NOT NULL,
      created_at BIGINT NOT NULL,
      updated_at BIGINT NOT NULL
    )`,
    'CREATE INDEX deployments_product ON deployments (product_id)',
    `CREATE TABLE organizations (
      id TEXT PRIMARY KEY,
      name TEXT NOT NULL UNIQUE,
      class TEXT NOT NULL,
      business_number TEXT,
      status TEXT NOT NULL,
      created_at BIGINT NOT NULL,
      updated_at BIGINT NOT NULL
    )`,
    `CREATE TABLE api_keys (
      id TEXT PRIMARY KEY,
      organization_id TEXT NOT NULL REFERENCES organizations(id),
      name TEXT NOT NULL,
      prefix TEXT NOT NULL,
      key_hash TEXT NOT NULL UNIQUE,
      allowed_models TEXT,
      created_at BIGINT NOT NULL,
      revoked_at BIGINT
    )`,
    'CREATE INDEX api_keys_organization ON api_keys (organization_id)',
    'CREATE INDEX api_keys_revoked ON api_keys (revoked_at)',
    // The metering journal: one row per request, written before the response completes. No foreign
    // keys on purpose: a usage record must never fail to be written because a row elsewhere changed.
    `CREATE TABLE usage_events (
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
      prompt_tokens INTEGER NOT NULL,
      completion_tokens INTEGER NOT NULL,
      usage_source TEXT NOT NULL,
      price_input_micro_per_1m BIGINT NOT NULL,
      price_output_micro_per_1m BIGINT NOT NULL,
      cost_micro_krw BIGINT NOT NULL,
      latency_ms INTEGER NOT NULL,
      ttft_ms INTEGER
    )`,
    'CREATE INDEX usage_events_org_time ON usage_events (organization_id, created_at)',
    'CREATE INDEX usage_events_product_time ON usage_events (product_id, created_at)',
    'CREATE INDEX usage_events_key_time ON usage_events (api_key_id, created_at)',
    'CREATE INDEX usage_events_time ON usage_events (created_at)',
  ],
};
