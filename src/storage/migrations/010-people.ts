import type { Migration } from '../migrator.ts';

/**
 * People: users, their memberships (a role, scoped to a supplier or an organisation where the role
 * has a tenant) and their personal access tokens for /admin/v1 (only the SHA-256 is stored, like API
 * keys). The unique index treats "no tenant" as one value, so a role is held at most once per tenant.
 */
export const migration010People: Migration = {
  id: '010-people',
  statements: [
    `CREATE TABLE users (
      id TEXT PRIMARY KEY,
      name TEXT NOT NULL,
      email TEXT NOT NULL UNIQUE,
      status TEXT NOT NULL,
      created_at BIGINT NOT NULL,
      updated_at BIGINT NOT NULL
    )`,
    `CREATE TABLE memberships (
      id TEXT PRIMARY KEY,
      user_id TEXT NOT NULL REFERENCES users(id),
      role TEXT NOT NULL,
      supplier_id TEXT REFERENCES suppliers(id),
      organization_id TEXT REFERENCES organizations(id),
      created_at BIGINT NOT NULL
    )`,
    `CREATE UNIQUE INDEX memberships_unique
       ON memberships (user_id, role, COALESCE(supplier_id, ''), COALESCE(organization_id, ''))`,
    'CREATE INDEX memberships_supplier ON memberships (supplier_id)',
    'CREATE INDEX memberships_organization ON memberships (organization_id)',
    `CREATE TABLE personal_access_tokens (
      id TEXT PRIMARY KEY,
      user_id TEXT NOT NULL REFERENCES users(id),
      name TEXT NOT NULL,
      prefix TEXT NOT NULL,
      token_hash TEXT NOT NULL UNIQUE,
      created_at BIGINT NOT NULL,
      expires_at BIGINT NOT NULL,
      last_used_at BIGINT,
      revoked_at BIGINT
    )`,
    'CREATE INDEX personal_access_tokens_user ON personal_access_tokens (user_id)',
  ],
};
