import { formatKrw, type MicroKrw, type TokenPrices } from '../billing/money.ts';
import { ValidationError } from '../errors.ts';
import { kstDateStart } from '../kst.ts';
import type { SqlExecutor } from '../storage/database.ts';
import { type Product, toProduct } from './catalog-records.ts';

/**
 * A product's effective-dated prices (table `product_prices`, docs/billing.md "Prices in force"). A
 * row is in force from its `effectiveFrom` until the next row's; rows are never changed, so the
 * schedule is also the history. Everything here but the two queries is pure, for unit tests.
 */
export interface PriceRow {
  productId: string;
  effectiveFrom: number;
  inputMicroPer1M: MicroKrw;
  outputMicroPer1M: MicroKrw;
  /** The audit log's actor id of whoever set it (`system`, `migration:016` for the backfill). */
  setBy: string;
  setAt: number;
}

/** What `GET /admin/v1/products/:id/prices` lists. */
export interface PriceView {
  effectiveFrom: string;
  priceInputPer1M: string;
  priceOutputPer1M: string;
  setBy: string;
  setAt: string;
}

/** The change a product read announces: the next row to come into force. */
export interface PriceChangeView {
  effectiveFrom: string;
  priceInputPer1M: string;
  priceOutputPer1M: string;
}

/**
 * How far in the past a requested effective time may be and still mean "now": the caller's clock and
 * the request's flight. Beyond it the change is refused, because calls since then were charged at the
 * old price and the history must say so.
 */
export const CLOCK_TOLERANCE_MS = 5_000;

const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/;
const FIELD = 'pricesEffectiveFrom';

/**
 * `2026-12-01` (midnight KST, the day a Korean price list names) or an ISO 8601 instant with its
 * offset (`2026-12-01T09:00:00+09:00`, `…Z`): a time without an offset would depend on the server's
 * zone, so it is refused.
 */
export function parseEffectiveFrom(value: unknown): number {
  if (typeof value !== 'string')
    throw ValidationError.of(
      FIELD,
      '날짜(YYYY-MM-DD, KST) 또는 ISO 8601 시각이어야 합니다 / expected a date (YYYY-MM-DD, KST) or an ISO 8601 instant',
    );
  if (/^\d{4}-\d{2}-\d{2}$/.test(value)) {
    const ms = kstDateStart(value);
    if (Number.isNaN(ms)) throw ValidationError.of(FIELD, '없는 날짜입니다 / not a calendar date');
    return ms;
  }
  const ms = ISO_INSTANT.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(ms))
    throw ValidationError.of(
      FIELD,
      '날짜(YYYY-MM-DD, KST) 또는 시간대가 있는 ISO 8601 시각이어야 합니다 / expected a date (YYYY-MM-DD, KST) or an ISO 8601 instant with its offset',
    );
  return ms;
}

/**
 * When a change asked for at `requested` (undefined: now) takes effect: never before `now`, since what
 * was charged until now stays charged at the price then in force. A time further back than the clock
 * tolerance is an error, not a silent "now".
 */
export function effectiveTime(requested: number | undefined, now: number): number {
  if (requested === undefined) return now;
  if (requested < now - CLOCK_TOLERANCE_MS)
    throw ValidationError.of(
      FIELD,
      `과거 시각에는 가격을 바꿀 수 없습니다: 이미 청구된 호출은 다시 계산되지 않습니다 / a price change cannot take effect in the past (${new Date(requested).toISOString()}): calls already charged are never re-priced`,
    );
  return Math.max(requested, now);
}

/** The row in force at `at` (rows sorted by `effectiveFrom`), if any. */
export function inForce(rows: readonly PriceRow[], at: number): PriceRow | undefined {
  let found: PriceRow | undefined;
  for (const row of rows) {
    if (row.effectiveFrom > at) break;
    found = row;
  }
  return found;
}

/** The first row that comes into force after `at`. */
export function nextChange(rows: readonly PriceRow[], at: number): PriceRow | undefined {
  return rows.find((row) => row.effectiveFrom > at);
}

export const tokenPrices = (row: PriceRow): TokenPrices => ({
  inputMicroPer1M: row.inputMicroPer1M,
  outputMicroPer1M: row.outputMicroPer1M,
});

export function toPriceView(row: PriceRow): PriceView {
  return {
    effectiveFrom: new Date(row.effectiveFrom).toISOString(),
    priceInputPer1M: formatKrw(row.inputMicroPer1M),
    priceOutputPer1M: formatKrw(row.outputMicroPer1M),
    setBy: row.setBy,
    setAt: new Date(row.setAt).toISOString(),
  };
}

export function toPriceChangeView(row: PriceRow): PriceChangeView {
  return {
    effectiveFrom: new Date(row.effectiveFrom).toISOString(),
    priceInputPer1M: formatKrw(row.inputMicroPer1M),
    priceOutputPer1M: formatKrw(row.outputMicroPer1M),
  };
}

const SELECT = `SELECT product_id, effective_from, CAST(price_input_micro_per_1m AS TEXT) AS price_in,
  CAST(price_output_micro_per_1m AS TEXT) AS price_out, set_by, set_at FROM product_prices`;

/** Each product's rows in effective order; all products' when `productIds` is undefined. */
export async function priceRows(
  q: SqlExecutor,
  productIds?: readonly string[],
): Promise<Map<string, PriceRow[]>> {
  const byProduct = new Map<string, PriceRow[]>();
  if (productIds?.length === 0) return byProduct;
  const rows = await q.all<Record<string, unknown>>(
    productIds
      ? `${SELECT} WHERE product_id IN (${productIds.map(() => '?').join(', ')}) ORDER BY product_id, effective_from`
      : `${SELECT} ORDER BY product_id, effective_from`,
    productIds ? [...productIds] : [],
  );
  for (const r of rows) {
    const row: PriceRow = {
      productId: r.product_id as string,
      effectiveFrom: Number(r.effective_from),
      inputMicroPer1M: BigInt(r.price_in as string),
      outputMicroPer1M: BigInt(r.price_out as string),
      setBy: r.set_by as string,
      setAt: Number(r.set_at),
    };
    const list = byProduct.get(row.productId);
    if (list) list.push(row);
    else byProduct.set(row.productId, [row]);
  }
  return byProduct;
}

/** Appends one row; a second row for the same product and instant is a unique violation. */
export async function insertPriceRow(tx: SqlExecutor, row: PriceRow): Promise<void> {
  await tx.run(
    `INSERT INTO product_prices (product_id, effective_from, price_input_micro_per_1m, price_output_micro_per_1m,
       set_by, set_at) VALUES (?, ?, ?, ?, ?, ?)`,
    [row.productId, row.effectiveFrom, row.inputMicroPer1M, row.outputMicroPer1M, row.setBy, row.setAt],
  );
}

/** Product rows (PRODUCT_COLUMNS) as products with the price in force at `now` and the next change. */
export async function productsWithPrices(
  q: SqlExecutor,
  rows: readonly Record<string, unknown>[],
  now = Date.now(),
): Promise<Product[]> {
  if (rows.length === 0) return [];
  const schedules = await priceRows(q, rows.length === 1 ? [rows[0]!.id as string] : undefined);
  return rows.map((r) => {
    const schedule = schedules.get(r.id as string) ?? [];
    return toProduct(r, { inForce: inForce(schedule, now), next: nextChange(schedule, now) });
  });
}
