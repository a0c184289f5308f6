import type { Migration } from '../migrator.ts';

/**
 * How a product picks among the deployments of one priority tier: 'weighted' (random by weight),
 * 'least-in-flight' or 'lowest-latency' (see routing/router.ts).
 */
export const migration003RoutingStrategy: Migration = {
  id: '003-routing-strategy',
  statements: ["ALTER TABLE products ADD COLUMN routing_strategy TEXT NOT NULL DEFAULT 'weighted'"],
};
