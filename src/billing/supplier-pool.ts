import { z } from 'zod';
import type { AuditTrail } from '../audit/audit-log.ts';
import { ConflictError, NotFoundError, ValidationError } from '../errors.ts';
import { type Database, isUniqueViolation, type SqlExecutor } from '../storage/database.ts';
import { newId } from '../storage/ids.ts';
import { parseInput } from '../validation.ts';

/** What an agreement may pay for (docs/billing.md); API usage is what the hub meters itself. */
export const COST_CATEGORIES = ['api_usage', 'consulting', 'poc', 'fine_tuning', 'infrastructure'] as const;
export type CostCategory = (typeof COST_CATEGORIES)[number];

export const costCategoriesInput = z
  .array(z.enum(COST_CATEGORIES))
  .min(1)
  .max(COST_CATEGORIES.length)
  .refine((list) => new Set(list).size === list.length, { message: 'each category once' });

const offer = {
  summary: z.string().trim().max(2000).nullable().optional(),
  /** The supplier's own API products it offers under this programme. */
  productIds: z.array(z.string().min(1).max(128)).max(200),
  /** What it offers beside API calls: consulting, a PoC, fine-tuning, infrastructure. */
  services: z
    .array(
      z.strictObject({
        name: z.string().trim().min(1).max(200),
        description: z.string().trim().max(5000).nullable().optional(),
        costCategories: costCategoriesInput,
      }),
    )
    .max(50),
};

const poolEntryInput = z.strictObject({
  supplierId: z.string().min(1).max(64),
  summary: offer.summary,
  productIds: offer.productIds.default([]),
  services: offer.services.default([]),
});

const poolEntryUpdate = z.strictObject({
  summary: offer.summary,
  productIds: offer.productIds.optional(),
  services: offer.services.optional(),
});

const offersNothing = () => ValidationError.of('productIds', 'offer at least one product or service');

export interface PoolService {
  name: string;
  description: string | null;
  costCategories: CostCategory[];
}

export interface PoolEntry {
  id: string;
  programmeId: string;
  supplierId: string;
  supplierName: string;
  summary: string | null;
  productIds: string[];
  services: PoolService[];
  createdAt: string;
  updatedAt: string;
}

const COLUMNS = `e.id, e.programme_id, e.supplier_id, s.name AS supplier_name, e.summary, e.product_ids, e.services,
  e.created_at, e.updated_at`;
const FROM = 'supplier_pool_entries e JOIN suppliers s ON s.id = e.supplier_id';

function toEntry(r: Record<string, unknown>): PoolEntry {
  return {
    id: r.id as string,
    programmeId: r.programme_id as string,
    supplierId: r.supplier_id as string,
    supplierName: r.supplier_name as string,
    summary: (r.summary as string | null) ?? null,
    productIds: JSON.parse(r.product_ids as string) as string[],
    services: JSON.parse(r.services as string) as PoolService[],
    createdAt: new Date(Number(r.created_at)).toISOString(),
    updatedAt: new Date(Number(r.updated_at)).toISOString(),
  };
}

/**
 * A programme's year-round supplier pool (공급기업 Pool): suppliers join it with what they offer, and
 * organisations pick one of them (matching, 매칭) when they apply. The pool is public, like the
 * catalogue it points into.
 */
export class SupplierPoolService {
  constructor(private readonly db: Database) {}

  async join(programmeId: string, input: unknown, trail: AuditTrail): Promise<PoolEntry> {
    const v = parseInput(poolEntryInput, input);
    if (v.productIds.length + v.services.length === 0) throw offersNothing();
    const id = newId('pool');
    const now = Date.now();
    return this.db.transaction(async (tx) => {
      const programme = await tx.get<{ eligible_products: string | null; eligible_suppliers: string | null }>(
        'SELECT eligible_products, eligible_suppliers FROM programmes WHERE id = ?',
        [programmeId],
      );
      if (!programme) throw new NotFoundError('programme', programmeId);
      if (!(await tx.get('SELECT 1 AS ok FROM suppliers WHERE id = ?', [v.supplierId])))
        throw ValidationError.of('supplierId', `no supplier ${v.supplierId}`);
      // A supplier whose products the vouchers never pay for could only be matched to no effect.
      if (
        programme.eligible_suppliers &&
        !(JSON.parse(programme.eligible_suppliers) as string[]).includes(v.supplierId)
      )
        throw ValidationError.of(
          'supplierId',
          `the programme's vouchers do not pay for supplier ${v.supplierId}`,
        );
      await requireOwnProducts(tx, v.supplierId, v.productIds, programme.eligible_products);
      try {
        await tx.run(
          `INSERT INTO supplier_pool_entries (id, programme_id, supplier_id, summary, product_ids, services, created_at,
             updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
          [
            id,
            programmeId,
            v.supplierId,
            v.summary ?? null,
            JSON.stringify([...new Set(v.productIds)]),
            JSON.stringify(v.services.map((s) => ({ ...s, description: s.description ?? null }))),
            now,
            now,
          ],
        );
      } catch (error) {
        if (isUniqueViolation(error))
          throw new ConflictError('supplierId', 'the supplier is in this programme’s pool already');
        throw error;
      }
      const after = await this.get(id, tx);
      await trail(tx, { entityId: id, after });
      return after;
    });
  }

  /** What the supplier offers changes all year; an application keeps naming the same entry. */
  async update(id: string, input: unknown, trail: AuditTrail): Promise<PoolEntry> {
    const v = parseInput(poolEntryUpdate, input);
    return this.db.transaction(async (tx) => {
      const before = await this.get(id, tx);
      const productIds = v.productIds === undefined ? before.productIds : [...new Set(v.productIds)];
      const services =
        v.services?.map((s) => ({ ...s, description: s.description ?? null })) ?? before.services;
      if (productIds.length + services.length === 0) throw offersNothing();
      if (v.productIds !== undefined) {
        const programme = await tx.get<{ eligible_products: string | null }>(
          'SELECT eligible_products FROM programmes WHERE id = ?',
          [before.programmeId],
        );
        await requireOwnProducts(tx, before.supplierId, v.productIds, programme?.eligible_products ?? null);
      }
      await tx.run(
        'UPDATE supplier_pool_entries SET summary = ?, product_ids = ?, services = ?, updated_at = ? WHERE id = ?',
        [
          v.summary === undefined ? before.summary : v.summary,
          JSON.stringify(productIds),
          JSON.stringify(services),
          Date.now(),
          id,
        ],
      );
      const after = await this.get(id, tx);
      await trail(tx, { entityId: id, before, after });
      return after;
    });
  }

  async get(id: string, db: SqlExecutor = this.db): Promise<PoolEntry> {
    const row = await db.get(`SELECT ${COLUMNS} FROM ${FROM} WHERE e.id = ?`, [id]);
    if (!row) throw new NotFoundError('pool entry', id);
    return toEntry(row);
  }

  async list(programmeId: string): Promise<PoolEntry[]> {
    if (!(await this.db.get('SELECT 1 AS ok FROM programmes WHERE id = ?', [programmeId])))
      throw new NotFoundError('programme', programmeId);
    const rows = await this.db.all(
      `SELECT ${COLUMNS} FROM ${FROM} WHERE e.programme_id = ? ORDER BY s.name, e.id`,
      [programmeId],
    );
    return rows.map(toEntry);
  }
}

/** Offered products must be the supplier's own, and ones the programme's vouchers pay for. */
async function requireOwnProducts(
  tx: SqlExecutor,
  supplierId: string,
  productIds: readonly string[],
  eligibleJson: string | null,
): Promise<void> {
  if (productIds.length === 0) return;
  const rows = await tx.all<{ id: string; supplier_id: string }>(
    `SELECT id, supplier_id FROM products WHERE id IN (${productIds.map(() => '?').join(', ')})`,
    [...productIds],
  );
  const owner = new Map(rows.map((r) => [r.id, r.supplier_id]));
  const eligible = eligibleJson ? new Set(JSON.parse(eligibleJson) as string[]) : null;
  for (const [i, productId] of productIds.entries()) {
    if (owner.get(productId) !== supplierId)
      throw ValidationError.of(`productIds.${i}`, `${productId} is not a product of supplier ${supplierId}`);
    if (eligible && !eligible.has(productId))
      throw ValidationError.of(`productIds.${i}`, `the programme's vouchers do not pay for ${productId}`);
  }
}
