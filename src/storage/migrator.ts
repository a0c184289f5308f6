import type { Database, Dialect } from './database.ts';
import { migration001Core } from './migrations/001-core.ts';
import { migration002Fallbacks } from './migrations/002-fallbacks.ts';
import { migration003RoutingStrategy } from './migrations/003-routing-strategy.ts';
import { migration004UsageAttempts } from './migrations/004-usage-attempts.ts';
import { migration005UsageIntegrity } from './migrations/005-usage-integrity.ts';
import { migration006ConcurrencyLimits } from './migrations/006-concurrency-limits.ts';
import { migration010People } from './migrations/010-people.ts';
import { migration011AuditLog } from './migrations/011-audit-log.ts';
import { migration012CatalogProvenance } from './migrations/012-catalog-provenance.ts';
import { migration013DeploymentUrlSetter } from './migrations/013-deployment-url-setter.ts';
import { migration014LedgerAndVouchers } from './migrations/014-ledger-and-vouchers.ts';
import { migration015RateLimits } from './migrations/015-rate-limits.ts';
import { migration016ProductPrices } from './migrations/016-product-prices.ts';
import { migration017Settlement } from './migrations/017-settlement.ts';
import { migration018Applications } from './migrations/018-applications.ts';
import { migration019Alerts } from './migrations/019-alerts.ts';
import { migration020UsageDaily } from './migrations/020-usage-daily.ts';
import { migration021ProgrammeClosures } from './migrations/021-programme-closures.ts';
import { migration022DataPolicies } from './migrations/022-data-policies.ts';
import { migration023UsageUncharged } from './migrations/023-usage-uncharged.ts';
import { migration024EvaluationRuns } from './migrations/024-evaluation-runs.ts';
import { migration025EvaluationRounds } from './migrations/025-evaluation-rounds.ts';
import { migration026Compute } from './migrations/026-compute.ts';
import { migration027BattleRuns } from './migrations/027-battle-runs.ts';
import { migration028PrivateEvaluationRuns } from './migrations/028-private-evaluation-runs.ts';
import { migration029ComputeUsageReads } from './migrations/029-compute-usage-reads.ts';
import { migration030ProgrammeEligibleSuppliers } from './migrations/030-programme-eligible-suppliers.ts';

export interface Migration {
  /** Sortable and never reused: `NNN-name`. */
  id: string;
  statements: readonly string[];
  /** Run after `statements` on that engine only: what the two dialects spell differently (triggers). */
  dialectStatements?: Partial<Record<Dialect, readonly string[]>>;
}

/** Forward-only, in order. A new migration is a new file appended here, never an edit of an old one. */
export const migrations: readonly Migration[] = [
  migration001Core,
  migration002Fallbacks,
  migration003RoutingStrategy,
  migration004UsageAttempts,
  migration005UsageIntegrity,
  migration006ConcurrencyLimits,
  migration010People,
  migration011AuditLog,
  migration012CatalogProvenance,
  migration013DeploymentUrlSetter,
  migration014LedgerAndVouchers,
  migration015RateLimits,
  migration016ProductPrices,
  migration017Settlement,
  migration018Applications,
  migration019Alerts,
  migration020UsageDaily,
  migration021ProgrammeClosures,
  migration022DataPolicies,
  migration023UsageUncharged,
  migration024EvaluationRuns,
  migration025EvaluationRounds,
  migration026Compute,
  migration027BattleRuns,
  migration028PrivateEvaluationRuns,
  migration029ComputeUsageReads,
  migration030ProgrammeEligibleSuppliers,
];

// Any constant works; it only has to be the same for every replica so two starting at once serialise.
export const POSTGRES_LOCK_KEY = 4_240_117;

/** Applies what has not run yet, all in one transaction: a failed migration leaves the schema as it was. */
export async function migrate(db: Database, list: readonly Migration[] = migrations): Promise<string[]> {
  return db.transaction(async (tx) => {
    if (db.dialect === 'postgres') {
      // a replica starting while another migrates waits for it however long it takes, and a migration
      // waits for the locks its DDL needs: not the pool's lock_timeout (storage/postgres.ts)
      await tx.run('SET LOCAL lock_timeout = 0');
      await tx.get('SELECT pg_advisory_xact_lock(?)', [POSTGRES_LOCK_KEY]);
    }
    await tx.run(
      'CREATE TABLE IF NOT EXISTS kaihub_migrations (id TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)',
    );
    const done = new Set((await tx.all<{ id: string }>('SELECT id FROM kaihub_migrations')).map((r) => r.id));
    const applied: string[] = [];
    for (const migration of list) {
      if (done.has(migration.id)) continue;
      for (const statement of migration.statements) await tx.run(statement);
      for (const statement of migration.dialectStatements?.[db.dialect] ?? []) await tx.run(statement);
      await tx.run('INSERT INTO kaihub_migrations (id, applied_at) VALUES (?, ?)', [
        migration.id,
        Date.now(),
      ]);
      applied.push(migration.id);
    }
    return applied;
  });
}
