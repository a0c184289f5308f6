import type { Migration } from '../migrator.ts';

/**
 * Concurrency caps set by the operator: per deployment, the calls in flight one replica sends it; per
 * organisation, the calls it may have in progress on one replica. NULL: the hub's default
 * (KAIHUB_DEPLOYMENT_MAX_CONCURRENT, KAIHUB_ORG_MAX_CONCURRENT).
 */
export const migration006ConcurrencyLimits: Migration = {
  id: '006-concurrency-limits',
  statements: [
    'ALTER TABLE deployments ADD COLUMN max_concurrent INTEGER',
    'ALTER TABLE organizations ADD COLUMN max_concurrent_requests INTEGER',
  ],
};
