import type { Migration } from '../migrator.ts';

/**
 * Rate limits the operator sets per organisation and per key: requests and tokens per minute
 * (limits/rate-limits.ts). NULL: no limit of that kind.
 */
export const migration015RateLimits: Migration = {
  id: '015-rate-limits',
  statements: ['organizations', 'api_keys'].flatMap((table) => [
    `ALTER TABLE ${table} ADD COLUMN requests_per_minute INTEGER CHECK (requests_per_minute > 0)`,
    `ALTER TABLE ${table} ADD COLUMN tokens_per_minute INTEGER CHECK (tokens_per_minute > 0)`,
  ]),
};
