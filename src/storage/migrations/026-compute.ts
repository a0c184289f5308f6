import type { Migration } from '../migrator.ts';

const REFUSAL = 'compute charges are append-only: correct them with a new charge';

/**
 * GPU compute (src/compute/, docs/compute.md): pools of compute suppliers, calls (공모), applications,
 * reviews, allocations and their provisioning, usage per job and per allocation-day, monthly
 * utilisation checks, extensions, and the charges posted to the ledger.
 *
 * - A compute supplier is a row of `suppliers` (decision 0024): its supplier admins manage its pools.
 * - Times are BIGINT ms; an allocation's period is whole KST days, `ends_at` exclusive. Days in usage
 *   tables are KST dates as text (`2026-11-30`).
 * - One live application per organisation and call (partial unique index), one allocation per
 *   application (unique), so racing requests cannot make two.
 * - Capacity (never over-committed on any day) is checked with the pool rows locked, not by a
 *   constraint: a day-by-day sum is no CHECK (compute/capacity.ts).
 * - `compute_charges` is append-only, as the ledger is: a correction is a new charge.
 */
export const migration026Compute: Migration = {
  id: '026-compute',
  statements: [
    `CREATE TABLE compute_pools (
      id TEXT PRIMARY KEY,
      supplier_id TEXT NOT NULL REFERENCES suppliers(id),
      name TEXT NOT NULL UNIQUE,
      gpu_model TEXT NOT NULL,
      tf_per_gpu INTEGER NOT NULL CHECK (tf_per_gpu > 0),
      tf_precision TEXT NOT NULL,
      gpu_count INTEGER NOT NULL CHECK (gpu_count >= 0),
      gpus_per_server INTEGER NOT NULL CHECK (gpus_per_server > 0),
      region TEXT NOT NULL CHECK (region IN ('capital', 'non_capital')),
      price_micro_krw_per_gpu_hour BIGINT NOT NULL CHECK (price_micro_krw_per_gpu_hour >= 0),
      provisioner TEXT NOT NULL CHECK (provisioner IN ('manual', 'slurm', 'kubernetes')),
      provisioner_config TEXT NOT NULL,
      status TEXT NOT NULL CHECK (status IN ('active', 'retired')),
      created_at BIGINT NOT NULL,
      updated_at BIGINT NOT NULL
    )`,
    'CREATE INDEX compute_pools_supplier ON compute_pools (supplier_id)',
    `CREATE TABLE compute_calls (
      id TEXT PRIMARY KEY,
      name TEXT NOT NULL UNIQUE,
      starts_at BIGINT NOT NULL,
      ends_at BIGINT NOT NULL,
      applications_close_at BIGINT,
      pool_ids TEXT NOT NULL,
      tracks TEXT NOT NULL,
      eligible_classes TEXT NOT NULL,
      max_grant_days INTEGER NOT NULL CHECK (max_grant_days > 0),
      review_criteria TEXT NOT NULL,
      bonuses TEXT NOT NULL,
      tie_break TEXT NOT NULL,
      capacity_gpus INTEGER NOT NULL CHECK (capacity_gpus > 0),
      utilisation_threshold_bp INTEGER NOT NULL CHECK (utilisation_threshold_bp BETWEEN 0 AND 10000),
      reclaim_policy TEXT NOT NULL,
      copay_bp INTEGER NOT NULL CHECK (copay_bp BETWEEN 0 AND 10000),
      funding_programme_id TEXT REFERENCES programmes(id),
      created_at BIGINT NOT NULL,
      updated_at BIGINT NOT NULL,
      CHECK (ends_at > starts_at)
    )`,
    `CREATE TABLE compute_call_evaluators (
      call_id TEXT NOT NULL REFERENCES compute_calls(id),
      user_id TEXT NOT NULL REFERENCES users(id),
      created_at BIGINT NOT NULL,
      PRIMARY KEY (call_id, user_id)
    )`,
    'CREATE INDEX compute_call_evaluators_user ON compute_call_evaluators (user_id)',
    `CREATE TABLE compute_applications (
      id TEXT PRIMARY KEY,
      call_id TEXT NOT NULL REFERENCES compute_calls(id),
      organization_id TEXT NOT NULL REFERENCES organizations(id),
      track_id TEXT NOT NULL,
      pool_id TEXT NOT NULL REFERENCES compute_pools(id),
      unit TEXT NOT NULL CHECK (unit IN ('gpu', 'server', 'tf')),
      quantity INTEGER NOT NULL CHECK (quantity > 0),
      gpus INTEGER NOT NULL CHECK (gpus > 0),
      starts_at BIGINT NOT NULL,
      ends_at BIGINT NOT NULL,
      purpose TEXT NOT NULL CHECK (purpose IN ('training', 'fine_tuning', 'inference', 'research')),
      plan TEXT NOT NULL,
      applicant_region TEXT NOT NULL CHECK (applicant_region IN ('capital', 'non_capital')),
      scheduler_users TEXT NOT NULL,
      status TEXT NOT NULL CHECK (status IN ('draft', 'submitted', 'selected', 'waitlisted', 'rejected', 'withdrawn')),
      rank INTEGER,
      score_centipoints INTEGER,
      submitted_at BIGINT,
      decided_at BIGINT,
      decision_reason TEXT,
      created_at BIGINT NOT NULL,
      updated_at BIGINT NOT NULL,
      CHECK (ends_at > starts_at)
    )`,
    `CREATE UNIQUE INDEX compute_applications_live ON compute_applications (call_id, organization_id)
       WHERE status IN ('draft', 'submitted', 'selected', 'waitlisted')`,
    'CREATE INDEX compute_applications_call ON compute_applications (call_id, status)',
    'CREATE INDEX compute_applications_organization ON compute_applications (organization_id)',
    `CREATE TABLE compute_reviews (
      application_id TEXT NOT NULL REFERENCES compute_applications(id),
      reviewer_id TEXT NOT NULL,
      scores TEXT NOT NULL,
      weighted_centipoints INTEGER NOT NULL CHECK (weighted_centipoints BETWEEN 0 AND 10000),
      comment TEXT,
      created_at BIGINT NOT NULL,
      updated_at BIGINT NOT NULL,
      PRIMARY KEY (application_id, reviewer_id)
    )`,
    `CREATE TABLE compute_allocations (
      id TEXT PRIMARY KEY,
      application_id TEXT NOT NULL UNIQUE REFERENCES compute_applications(id),
      call_id TEXT NOT NULL REFERENCES compute_calls(id),
      pool_id TEXT NOT NULL REFERENCES compute_pools(id),
      organization_id TEXT NOT NULL REFERENCES organizations(id),
      gpus INTEGER NOT NULL CHECK (gpus > 0),
      starts_at BIGINT NOT NULL,
      ends_at BIGINT NOT NULL,
      gpu_hour_budget INTEGER CHECK (gpu_hour_budget > 0),
      price_micro_krw_per_gpu_hour BIGINT NOT NULL,
      copay_bp INTEGER NOT NULL,
      funding_programme_id TEXT,
      scheduler_account TEXT NOT NULL,
      scheduler_users TEXT NOT NULL,
      status TEXT NOT NULL CHECK (status IN ('offered', 'scheduled', 'provisioning', 'active', 'ending',
        'ended', 'reclaimed', 'declined')),
      offer_expires_at BIGINT,
      attempts INTEGER NOT NULL DEFAULT 0,
      last_error TEXT,
      next_attempt_at BIGINT,
      active_since BIGINT,
      ending_as TEXT CHECK (ending_as IN ('ended', 'reclaimed')),
      ended_at BIGINT,
      end_reason TEXT,
      warnings INTEGER NOT NULL DEFAULT 0,
      created_at BIGINT NOT NULL,
      updated_at BIGINT NOT NULL,
      CHECK (ends_at > starts_at)
    )`,
    'CREATE INDEX compute_allocations_pool ON compute_allocations (pool_id, status)',
    'CREATE INDEX compute_allocations_organization ON compute_allocations (organization_id)',
    'CREATE INDEX compute_allocations_call ON compute_allocations (call_id, status)',
    `CREATE TABLE compute_extensions (
      id TEXT PRIMARY KEY,
      allocation_id TEXT NOT NULL REFERENCES compute_allocations(id),
      ends_at BIGINT NOT NULL,
      reason TEXT NOT NULL,
      status TEXT NOT NULL CHECK (status IN ('requested', 'approved', 'rejected')),
      decided_at BIGINT,
      decided_by TEXT,
      decision_reason TEXT,
      created_at BIGINT NOT NULL
    )`,
    `CREATE UNIQUE INDEX compute_extensions_open ON compute_extensions (allocation_id)
       WHERE status = 'requested'`,
    `CREATE TABLE compute_events (
      id TEXT PRIMARY KEY,
      allocation_id TEXT,
      pool_id TEXT,
      kind TEXT NOT NULL,
      detail TEXT NOT NULL,
      created_at BIGINT NOT NULL
    )`,
    'CREATE INDEX compute_events_allocation ON compute_events (allocation_id, created_at)',
    'CREATE INDEX compute_events_pool ON compute_events (pool_id, created_at)',
    `CREATE TABLE compute_jobs (
      pool_id TEXT NOT NULL,
      job_id TEXT NOT NULL,
      day TEXT NOT NULL,
      account TEXT NOT NULL,
      username TEXT NOT NULL,
      allocation_id TEXT,
      gpus INTEGER NOT NULL,
      gpu_seconds BIGINT NOT NULL,
      state TEXT NOT NULL,
      PRIMARY KEY (pool_id, day, job_id)
    )`,
    'CREATE INDEX compute_jobs_allocation ON compute_jobs (allocation_id, day)',
    `CREATE TABLE compute_usage_daily (
      allocation_id TEXT NOT NULL REFERENCES compute_allocations(id),
      day TEXT NOT NULL,
      gpu_seconds BIGINT NOT NULL CHECK (gpu_seconds >= 0),
      jobs INTEGER NOT NULL,
      source TEXT NOT NULL,
      updated_at BIGINT NOT NULL,
      PRIMARY KEY (allocation_id, day)
    )`,
    `CREATE TABLE compute_checks (
      allocation_id TEXT NOT NULL REFERENCES compute_allocations(id),
      month TEXT NOT NULL,
      granted_gpu_seconds BIGINT NOT NULL,
      used_gpu_seconds BIGINT NOT NULL,
      utilisation_bp INTEGER NOT NULL,
      outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'warning', 'reclaimed')),
      created_at BIGINT NOT NULL,
      PRIMARY KEY (allocation_id, month)
    )`,
    `CREATE TABLE compute_charges (
      id TEXT PRIMARY KEY,
      allocation_id TEXT NOT NULL REFERENCES compute_allocations(id),
      day TEXT NOT NULL,
      gpu_seconds BIGINT NOT NULL,
      amount_micro_krw BIGINT NOT NULL,
      programme_micro_krw BIGINT NOT NULL,
      organization_micro_krw BIGINT NOT NULL,
      transaction_id TEXT REFERENCES ledger_transactions(id),
      settlement_month TEXT NOT NULL,
      created_at BIGINT NOT NULL
    )`,
    'CREATE INDEX compute_charges_allocation ON compute_charges (allocation_id, day)',
    'CREATE INDEX compute_charges_month ON compute_charges (settlement_month)',
    `CREATE TABLE compute_statements (
      month TEXT NOT NULL,
      supplier_id TEXT NOT NULL,
      statement_json TEXT NOT NULL,
      created_at BIGINT NOT NULL,
      PRIMARY KEY (month, supplier_id)
    )`,
  ],
  dialectStatements: {
    sqlite: ['compute_charges', 'compute_statements'].flatMap((table) => [
      `CREATE TRIGGER ${table}_no_update BEFORE UPDATE ON ${table}
       BEGIN SELECT RAISE(ABORT, '${REFUSAL}'); END`,
      `CREATE TRIGGER ${table}_no_delete BEFORE DELETE ON ${table}
       BEGIN SELECT RAISE(ABORT, '${REFUSAL}'); END`,
    ]),
    postgres: [
      `CREATE FUNCTION kaihub_compute_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION '${REFUSAL}'; END $$`,
      ...['compute_charges', 'compute_statements'].flatMap((table) => [
        `CREATE TRIGGER ${table}_no_change BEFORE UPDATE OR DELETE ON ${table}
         FOR EACH ROW EXECUTE FUNCTION kaihub_compute_refuse()`,
      ]),
    ],
  },
};
