import { z } from 'zod';
import type { AuditTrail } from '../audit/audit-log.ts';
import { ConflictError, NotFoundError, ValidationError } from '../errors.ts';
import { type Database, isUniqueViolation, type SqlExecutor } from '../storage/database.ts';
import { newId } from '../storage/ids.ts';
import { parseInput } from '../validation.ts';
import {
  type RateLimitFields,
  rateLimitColumns,
  rateLimitFieldsOf,
  rateLimitsInput,
} from './rate-limit-fields.ts';

export const ORGANIZATION_CLASSES = ['sme', 'midsize', 'large', 'public', 'university', 'research'] as const;

const organizationInput = z.strictObject({
  name: z.string().trim().min(1).max(200),
  class: z.enum(ORGANIZATION_CLASSES),
  businessNumber: z
    .string()
    .regex(/^\d{3}-?\d{2}-?\d{5}$/, '사업자등록번호 형식: 000-00-00000')
    .nullable()
    .optional(),
  status: z.enum(['active', 'suspended']).optional(),
  /** Per requested model, the fallback chain this organisation uses instead of the product's. */
  fallbackModels: z
    .record(z.string().min(1).max(128), z.array(z.string().min(1).max(128)).max(8))
    .nullable()
    .optional(),
  /** Calls it may have in progress on one replica; null: the hub's default (KAIHUB_ORG_MAX_CONCURRENT). */
  maxConcurrentRequests: z.number().int().min(1).max(1_000_000).nullable().optional(),
  /**
   * `prepaid`: a call is admitted only when its worst-case cost is covered by vouchers and the wallet
   * (limits/budget-holds.ts); `postpaid`: never refused for money, the wallet may go negative.
   */
  spendMode: z.enum(['postpaid', 'prepaid']).optional(),
  /** Requests and tokens per minute for the whole organisation, every key together. */
  rateLimits: rateLimitsInput,
});

export interface Organization {
  id: string;
  name: string;
  class: string;
  businessNumber: string | null;
  status: string;
  /** Overrides of products' fallback chains, by requested model; {} when none. */
  fallbackModels: Record<string, string[]>;
  /** null: the hub's default applies. */
  maxConcurrentRequests: number | null;
  spendMode: 'postpaid' | 'prepaid';
  rateLimits: RateLimitFields;
  createdAt: string;
  updatedAt: string;
}

const COLUMNS = 'id, name, class, business_number, status, created_at, updated_at';
const READ_COLUMNS = `${COLUMNS}, fallback_models, max_concurrent_requests, spend_mode, requests_per_minute, tokens_per_minute`;

function toOrganization(r: Record<string, unknown>): Organization {
  return {
    id: r.id as string,
    name: r.name as string,
    class: r.class as string,
    businessNumber: (r.business_number as string | null) ?? null,
    status: r.status as string,
    fallbackModels: r.fallback_models
      ? (JSON.parse(r.fallback_models as string) as Record<string, string[]>)
      : {},
    maxConcurrentRequests:
      r.max_concurrent_requests === null || r.max_concurrent_requests === undefined
        ? null
        : Number(r.max_concurrent_requests),
    spendMode: (r.spend_mode as Organization['spendMode'] | undefined) ?? 'postpaid',
    rateLimits: rateLimitFieldsOf(r),
    createdAt: new Date(Number(r.created_at)).toISOString(),
    updatedAt: new Date(Number(r.updated_at)).toISOString(),
  };
}

export class OrganizationService {
  /** Suspending an organisation must reach the key cache, which holds its status. */
  onChange: (organizationId: string) => void = () => {};
  /** Checks that model ids name products (the catalog's job); throws a ValidationError naming `field`. */
  checkModels: (field: string, models: readonly string[]) => Promise<void> = async () => {};

  constructor(private readonly db: Database) {}

  async create(input: unknown, trail: AuditTrail): Promise<Organization> {
    const v = parseInput(organizationInput.omit({ fallbackModels: true }), input);
    const id = newId('org');
    const now = Date.now();
    return this.db.transaction(async (tx) => {
      try {
        await tx.run(
          `INSERT INTO organizations (${COLUMNS}, max_concurrent_requests, spend_mode, requests_per_minute,
             tokens_per_minute) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          [
            id,
            v.name,
            v.class,
            v.businessNumber ?? null,
            v.status ?? 'active',
            now,
            now,
            v.maxConcurrentRequests ?? null,
            v.spendMode ?? 'postpaid',
            ...rateLimitColumns(v.rateLimits),
          ],
        );
      } catch (error) {
        if (isUniqueViolation(error))
          throw new ConflictError('name', 'an organization with this name exists');
        throw error;
      }
      const after = await this.get(id, tx);
      await trail(tx, { entityId: id, after });
      return after;
    });
  }

  async list(): Promise<Organization[]> {
    return (await this.db.all(`SELECT ${READ_COLUMNS} FROM organizations ORDER BY created_at, id`)).map(
      toOrganization,
    );
  }

  async get(id: string, q: SqlExecutor = this.db): Promise<Organization> {
    const row = await q.get(`SELECT ${READ_COLUMNS} FROM organizations WHERE id = ?`, [id]);
    if (!row) throw new NotFoundError('organization', id);
    return toOrganization(row);
  }

  async update(id: string, input: unknown, trail: AuditTrail): Promise<Organization> {
    await this.get(id);
    const v = parseInput(organizationInput.partial(), input);
    let fallbacks: string | null | undefined;
    if (v.fallbackModels !== undefined) {
      const entries = Object.entries(v.fallbackModels ?? {}).filter(([, chain]) => chain.length > 0);
      for (const [model, chain] of entries) {
        await this.checkModels(`fallbackModels.${model}`, [model, ...chain]);
        if (chain.includes(model))
          throw ValidationError.of(`fallbackModels.${model}`, 'a product cannot fall back to itself');
      }
      fallbacks =
        entries.length === 0
          ? null
          : JSON.stringify(Object.fromEntries(entries.map(([m, chain]) => [m, [...new Set(chain)]])));
    }
    const updated = await this.db.transaction(async (tx) => {
      const before = await this.get(id, tx);
      const next = {
        name: v.name ?? before.name,
        class: v.class ?? before.class,
        businessNumber: v.businessNumber === undefined ? before.businessNumber : v.businessNumber,
        status: v.status ?? before.status,
      };
      try {
        await tx.run(
          'UPDATE organizations SET name = ?, class = ?, business_number = ?, status = ?, updated_at = ? WHERE id = ?',
          [next.name, next.class, next.businessNumber, next.status, Date.now(), id],
        );
        if (fallbacks !== undefined)
          await tx.run('UPDATE organizations SET fallback_models = ? WHERE id = ?', [fallbacks, id]);
        if (v.maxConcurrentRequests !== undefined)
          await tx.run('UPDATE organizations SET max_concurrent_requests = ? WHERE id = ?', [
            v.maxConcurrentRequests,
            id,
          ]);
        if (v.spendMode !== undefined)
          await tx.run('UPDATE organizations SET spend_mode = ? WHERE id = ?', [v.spendMode, id]);
        if (v.rateLimits !== undefined)
          await tx.run(
            'UPDATE organizations SET requests_per_minute = ?, tokens_per_minute = ? WHERE id = ?',
            [...rateLimitColumns(v.rateLimits), id],
          );
      } catch (error) {
        if (isUniqueViolation(error))
          throw new ConflictError('name', 'an organization with this name exists');
        throw error;
      }
      const after = await this.get(id, tx);
      await trail(tx, { entityId: id, before, after });
      return after;
    });
    // Only once committed: the key cache must not act on a change that was rolled back.
    this.onChange(id);
    return updated;
  }
}
