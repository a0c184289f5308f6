import type { Migration } from '../migrator.ts';

/**
 * Data policies (guardrails/data-policies.ts): per organisation class, organisation, programme or
 * product, what the guard does with Korean personal data and where calls may be served. Deployments
 * learn where they run (NULL: where their product says) and whether the operator has seen their CSAP
 * certificate. Every public organisation is kept to domestic deployments from the start (데이터 주권);
 * the operator can change that row like any other.
 */
export const migration022DataPolicies: Migration = {
  id: '022-data-policies',
  statements: [
    `CREATE TABLE data_policies (
      id TEXT PRIMARY KEY,
      scope TEXT NOT NULL CHECK (scope IN ('organization_class', 'organization', 'programme', 'product')),
      scope_id TEXT NOT NULL,
      pii_mode TEXT NOT NULL CHECK (pii_mode IN ('off', 'detect', 'mask', 'pseudonymize', 'block')),
      pii_types TEXT,
      residency TEXT NOT NULL CHECK (residency IN ('any', 'domestic')),
      certified_only INTEGER NOT NULL CHECK (certified_only IN (0, 1)),
      created_at BIGINT NOT NULL,
      updated_at BIGINT NOT NULL,
      UNIQUE (scope, scope_id)
    )`,
    `INSERT INTO data_policies
       (id, scope, scope_id, pii_mode, pii_types, residency, certified_only, created_at, updated_at)
     VALUES ('dpol_public_default', 'organization_class', 'public', 'off', NULL, 'domestic', 0, 0, 0)`,
    `ALTER TABLE deployments ADD COLUMN residency TEXT CHECK (residency IN ('domestic', 'foreign'))`,
    'ALTER TABLE deployments ADD COLUMN csap_certified INTEGER NOT NULL DEFAULT 0 CHECK (csap_certified IN (0, 1))',
  ],
};
