import type { Migration } from '../migrator.ts';

/**
 * Fallback chains across products: a product's ordered fallback model ids, and an organisation's
 * overrides by requested model. Both JSON text; NULL means none (the product's own chain applies).
 */
export const migration002Fallbacks: Migration = {
  id: '002-fallbacks',
  statements: [
    'ALTER TABLE products ADD COLUMN fallback_models TEXT',
    'ALTER TABLE organizations ADD COLUMN fallback_models TEXT',
  ],
};
