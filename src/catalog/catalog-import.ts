import { formatKrw, parseKrwPrice } from '../billing/money.ts';
import { kstDate } from '../kst.ts';
import type { SqlExecutor, SqlValue } from '../storage/database.ts';
import { newId } from '../storage/ids.ts';
import type { CatalogFile, CatalogFileProduct } from './catalog-file.ts';
import { PRODUCT_COLUMNS, SUPPLIER_COLUMNS, toSupplier } from './catalog-records.ts';
import { inForce, insertPriceRow, priceRows, productsWithPrices } from './product-prices.ts';

/**
 * Importing a catalogue file: suppliers matched by name, products by model; what is missing is
 * created, what differs is updated — but only where the current value is the one the previous import
 * wrote. A value the operator changed since (a price above all), or set on a product no import
 * created, is kept and reported, unless `overwrite` says the file wins. The file's values become the
 * new base either way, so the next import of the same file reports the same kept values again.
 * Products missing from the file are left alone. One transaction: all of it or nothing.
 */
export interface ImportOptions {
  /** The file wins over values the operator changed. */
  overwrite: boolean;
  /** Report what would happen, change nothing. */
  dryRun: boolean;
  /** Who a price this import sets is set by (the audit log's actor id); default `system`. */
  actorId?: string;
}

export interface KeptValue {
  model?: string;
  supplier?: string;
  field: string;
  current: unknown;
  file: unknown;
}

export interface ImportReport {
  dryRun: boolean;
  suppliers: { created: string[]; updated: { name: string; fields: string[] }[]; unchanged: number };
  products: {
    created: string[];
    updated: { model: string; fields: string[] }[];
    unchanged: number;
    /** Values the operator changed, kept instead of the file's. */
    kept: KeptValue[];
    /** Models the file lists under another supplier than the product has here: not touched. */
    otherSupplier: { model: string; file: string }[];
  };
}

/** Records one change (the caller knows who, when and which request). */
export type ImportAudit = (entry: {
  entityType: 'supplier' | 'product';
  entityId: string;
  before: unknown;
  after: unknown;
}) => Promise<void>;

type Fields = Record<string, unknown>;
type Column = { column: string; toDb: (value: unknown) => SqlValue };

const text = (column: string): Column => ({ column, toDb: (v) => (v ?? null) as SqlValue });
const json = (column: string): Column => ({
  column,
  toDb: (v) => (v === null || v === undefined ? null : JSON.stringify(v)),
});
const price = (column: string): Column => ({ column, toDb: (v) => parseKrwPrice(v) });

const SUPPLIER_FIELDS: Record<string, Column> = { nameEn: text('name_en'), website: text('website') };
const PRODUCT_FIELDS: Record<string, Column> = {
  displayName: text('display_name'),
  description: text('description'),
  parameters: text('parameters'),
  purposes: json('purposes'),
  modality: text('modality'),
  contextWindow: text('context_window'),
  priceInputPer1M: price('price_input_micro_per_1m'),
  priceOutputPer1M: price('price_output_micro_per_1m'),
  residency: text('residency'),
  priceReference: json('price_reference'),
  suggestedDeployment: json('suggested_deployment'),
};

/** The file's product as the admin API shows a product: what is compared and stored as the base. */
function productFields(p: CatalogFileProduct): Fields {
  return {
    displayName: p.displayName,
    description: p.description ?? null,
    parameters: p.parameters ?? null,
    purposes: [...new Set(p.purposes)],
    modality: p.modality,
    contextWindow: p.contextWindow,
    priceInputPer1M: formatKrw(p.priceInputPer1M),
    priceOutputPer1M: formatKrw(p.priceOutputPer1M),
    residency: p.residency,
    priceReference: p.price ?? null,
    suggestedDeployment: p.suggestedDeployment ?? null,
  };
}

/**
 * JSON with sorted keys: equal values compare equal whatever order their keys were written in. Keys in
 * code-unit order: any fixed order does, and `localeCompare` would read ≈ 2 MB of the node binary's
 * collation data at every start (the shipped catalogue is imported then), resident from then on.
 */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}
const same = (a: unknown, b: unknown) => canonical(a) === canonical(b);

/** Three-way merge of one record: which fields to write, and which the operator's value keeps. */
function merge(current: Fields, base: Fields | null, incoming: Fields, overwrite: boolean) {
  const write: string[] = [];
  const kept: { field: string; current: unknown; file: unknown }[] = [];
  for (const [field, value] of Object.entries(incoming)) {
    if (same(current[field], value)) continue;
    if (overwrite || (base !== null && field in base && same(current[field], base[field]))) write.push(field);
    else kept.push({ field, current: current[field], file: value });
  }
  return { write, kept };
}

function setClause(fields: readonly string[], columns: Record<string, Column>, incoming: Fields) {
  return {
    sql: fields.map((f) => `${columns[f]!.column} = ?`).join(', '),
    params: fields.map((f) => columns[f]!.toDb(incoming[f])),
  };
}

const parseBase = (raw: unknown): Fields | null =>
  typeof raw === 'string' ? (JSON.parse(raw) as Fields) : null;

export async function importCatalog(
  tx: SqlExecutor,
  file: CatalogFile,
  options: ImportOptions,
  audit: ImportAudit,
): Promise<ImportReport> {
  const report: ImportReport = {
    dryRun: options.dryRun,
    suppliers: { created: [], updated: [], unchanged: 0 },
    products: { created: [], updated: [], unchanged: 0, kept: [], otherSupplier: [] },
  };
  const write = !options.dryRun;
  // Created rows are stamped a millisecond apart, so lists (ordered by creation) keep the file's order.
  const start = Date.now();
  let created = 0;
  const stamp = () => start + created++;
  const now = start;
  for (const supplier of file.suppliers) {
    const incoming: Fields = { nameEn: supplier.nameEn ?? null, website: supplier.website ?? null };
    const row = await tx.get<Record<string, unknown>>(
      `SELECT ${SUPPLIER_COLUMNS}, imported_fields FROM suppliers WHERE name = ?`,
      [supplier.name],
    );
    let supplierId: string;
    if (!row) {
      supplierId = newId('sup');
      report.suppliers.created.push(supplier.name);
      if (write) {
        await tx.run(
          `INSERT INTO suppliers (${SUPPLIER_COLUMNS}, imported_fields) VALUES (?, ?, ?, NULL, NULL, ?, 'active', ?, ?, ?)`,
          [
            supplierId,
            supplier.name,
            incoming.nameEn as SqlValue,
            incoming.website as SqlValue,
            stamp(),
            now,
            canonical(incoming),
          ],
        );
        await audit({
          entityType: 'supplier',
          entityId: supplierId,
          before: null,
          after: await supplierAt(tx, supplierId),
        });
      }
    } else {
      supplierId = row.id as string;
      const current = toSupplier(row);
      const { write: fields, kept } = merge(
        current as unknown as Fields,
        parseBase(row.imported_fields),
        incoming,
        options.overwrite,
      );
      for (const k of kept) report.products.kept.push({ supplier: supplier.name, ...k });
      if (fields.length > 0) report.suppliers.updated.push({ name: supplier.name, fields });
      else report.suppliers.unchanged++;
      if (write) {
        const { sql, params } = setClause(fields, SUPPLIER_FIELDS, incoming);
        await tx.run(
          `UPDATE suppliers SET ${sql ? `${sql}, updated_at = ?, ` : ''}imported_fields = ? WHERE id = ?`,
          [...params, ...(sql ? [now] : []), canonical(incoming), supplierId],
        );
        if (fields.length > 0)
          await audit({
            entityType: 'supplier',
            entityId: supplierId,
            before: current,
            after: await supplierAt(tx, supplierId),
          });
      }
    }
    for (const product of supplier.products)
      await importProduct(tx, supplierId, supplier.name, product, options, report, audit, now, stamp);
  }
  if (write && file.exchangeRates.length > 0) {
    await tx.run(
      `INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
      [EXCHANGE_RATES_SETTING, JSON.stringify(file.exchangeRates), now],
    );
  }
  return report;
}

/** The exchange rates of the last imported file, written back by export. */
export const EXCHANGE_RATES_SETTING = 'catalog_exchange_rates';

async function importProduct(
  tx: SqlExecutor,
  supplierId: string,
  supplierName: string,
  product: CatalogFileProduct,
  options: ImportOptions,
  report: ImportReport,
  audit: ImportAudit,
  now: number,
  stamp: () => number,
): Promise<void> {
  const write = !options.dryRun;
  const incoming = productFields(product);
  const row = await tx.get<Record<string, unknown>>(
    `SELECT ${PRODUCT_COLUMNS}, imported_fields FROM products WHERE model = ?`,
    [product.model],
  );
  if (!row) {
    report.products.created.push(product.model);
    if (!write) return;
    const id = newId('prd');
    const columns = Object.values(PRODUCT_FIELDS).map((c) => c.column);
    await tx.run(
      `INSERT INTO products (id, supplier_id, model, status, routing_strategy, imported_fields, created_at, updated_at,
         ${columns.join(', ')})
       VALUES (?, ?, ?, ?, 'weighted', ?, ?, ?, ${columns.map(() => '?').join(', ')})`,
      [
        id,
        supplierId,
        product.model,
        product.status ?? 'active',
        canonical(incoming),
        stamp(),
        now,
        ...Object.entries(PRODUCT_FIELDS).map(([field, c]) => c.toDb(incoming[field])),
      ],
    );
    await insertPriceRow(tx, {
      productId: id,
      effectiveFrom: now,
      inputMicroPer1M: parseKrwPrice(incoming.priceInputPer1M),
      outputMicroPer1M: parseKrwPrice(incoming.priceOutputPer1M),
      setBy: options.actorId ?? 'system',
      setAt: now,
    });
    await audit({ entityType: 'product', entityId: id, before: null, after: await productAt(tx, id) });
    return;
  }
  if (row.supplier_id !== supplierId) {
    report.products.otherSupplier.push({ model: product.model, file: supplierName });
    return;
  }
  const current = (await productsWithPrices(tx, [row], now))[0]!;
  const { write: fields, kept } = merge(
    current as unknown as Fields,
    parseBase(row.imported_fields),
    incoming,
    options.overwrite,
  );
  for (const k of kept) report.products.kept.push({ model: product.model, ...k });
  if (fields.length > 0) report.products.updated.push({ model: product.model, fields });
  else report.products.unchanged++;
  if (!write) return;
  const { sql, params } = setClause(fields, PRODUCT_FIELDS, incoming);
  await tx.run(
    `UPDATE products SET ${sql ? `${sql}, updated_at = ?, ` : ''}imported_fields = ? WHERE id = ?`,
    [...params, ...(sql ? [now] : []), canonical(incoming), current.id],
  );
  if (fields.includes('priceInputPer1M') || fields.includes('priceOutputPer1M'))
    await importedPrice(tx, current.id, fields, incoming, options.actorId ?? 'system', now);
  if (fields.length > 0)
    await audit({
      entityType: 'product',
      entityId: current.id,
      before: current,
      after: await productAt(tx, current.id),
    });
}

/**
 * An import that changes a price changes it now, as a PATCH without `pricesEffectiveFrom` does: a new
 * row of the schedule, the other price kept as in force, and the product row's columns set to both
 * (they may have missed a scheduled change that came due since the last write).
 */
async function importedPrice(
  tx: SqlExecutor,
  productId: string,
  fields: readonly string[],
  incoming: Fields,
  setBy: string,
  now: number,
): Promise<void> {
  const schedule = (await priceRows(tx, [productId])).get(productId) ?? [];
  const current = inForce(schedule, now);
  const row = await tx.get<Record<string, unknown>>(
    'SELECT CAST(price_input_micro_per_1m AS TEXT) AS price_in, CAST(price_output_micro_per_1m AS TEXT) AS price_out FROM products WHERE id = ?',
    [productId],
  );
  const inputMicroPer1M = fields.includes('priceInputPer1M')
    ? parseKrwPrice(incoming.priceInputPer1M)
    : (current?.inputMicroPer1M ?? BigInt(row!.price_in as string));
  const outputMicroPer1M = fields.includes('priceOutputPer1M')
    ? parseKrwPrice(incoming.priceOutputPer1M)
    : (current?.outputMicroPer1M ?? BigInt(row!.price_out as string));
  await tx.run(
    'UPDATE products SET price_input_micro_per_1m = ?, price_output_micro_per_1m = ? WHERE id = ?',
    [inputMicroPer1M, outputMicroPer1M, productId],
  );
  await insertPriceRow(tx, {
    productId,
    // Two changes in one millisecond are two changes, the later in force.
    effectiveFrom: current && current.effectiveFrom >= now ? current.effectiveFrom + 1 : now,
    inputMicroPer1M,
    outputMicroPer1M,
    setBy,
    setAt: now,
  });
}

async function supplierAt(tx: SqlExecutor, id: string) {
  return toSupplier(
    (await tx.get<Record<string, unknown>>(`SELECT ${SUPPLIER_COLUMNS} FROM suppliers WHERE id = ?`, [id]))!,
  );
}

async function productAt(tx: SqlExecutor, id: string) {
  const row = await tx.get<Record<string, unknown>>(`SELECT ${PRODUCT_COLUMNS} FROM products WHERE id = ?`, [
    id,
  ]);
  return (await productsWithPrices(tx, [row!]))[0]!;
}

/** The whole catalogue as a catalogue file (every supplier and product, any status). */
export async function exportCatalog(db: SqlExecutor, today = new Date()): Promise<Record<string, unknown>> {
  const suppliers = (
    await db.all<Record<string, unknown>>(`SELECT ${SUPPLIER_COLUMNS} FROM suppliers ORDER BY created_at, id`)
  ).map(toSupplier);
  // The prices in force when the file is written (a scheduled change is not in the file format).
  const products = await productsWithPrices(
    db,
    await db.all<Record<string, unknown>>(`SELECT ${PRODUCT_COLUMNS} FROM products ORDER BY created_at, id`),
  );
  const rates = await db.get<{ value: string }>('SELECT value FROM settings WHERE key = ?', [
    EXCHANGE_RATES_SETTING,
  ]);
  return {
    version: 1,
    generatedAt: kstDate(today.getTime()),
    exchangeRates: rates ? JSON.parse(rates.value) : [],
    suppliers: suppliers.map((s) => ({
      name: s.name,
      nameEn: s.nameEn,
      website: s.website,
      products: products
        .filter((p) => p.supplierId === s.id)
        .map((p) => ({
          model: p.model,
          displayName: p.displayName,
          description: p.description,
          parameters: p.parameters,
          purposes: p.purposes,
          modality: p.modality,
          contextWindow: p.contextWindow,
          priceInputPer1M: p.priceInputPer1M,
          priceOutputPer1M: p.priceOutputPer1M,
          residency: p.residency,
          ...(p.priceReference && { price: p.priceReference }),
          ...(p.suggestedDeployment && { suggestedDeployment: p.suggestedDeployment }),
          status: p.status,
        })),
    })),
  };
}
