import type { Migration } from '../migrator.ts';

const REFUSAL = 'product_prices is append-only: a price is never changed or deleted; schedule a new one';

/**
 * Effective-dated prices (catalog/product-prices.ts, docs/billing.md "Prices in force"): one row per
 * price a product ever had or will have, in force from `effective_from` until the next row's. A change
 * never rewrites a row — so what a charge was priced at can always be told from the history, and no
 * code path can re-price the past. Append-only in the database itself, as the audit log and the ledger
 * are. One row per product and instant: a second change for the same instant is refused (409).
 *
 * Every existing product gets one row with its current prices, in force from its creation: the prices
 * it had before are only in its usage records (each keeps the prices it was charged at), which is
 * where statements read them anyway.
 */
export const migration016ProductPrices: Migration = {
  id: '016-product-prices',
  statements: [
    `CREATE TABLE product_prices (
      product_id TEXT NOT NULL REFERENCES products(id),
      effective_from BIGINT NOT NULL,
      price_input_micro_per_1m BIGINT NOT NULL CHECK (price_input_micro_per_1m >= 0),
      price_output_micro_per_1m BIGINT NOT NULL CHECK (price_output_micro_per_1m >= 0),
      set_by TEXT NOT NULL,
      set_at BIGINT NOT NULL,
      PRIMARY KEY (product_id, effective_from)
    )`,
    `INSERT INTO product_prices (product_id, effective_from, price_input_micro_per_1m, price_output_micro_per_1m,
       set_by, set_at)
     SELECT id, created_at, price_input_micro_per_1m, price_output_micro_per_1m, 'migration:016', updated_at
       FROM products`,
  ],
  dialectStatements: {
    sqlite: [
      `CREATE TRIGGER product_prices_no_update BEFORE UPDATE ON product_prices
       BEGIN SELECT RAISE(ABORT, '${REFUSAL}'); END`,
      `CREATE TRIGGER product_prices_no_delete BEFORE DELETE ON product_prices
       BEGIN SELECT RAISE(ABORT, '${REFUSAL}'); END`,
    ],
    postgres: [
      `CREATE FUNCTION kaihub_product_prices_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION '${REFUSAL}'; END $$`,
      `CREATE TRIGGER product_prices_no_change BEFORE UPDATE OR DELETE ON product_prices
       FOR EACH ROW EXECUTE FUNCTION kaihub_product_prices_refuse()`,
      `CREATE TRIGGER product_prices_no_truncate BEFORE TRUNCATE ON product_prices
       FOR EACH STATEMENT EXECUTE FUNCTION kaihub_product_prices_refuse()`,
    ],
  },
};
