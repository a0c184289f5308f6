import { ConflictError, NotFoundError, ValidationError } from '../errors.ts';
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
  SUPPLIER_COLUMNS,
  type Supplier,
  supplierInput,
  toDeployment,
  toProduct,
  toSupplier,
} from './catalog-records.ts';
import { type ResealReport, resealCredentials } from './credential-reseal.ts';
import type { CredentialBox } from './credentials.ts';

/** The settings row whose value changes with every catalog write. */
export const CATALOG_REVISION_SETTING = 'catalog_revision';

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

  async createSupplier(input: unknown): Promise<Supplier> {
    const v = parseInput(supplierInput, input);
    const now = Date.now();
    const id = newId('sup');
    await this.unique('name', 'a supplier with this name exists', () =>
      this.db.run(`INSERT INTO suppliers (${SUPPLIER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, [
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
    return this.getSupplier(id);
  }

  async listSuppliers(): Promise<Supplier[]> {
    return (await this.db.all(`SELECT ${SUPPLIER_COLUMNS} FROM suppliers ORDER BY created_at, id`)).map(
      toSupplier,
    );
  }

  async getSupplier(id: string): Promise<Supplier> {
    const row = await this.db.get(`SELECT ${SUPPLIER_COLUMNS} FROM suppliers WHERE id = ?`, [id]);
    if (!row) throw new NotFoundError('supplier', id);
    return toSupplier(row);
  }

  async updateSupplier(id: string, input: unknown): Promise<Supplier> {
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
    if (sql) {
      await this.unique('name', 'a supplier with this name exists', () =>
        this.db.run(`UPDATE suppliers SET ${sql}, updated_at = ? WHERE id = ?`, [...params, Date.now(), id]),
      );
      await this.changed();
    }
    return this.getSupplier(id);
  }

  // --- products --------------------------------------------------------------------------------

  async createProduct(input: unknown): Promise<Product> {
    const v = parseInput(productInput, input);
    await this.requireSupplier(v.supplierId);
    if (v.fallbackModels) await this.requireModels('fallbackModels', v.fallbackModels, v.model);
    const now = Date.now();
    const id = newId('prd');
    await this.unique('model', `model "${v.model}" is already a product`, () =>
      this.db.run(
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
    await this.changed();
    return this.getProduct(id);
  }

  async listProducts(filter: { supplierId?: string } = {}): Promise<Product[]> {
    const rows = filter.supplierId
      ? await this.db.all(
          `SELECT ${PRODUCT_COLUMNS} FROM products WHERE supplier_id = ? ORDER BY created_at, id`,
          [filter.supplierId],
        )
      : await this.db.all(`SELECT ${PRODUCT_COLUMNS} FROM products ORDER BY created_at, id`);
    return rows.map(toProduct);
  }

  async getProduct(id: string): Promise<Product> {
    const row = await this.db.get(`SELECT ${PRODUCT_COLUMNS} FROM products WHERE id = ?`, [id]);
    if (!row) throw new NotFoundError('product', id);
    return toProduct(row);
  }

  async updateProduct(id: string, input: unknown): Promise<Product> {
    const current = await this.getProduct(id);
    const v = parseInput(productInput.partial(), input);
    if (v.supplierId !== undefined) await this.requireSupplier(v.supplierId);
    if (v.fallbackModels)
      await this.requireModels('fallbackModels', v.fallbackModels, v.model ?? current.model);
    const { sql, params } = setClause({
      supplier_id: v.supplierId,
      model: v.model,
      display_name: v.displayName,
      description: v.description,
      parameters: v.parameters,
      purposes: v.purposes ? JSON.stringify([...new Set(v.purposes)]) : undefined,
      modality: v.modality,
      context_window: v.contextWindow,
      price_input_micro_per_1m: v.priceInputPer1M,
      price_output_micro_per_1m: v.priceOutputPer1M,
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
    if (sql) {
      await this.unique('model', `model "${v.model}" is already a product`, () =>
        this.db.run(`UPDATE products SET ${sql}, updated_at = ? WHERE id = ?`, [...params, Date.now(), id]),
      );
      await this.changed();
    }
    return this.getProduct(id);
  }

  // --- deployments -----------------------------------------------------------------------------

  async createDeployment(input: unknown): Promise<Deployment> {
    const v = parseInput(deploymentInput, input);
    const product = await this.getProduct(v.productId).catch((error) => {
      if (error instanceof NotFoundError) throw ValidationError.of('productId', 'no such product');
      throw error;
    });
    const now = Date.now();
    const id = newId('dep');
    await this.db.run(
      `INSERT INTO deployments (${DEPLOYMENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
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
      ],
    );
    await this.changed();
    return this.getDeployment(id);
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

  async getDeployment(id: string): Promise<Deployment> {
    const row = await this.db.get(
      `SELECT ${DEPLOYMENT_COLUMNS} FROM deployments WHERE id = ? AND status <> 'deleted'`,
      [id],
    );
    if (!row) throw new NotFoundError('deployment', id);
    return toDeployment(row, this.inspect);
  }

  async updateDeployment(id: string, input: unknown): Promise<Deployment> {
    await this.getDeployment(id);
    const v = parseInput(deploymentInput.omit({ productId: true }).partial(), input);
    const { sql, params } = setClause({
      adapter: v.adapter,
      base_url: v.baseUrl,
      upstream_model: v.upstreamModel,
      api_key_sealed:
        v.apiKey === undefined ? undefined : v.apiKey === null ? null : this.credentials.seal(v.apiKey),
      weight: v.weight,
      priority: v.priority,
      status: v.status,
      max_concurrent: v.maxConcurrent,
    });
    if (sql) {
      await this.db.run(`UPDATE deployments SET ${sql}, updated_at = ? WHERE id = ?`, [
        ...params,
        Date.now(),
        id,
      ]);
      await this.changed();
    }
    return this.getDeployment(id);
  }

  /**
   * Soft delete: usage records keep naming the deployment that served them, and other replicas
   * notice the change through `updated_at` like any other edit.
   */
  async deleteDeployment(id: string): Promise<void> {
    await this.getDeployment(id);
    await this.db.run(`UPDATE deployments SET status = 'deleted', updated_at = ? WHERE id = ?`, [
      Date.now(),
      id,
    ]);
    await this.changed();
  }

  /** A catalogue file into the catalogue, in one transaction (see catalog-import.ts). */
  async importCatalog(
    file: CatalogFile,
    options: ImportOptions,
    audit: (entry: Parameters<ImportAudit>[0], tx: SqlExecutor) => Promise<void>,
  ): Promise<ImportReport> {
    const report = await this.db.transaction((tx) =>
      importCatalog(tx, file, options, (entry) => audit(entry, tx)),
    );
    if (!options.dryRun) await this.changed();
    return report;
  }

  /** Seals every stored credential under the current secret key (see credential-reseal.ts). */
  async resealCredentials(
    onResealed: (deploymentId: string, fromKeyId: string | null, toKeyId: string) => Promise<void>,
  ): Promise<ResealReport> {
    const report = await resealCredentials(this.db, this.credentials, onResealed);
    if (report.resealed.length > 0) await this.changed();
    return report;
  }

  /**
   * Every write ends here: a new revision tells the other replicas' snapshots to reload (a random
   * value, not a timestamp, so two edits in one millisecond are never mistaken for one), then this
   * replica's snapshot reloads before the write is answered.
   */
  private async changed(): Promise<void> {
    await this.db.run(
      `INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
      [CATALOG_REVISION_SETTING, newId('rev'), Date.now()],
    );
    await this.onChange();
  }

  /** Every id names a product (any status: one inactive today may be back tomorrow), none is `self`. */
  async requireModels(field: string, models: readonly string[], self?: string): Promise<void> {
    for (const [i, model] of models.entries()) {
      if (model === self) throw ValidationError.of(`${field}.${i}`, 'a product cannot fall back to itself');
      const row = await this.db.get('SELECT id FROM products WHERE model = ?', [model]);
      if (!row) throw ValidationError.of(`${field}.${i}`, `no product has model "${model}"`);
    }
  }

  private async requireSupplier(id: string): Promise<void> {
    const row = await this.db.get('SELECT id FROM suppliers WHERE id = ?', [id]);
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
