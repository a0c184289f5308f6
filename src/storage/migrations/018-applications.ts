import type { Migration } from '../migrator.ts';

/**
 * The supplier pool, applications, their review and the agreements selection makes
 * (billing/supplier-pool.ts, billing/programme-applications.ts, docs/billing.md).
 *
 * - A programme gets a capacity (how many organisations it selects; NULL: as many as its budget
 *   allows), review criteria (JSON `[{id, name, weight}]`) and the evaluators the operator assigns.
 * - One active application (draft, submitted or selected) per organisation and programme: a partial
 *   unique index, so two requests at the same moment cannot both create one.
 * - An agreement (협약) per selected application, unique on it: an application is never selected twice.
 */
export const migration018Applications: Migration = {
  id: '018-applications',
  statements: [
    'ALTER TABLE programmes ADD COLUMN capacity INTEGER CHECK (capacity > 0)',
    'ALTER TABLE programmes ADD COLUMN review_criteria TEXT',
    `CREATE TABLE programme_evaluators (
      programme_id TEXT NOT NULL REFERENCES programmes(id),
      user_id TEXT NOT NULL REFERENCES users(id),
      created_at BIGINT NOT NULL,
      PRIMARY KEY (programme_id, user_id)
    )`,
    'CREATE INDEX programme_evaluators_user ON programme_evaluators (user_id)',
    `CREATE TABLE supplier_pool_entries (
      id TEXT PRIMARY KEY,
      programme_id TEXT NOT NULL REFERENCES programmes(id),
      supplier_id TEXT NOT NULL REFERENCES suppliers(id),
      summary TEXT,
      product_ids TEXT NOT NULL,
      services TEXT NOT NULL,
      created_at BIGINT NOT NULL,
      updated_at BIGINT NOT NULL,
      UNIQUE (programme_id, supplier_id)
    )`,
    `CREATE TABLE programme_applications (
      id TEXT PRIMARY KEY,
      programme_id TEXT NOT NULL REFERENCES programmes(id),
      organization_id TEXT NOT NULL REFERENCES organizations(id),
      pool_entry_id TEXT NOT NULL REFERENCES supplier_pool_entries(id),
      supplier_id TEXT NOT NULL REFERENCES suppliers(id),
      status TEXT NOT NULL CHECK (status IN ('draft', 'submitted', 'selected', 'rejected')),
      requested_micro_krw BIGINT NOT NULL CHECK (requested_micro_krw > 0),
      cost_categories TEXT NOT NULL,
      plan TEXT NOT NULL,
      submitted_at BIGINT,
      decided_at BIGINT,
      decision_reason TEXT,
      created_at BIGINT NOT NULL,
      updated_at BIGINT NOT NULL
    )`,
    `CREATE UNIQUE INDEX programme_applications_active ON programme_applications (programme_id, organization_id)
       WHERE status IN ('draft', 'submitted', 'selected')`,
    'CREATE INDEX programme_applications_programme ON programme_applications (programme_id, status)',
    'CREATE INDEX programme_applications_organization ON programme_applications (organization_id)',
    'CREATE INDEX programme_applications_supplier ON programme_applications (supplier_id)',
    `CREATE TABLE application_reviews (
      application_id TEXT NOT NULL REFERENCES programme_applications(id),
      reviewer_id TEXT NOT NULL,
      scores TEXT NOT NULL,
      weighted_centipoints INTEGER NOT NULL CHECK (weighted_centipoints BETWEEN 0 AND 10000),
      comment TEXT,
      created_at BIGINT NOT NULL,
      updated_at BIGINT NOT NULL,
      PRIMARY KEY (application_id, reviewer_id)
    )`,
    `CREATE TABLE agreements (
      id TEXT PRIMARY KEY,
      application_id TEXT NOT NULL UNIQUE REFERENCES programme_applications(id),
      programme_id TEXT NOT NULL REFERENCES programmes(id),
      organization_id TEXT NOT NULL REFERENCES organizations(id),
      supplier_id TEXT NOT NULL REFERENCES suppliers(id),
      voucher_id TEXT NOT NULL REFERENCES vouchers(id),
      amount_micro_krw BIGINT NOT NULL CHECK (amount_micro_krw > 0),
      starts_at BIGINT NOT NULL,
      ends_at BIGINT NOT NULL,
      cost_categories TEXT NOT NULL,
      created_at BIGINT NOT NULL,
      CHECK (ends_at > starts_at)
    )`,
    'CREATE INDEX agreements_programme ON agreements (programme_id)',
  ],
};
