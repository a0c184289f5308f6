import type { Migration } from '../migrator.ts';

/**
 * Where a product's facts come from: the public list price it was set from (currency, amounts,
 * source, date read, note) and how it is usually deployed, both JSON. `imported_fields` (JSON) holds
 * the values the last catalogue import wrote, so the next import can tell a value the operator
 * changed (kept) from one only the file set (updated): see catalog/catalog-import.ts.
 */
export const migration012CatalogProvenance: Migration = {
  id: '012-catalog-provenance',
  statements: [
    'ALTER TABLE products ADD COLUMN price_reference TEXT',
    'ALTER TABLE products ADD COLUMN suggested_deployment TEXT',
    'ALTER TABLE products ADD COLUMN imported_fields TEXT',
    'ALTER TABLE suppliers ADD COLUMN imported_fields TEXT',
  ],
};
