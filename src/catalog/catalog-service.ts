import type { AuditTrail } from '../audit/audit-log.ts';
import { parseKrwPrice } from '../billing/money.ts';
import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from '../errors.ts';
import { type Database, isUniqueViolation, type SqlExecutor, type SqlValue } from '../storage/database.ts';
import { newId } from '../storage/ids.ts';
import { parseInput } from '../validation.ts';
import type { CatalogFile } from './catalog-file.ts';
import { type ImportAudit, type ImportOptions, type ImportReport, importCatalog } from './catalog-import.ts';
import {
  DEPLOYMENT_COLUMNS,
  type Deployment,
  deploymentInput,
  PRODUCT_COLUMNS,
  type Product,
  productInput,
  productPatchInput,
  SUPPLIER_COLUMNS,
  type Supplier,
  supplierInput,
  toDeployment,
  toSupplier,
  type UrlSetter,
} from './catalog-records.ts';
import { type ResealReport, resealCredentials } from './credential-reseal.ts';
import type { CredentialBox } from './credentials.ts';
import {
  effectiveTime,
  inForce,
  insertPriceRow,
  type PriceRow,
  type PriceView,
  parseEffectiveFrom,
  priceRows,
  productsWithPrices,
  toPriceView,
} from './product-prices.ts';

/** The settings row whose value changes with every catalog write. */
export const CATALOG_REVISION_SETTING = 'catalog_revision';

/** The audit entry of an import run as a whole. */
export interface ImportRunEntry {
  entityType: 'catalog';
  entityId: string;
  before: undefined;
  after: unknown;
}

/**
 * Where a deployment runs and its CSAP certificate decide which organisations' data may reach it
 * (guardrails/data-policies.ts): the operator's word, never a supplier admin's own claim.
 */
function operatorAttests(v: { residency?: unknown; csapCertified?: unknown }, setBy: UrlSetter): void {
  if (setBy === 'operator') return;
  if (v.residency !== undefined || v.csapCertified !== undefined)
    throw new ForbiddenError(
      '배포의 소재지(residency)와 CSAP 인증은 운영자만 정합니다. / Only the operator sets where a deployment runs (residency) and its CSAP certificate (csapCertified).',
    );
}

async function bumpRevision(tx: SqlExecutor): Promise<void> {
  await tx.run(
    `INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)
     ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
    [CATALOG_REVISION_SETTING, newId('rev'), Date.now()],
  );
}

/**
 * Builds `SET a = ?, b = ?` from the fields a PATCH actually carried, so an absent field keeps its
 * value and an explicit null clears it.
 */
function setClause(changes: Record<string, SqlValue | undefined>): { sql: string; params: SqlValue[] } {
  const entries = Object.entries(changes).filter(([, v]) => v !== undefined) as [string, SqlValue][];
  return { sql: entries.map(([column]) => `${column} = ?`).join(', '), params: entries.map(([, v]) => v) };
}

/** undefined stays undefined (not in the PATCH), null clears, anything else is stored as JSON. */
const jsonOrNull = (value: unknown) =>
  value === undefined ? undefined : value === null ? null : JSON.stringify(value);

export class CatalogService {
  /**
   * Called after every change and awaited before the change is answered, so that this replica's
   * routing already sees it when the caller hears it is done (other replicas poll).
   */
  onChange: () => Promise<void> | void = () => {};

  constructor(
    private readonly db: Database,
    private readonly credentials: CredentialBox,
  ) {}

  private readonly inspect = (sealed: string) => this.credentials.inspect(sealed);

  // --- suppliers -------------------------------------------------------------------------------

  async createSupplier(input: unknown, trail: AuditTrail): Promise<Supplier> {
    const v = parseInput(supplierInput, input);
    const now = Date.now();
    const id = newId('sup');
    return this.change(async (tx) => {
      await this.unique('name', 'a supplier with this name exists', () =>
        tx.run(`INSERT INTO suppliers (${SUPPLIER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, [
          id,
          v.name,
          v.nameEn ?? null,
          v.contactName ?? null,
          v.contactEmail ?? null,
          v.website ?? null,
          v.status ?? 'active',
          now,
          now,
        ]),
      );
      const after = await this.getSupplier(id, tx);
      await trail(tx, { entityId: id, after });
      return after;
    });
  }

  async listSuppliers(): Promise<Supplier[]> {
    return (await this.db.all(`SELECT ${SUPPLIER_COLUMNS} FROM suppliers ORDER BY created_at, id`)).map(
      toSupplier,
    );
  }

  async getSupplier(id: string, q: SqlExecutor = this.db): Promise<Supplier> {
    const row = await q.get(`SELECT ${SUPPLIER_COLUMNS} FROM suppliers WHERE id = ?`, [id]);
    if (!row) throw new NotFoundError('supplier', id);
    return toSupplier(row);
  }

  async updateSupplier(id: string, input: unknown, trail: AuditTrail): Promise<Supplier> {
    await this.getSupplier(id);
    const v = parseInput(supplierInput.partial(), input);
    const { sql, params } = setClause({
      name: v.name,
      name_en: v.nameEn,
      contact_name: v.contactName,
      contact_email: v.contactEmail,
      website: v.website,
      status: v.status,
    });
    return this.change(async (tx) => {
      const before = await this.getSupplier(id, tx);
      if (sql)
        await this.unique('name', 'a supplier with this name exists', () =>
          tx.run(`UPDATE suppliers SET ${sql}, updated_at = ? WHERE id = ?`, [...params, Date.now(), id]),
        );
      const after = await this.getSupplier(id, tx);
      await trail(tx, { entityId: id, before, after });
      return after;
    });
  }

  // --- products --------------------------------------------------------------------------------

  /** `setBy`: the audit log's actor id, kept on the product's first price row. */
  async createProduct(input: unknown, trail: AuditTrail, setBy: string): Promise<Product> {
    const v = parseInput(productInput, input);
    const now = Date.now();
    const id = newId('prd');
    return this.change(async (tx) => {
      await this.requireSupplier(v.supplierId, tx);
      if (v.fallbackModels) await this.requireModels('fallbackModels', v.fallbackModels, v.model, tx);
      await this.unique('model', `model "${v.model}" is already a product`, () =>
        tx.run(
          `INSERT INTO products (id, supplier_id, model, display_name, description, parameters, purposes, modality,
          context_window, price_input_micro_per_1m, price_output_micro_per_1m, residency, status, fallback_models,
          routing_strategy, price_reference, suggested_deployment, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          [
            id,
            v.supplierId,
            v.model,
            v.displayName,
            v.description ?? null,
            v.parameters ?? null,
            JSON.stringify([...new Set(v.purposes)]),
            v.modality,
            v.contextWindow,
            v.priceInputPer1M,
            v.priceOutputPer1M,
            v.residency,
            v.status ?? 'active',
            v.fallbackModels?.length ? JSON.stringify([...new Set(v.fallbackModels)]) : null,
            v.routingStrategy ?? 'weighted',
            v.priceReference ? JSON.stringify(v.priceReference) : null,
            v.suggestedDeployment ? JSON.stringify(v.suggestedDeployment) : null,
            now,
            now,
          ],
        ),
      );
      await insertPriceRow(tx, {
        productId: id,
        effectiveFrom: now,
        inputMicroPer1M: v.priceInputPer1M,
        outputMicroPer1M: v.priceOutputPer1M,
        setBy,
        setAt: now,
      });
      const after = await this.getProduct(id, tx);
      await trail(tx, { entityId: id, after });
      return after;
    });
  }

  async listProducts(filter: { supplierId?: string } = {}): Promise<Product[]> {
    const rows = filter.supplierId
      ? await this.db.all(
          `SELECT ${PRODUCT_COLUMNS} FROM products WHERE supplier_id = ? ORDER BY created_at, id`,
          [filter.supplierId],
        )
      : await this.db.all(`SELECT ${PRODUCT_COLUMNS} FROM products ORDER BY created_at, id`);
    return productsWithPrices(this.db, rows);
  }

  async getProduct(id: string, q: SqlExecutor = this.db): Promise<Product> {
    const row = await q.get(`SELECT ${PRODUCT_COLUMNS} FROM products WHERE id = ?`, [id]);
    if (!row) throw new NotFoundError('product', id);
    return (await productsWithPrices(q, [row]))[0]!;
  }

  /** Every price the product had, has and will have, oldest first (the table is append-only). */
  async listPrices(id: string): Promise<PriceView[]> {
    await this.getProduct(id);
    return ((await priceRows(this.db, [id])).get(id) ?? []).map(toPriceView);
  }

  /**
   * A PATCH. Prices given take effect at `pricesEffectiveFrom` (default now) as a new row of the
   * product's schedule; a price not given keeps the value in force at that time. The product row's
   * own price columns follow only a change in force at once: a scheduled one lives in product_prices
   * until it is due, and every reader takes the price in force from there.
   */
  async updateProduct(id: string, input: unknown, trail: AuditTrail, setBy: string): Promise<Product> {
    await this.getProduct(id);
    const v = parseInput(productPatchInput, input);
    const pricing = v.priceInputPer1M !== undefined || v.priceOutputPer1M !== undefined;
    if (v.pricesEffectiveFrom !== undefined && !pricing)
      throw ValidationError.of(
        'pricesEffectiveFrom',
        'priceInputPer1M 또는 priceOutputPer1M과 함께 보내야 합니다 / only with priceInputPer1M or priceOutputPer1M',
      );
    const requested =
      v.pricesEffectiveFrom === undefined ? undefined : parseEffectiveFrom(v.pricesEffectiveFrom);
    const now = Date.now();
    const effectiveFrom = pricing ? effectiveTime(requested, now) : now;
    const atOnce = effectiveFrom === now;
    const { sql, params } = setClause({
      supplier_id: v.supplierId,
      model: v.model,
      display_name: v.displayName,
      description: v.description,
      parameters: v.parameters,
      purposes: v.purposes ? JSON.stringify([...new Set(v.purposes)]) : undefined,
      modality: v.modality,
      context_window: v.contextWindow,
      price_input_micro_per_1m: atOnce ? v.priceInputPer1M : undefined,
      price_output_micro_per_1m: atOnce ? v.priceOutputPer1M : undefined,
      residency: v.residency,
      status: v.status,
      fallback_models:
        v.fallbackModels === undefined
          ? undefined
          : v.fallbackModels.length
            ? JSON.stringify([...new Set(v.fallbackModels)])
            : null,
      routing_strategy: v.routingStrategy,
      price_reference: jsonOrNull(v.priceReference),
      suggested_deployment: jsonOrNull(v.suggestedDeployment),
    });
    return this.change(async (tx) => {
      const before = await this.getProduct(id, tx);
      if (v.supplierId !== undefined) await this.requireSupplier(v.supplierId, tx);
      if (v.fallbackModels)
        await this.requireModels('fallbackModels', v.fallbackModels, v.model ?? before.model, tx);
      if (pricing) await this.addPrice(tx, id, before, v, effectiveFrom, atOnce, setBy, now);
      if (sql)
        await this.unique('model', `model "${v.model}" is already a product`, () =>
          tx.run(`UPDATE products SET ${sql}, updated_at = ? WHERE id = ?`, [...params, Date.now(), id]),
        );
      const after = await this.getProduct(id, tx);
      await trail(tx, { entityId: id, before, after });
      return after;
    });
  }

  private async addPrice(
    tx: SqlExecutor,
    productId: string,
    before: Product,
    v: { priceInputPer1M?: bigint | undefined; priceOutputPer1M?: bigint | undefined },
    requestedFrom: number,
    atOnce: boolean,
    setBy: string,
    now: number,
  ): Promise<void> {
    const schedule = (await priceRows(tx, [productId])).get(productId) ?? [];
    let effectiveFrom = requestedFrom;
    if (atOnce) {
      // Two changes "now" in one millisecond are two changes, the later in force: not a conflict.
      const current = inForce(schedule, now);
      if (current && current.effectiveFrom >= effectiveFrom) effectiveFrom = current.effectiveFrom + 1;
    } else if (schedule.some((row) => row.effectiveFrom === effectiveFrom)) {
      throw new ConflictError(
        'pricesEffectiveFrom',
        // The router puts the Korean first ("이미 존재합니다").
        `a price change is already scheduled for ${new Date(effectiveFrom).toISOString()}: prices are never rewritten; schedule another time`,
      );
    }
    // What the PATCH leaves out is what would have been in force then (the product row's own price
    // for a product without history).
    const base: Pick<PriceRow, 'inputMicroPer1M' | 'outputMicroPer1M'> = inForce(schedule, effectiveFrom) ?? {
      inputMicroPer1M: parseKrwPrice(before.priceInputPer1M),
      outputMicroPer1M: parseKrwPrice(before.priceOutputPer1M),
    };
    await this.unique('pricesEffectiveFrom', 'a price change is already scheduled for this time', () =>
      insertPriceRow(tx, {
        productId,
        effectiveFrom,
        inputMicroPer1M: v.priceInputPer1M ?? base.inputMicroPer1M,
        outputMicroPer1M: v.priceOutputPer1M ?? base.outputMicroPer1M,
        setBy,
        setAt: now,
      }),
    );
  }

  // --- deployments -----------------------------------------------------------------------------

  async createDeployment(input: unknown, trail: AuditTrail, setBy: UrlSetter): Promise<Deployment> {
    const v = parseInput(deploymentInput, input);
    operatorAttests(v, setBy);
    const now = Date.now();
    const id = newId('dep');
    return this.change(async (tx) => {
      const product = await this.getProduct(v.productId, tx).catch((error) => {
        if (error instanceof NotFoundError) throw ValidationError.of('productId', 'no such product');
        throw error;
      });
      await tx.run(
        `INSERT INTO deployments (${DEPLOYMENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [
          id,
          v.productId,
          v.adapter,
          v.baseUrl,
          v.upstreamModel ?? product.model,
          v.apiKey ? this.credentials.seal(v.apiKey) : null,
          v.weight ?? 1,
          v.priority ?? 0,
          v.status ?? 'active',
          now,
          now,
          v.maxConcurrent ?? null,
          setBy,
          v.residency ?? null,
          v.csapCertified ? 1 : 0,
        ],
      );
      const after = await this.getDeployment(id, tx);
      await trail(tx, { entityId: id, after });
      return after;
    });
  }

  /** `supplierIds` keeps only the deployments of those suppliers' products (a supplier admin's view). */
  async listDeployments(
    filter: { productId?: string; supplierIds?: readonly string[] } = {},
  ): Promise<Deployment[]> {
    const where = ["status <> 'deleted'"];
    const params: SqlValue[] = [];
    if (filter.productId) {
      where.push('product_id = ?');
      params.push(filter.productId);
    }
    if (filter.supplierIds) {
      if (filter.supplierIds.length === 0) return [];
      where.push(
        `product_id IN (SELECT id FROM products WHERE supplier_id IN (${filter.supplierIds.map(() => '?').join(', ')}))`,
      );
      params.push(...filter.supplierIds);
    }
    const rows = await this.db.all(
      `SELECT ${DEPLOYMENT_COLUMNS} FROM deployments WHERE ${where.join(' AND ')} ORDER BY created_at, id`,
      params,
    );
    return rows.map((r) => toDeployment(r, this.inspect));
  }

  /** The supplier whose product this is; undefined when there is no such product. */
  async supplierOfProduct(productId: string): Promise<string | undefined> {
    const row = await this.db.get<{ supplier_id: string }>('SELECT supplier_id FROM products WHERE id = ?', [
      productId,
    ]);
    return row?.supplier_id;
  }

  /** Every product of these suppliers, any status: whose usage a supplier admin sees. */
  async productIdsOf(supplierIds: readonly string[]): Promise<string[]> {
    if (supplierIds.length === 0) return [];
    const rows = await this.db.all<{ id: string }>(
      `SELECT id FROM products WHERE supplier_id IN (${supplierIds.map(() => '?').join(', ')})`,
      [...supplierIds],
    );
    return rows.map((r) => r.id);
  }

  async getDeployment(id: string, q: SqlExecutor = this.db): Promise<Deployment> {
    const row = await q.get(
      `SELECT ${DEPLOYMENT_COLUMNS} FROM deployments WHERE id = ? AND status <> 'deleted'`,
      [id],
    );
    if (!row) throw new NotFoundError('deployment', id);
    return toDeployment(row, this.inspect);
  }

  async updateDeployment(
    id: string,
    input: unknown,
    trail: AuditTrail,
    setBy: UrlSetter,
  ): Promise<Deployment> {
    await this.getDeployment(id);
    const v = parseInput(deploymentInput.omit({ productId: true }).partial(), input);
    operatorAttests(v, setBy);
    const { sql, params } = setClause({
      adapter: v.adapter,
      base_url: v.baseUrl,
      base_url_set_by: v.baseUrl === undefined ? undefined : setBy,
      upstream_model: v.upstreamModel,
      api_key_sealed:
        v.apiKey === undefined ? undefined : v.apiKey === null ? null : this.credentials.seal(v.apiKey),
      weight: v.weight,
      priority: v.priority,
      status: v.status,
      max_concurrent: v.maxConcurrent,
      residency: v.residency,
      csap_certified: v.csapCertified === undefined ? undefined : v.csapCertified ? 1 : 0,
    });
    return this.change(async (tx) => {
      const before = await this.getDeployment(id, tx);
      if (sql)
        await tx.run(`UPDATE deployments SET ${sql}, updated_at = ? WHERE id = ?`, [
          ...params,
          Date.now(),
          id,
        ]);
      const after = await this.getDeployment(id, tx);
      await trail(tx, { entityId: id, before, after });
      return after;
    });
  }

  /**
   * Soft delete: usage records keep naming the deployment that served them, and other replicas
   * notice the change through `updated_at` like any other edit.
   */
  async deleteDeployment(id: string, trail: AuditTrail): Promise<void> {
    await this.change(async (tx) => {
      const before = await this.getDeployment(id, tx);
      await tx.run(`UPDATE deployments SET status = 'deleted', updated_at = ? WHERE id = ?`, [
        Date.now(),
        id,
      ]);
      await trail(tx, { entityId: id, before });
    });
  }

  /**
   * A catalogue file into the catalogue, in one transaction (see catalog-import.ts) with an audit
   * entry per supplier and product it changes and one for the run itself, even when it changed nothing:
   * which file, and what it left to the operator.
   */
  async importCatalog(
    file: CatalogFile,
    options: ImportOptions,
    audit: (entry: Parameters<ImportAudit>[0] | ImportRunEntry, tx: SqlExecutor) => Promise<void>,
  ): Promise<ImportReport> {
    if (options.dryRun)
      return this.db.transaction((tx) => importCatalog(tx, file, options, (entry) => audit(entry, tx)));
    return this.change(async (tx) => {
      const report = await importCatalog(tx, file, options, (entry) => audit(entry, tx));
      await audit(
        {
          entityType: 'catalog',
          entityId: `catalog file of ${file.generatedAt}`,
          before: undefined,
          after: {
            overwrite: options.overwrite,
            suppliers: { created: report.suppliers.created.length, updated: report.suppliers.updated.length },
            products: {
              created: report.products.created.length,
              updated: report.products.updated.length,
              kept: report.products.kept.length,
            },
          },
        },
        tx,
      );
      return report;
    });
  }

  /** Seals every stored credential under the current secret key (see credential-reseal.ts). */
  async resealCredentials(trail: AuditTrail): Promise<ResealReport> {
    const report = await resealCredentials(this.db, this.credentials, trail);
    // The plaintext is the same: only the credential's state as the admin API shows it has changed.
    if (report.resealed.length > 0) await this.change(async () => {});
    return report;
  }

  /**
   * Every write goes through here: `write` (with its audit entry) and a new revision in one
   * transaction — the revision tells the other replicas' snapshots to reload (a random value, not a
   * timestamp, so two edits in one millisecond are never mistaken for one) — then, once committed,
   * this replica's snapshot reloads before the write is answered. Inside `write` every query goes
   * through `tx`: on SQLite any other query waits for the transaction to end.
   */
  private async change<T>(write: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    const result = await this.db.transaction(async (tx) => {
      const written = await write(tx);
      await bumpRevision(tx);
      return written;
    });
    await this.onChange();
    return result;
  }

  /** Every id names a product (any status: one inactive today may be back tomorrow), none is `self`. */
  async requireModels(
    field: string,
    models: readonly string[],
    self?: string,
    q: SqlExecutor = this.db,
  ): Promise<void> {
    for (const [i, model] of models.entries()) {
      if (model === self) throw ValidationError.of(`${field}.${i}`, 'a product cannot fall back to itself');
      const row = await q.get('SELECT id FROM products WHERE model = ?', [model]);
      if (!row) throw ValidationError.of(`${field}.${i}`, `no product has model "${model}"`);
    }
  }

  private async requireSupplier(id: string, q: SqlExecutor): Promise<void> {
    const row = await q.get('SELECT id FROM suppliers WHERE id = ?', [id]);
    if (!row) throw ValidationError.of('supplierId', 'no such supplier');
  }

  private async unique(field: string, message: string, write: () => Promise<unknown>): Promise<void> {
    try {
      await write();
    } catch (error) {
      if (isUniqueViolation(error)) throw new ConflictError(field, message);
      throw error;
    }
  }
}
