import { z } from 'zod';
import type { AuditTrail } from '../audit/audit-log.ts';
import { ConflictError, NotFoundError, ValidationError } from '../errors.ts';
import { DAY_MS, kstDate } from '../kst.ts';
import { type Database, isUniqueViolation, type SqlExecutor, type SqlValue } from '../storage/database.ts';
import { newId } from '../storage/ids.ts';
import { parseInput } from '../validation.ts';
import { formatKrw } from './money.ts';
import { krw } from './programmes.ts';
import { type CostCategory, costCategoriesInput } from './supplier-pool.ts';

const PLAN_MAX_CHARS = 50_000;

const applicationInput = z.strictObject({
  organizationId: z.string().min(1).max(64),
  /** The supplier the organisation picked from the programme's pool (matching). */
  poolEntryId: z.string().min(1).max(64),
  requestedKrw: krw,
  costCategories: costCategoriesInput,
  /** Written by the organisation and its supplier together; required by the time it is submitted. */
  plan: z.string().max(PLAN_MAX_CHARS).default(''),
});

const applicationUpdate = z.strictObject({
  poolEntryId: z.string().min(1).max(64).optional(),
  requestedKrw: krw.optional(),
  costCategories: costCategoriesInput.optional(),
  plan: z.string().max(PLAN_MAX_CHARS).optional(),
});

export const APPLICATION_STATUSES = ['draft', 'submitted', 'selected', 'rejected'] as const;
export type ApplicationStatus = (typeof APPLICATION_STATUSES)[number];

const applicationQuery = z.strictObject({
  programmeId: z.string().min(1).max(64).optional(),
  organizationId: z.string().min(1).max(64).optional(),
  supplierId: z.string().min(1).max(64).optional(),
  status: z.enum(APPLICATION_STATUSES).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(500),
});

/** 협약: what a selected application was granted. */
export interface Agreement {
  id: string;
  voucherId: string;
  amountKrw: string;
  startsOn: string;
  /** The last day, inclusive. */
  endsOn: string;
  costCategories: CostCategory[];
  createdAt: string;
}

export interface Application {
  id: string;
  programmeId: string;
  organizationId: string;
  poolEntryId: string;
  supplierId: string;
  status: ApplicationStatus;
  requestedKrw: string;
  costCategories: CostCategory[];
  plan: string;
  submittedAt: string | null;
  decidedAt: string | null;
  decisionReason: string | null;
  agreement: Agreement | null;
  createdAt: string;
  updatedAt: string;
}

/** Whose applications a non-operator sees (docs/roles.md). */
export interface ApplicationScope {
  organizationIds: readonly string[];
  supplierIds: readonly string[];
  /** An evaluator: the submitted (and decided) applications of the programmes they are assigned to. */
  evaluatorUserId: string | null;
}

const COLUMNS = `a.id, a.programme_id, a.organization_id, a.pool_entry_id, a.supplier_id, a.status,
  CAST(a.requested_micro_krw AS TEXT) AS requested, a.cost_categories, a.plan, a.submitted_at, a.decided_at,
  a.decision_reason, a.created_at, a.updated_at, g.id AS agreement_id, g.voucher_id,
  CAST(g.amount_micro_krw AS TEXT) AS agreement_amount, g.starts_at AS agreement_starts_at,
  g.ends_at AS agreement_ends_at, g.cost_categories AS agreement_categories, g.created_at AS agreement_created_at`;
const FROM = 'programme_applications a LEFT JOIN agreements g ON g.application_id = a.id';

const iso = (ms: unknown) => (ms === null || ms === undefined ? null : new Date(Number(ms)).toISOString());

function toApplication(r: Record<string, unknown>): Application {
  return {
    id: r.id as string,
    programmeId: r.programme_id as string,
    organizationId: r.organization_id as string,
    poolEntryId: r.pool_entry_id as string,
    supplierId: r.supplier_id as string,
    status: r.status as ApplicationStatus,
    requestedKrw: formatKrw(BigInt(r.requested as string)),
    costCategories: JSON.parse(r.cost_categories as string) as CostCategory[],
    plan: r.plan as string,
    submittedAt: iso(r.submitted_at),
    decidedAt: iso(r.decided_at),
    decisionReason: (r.decision_reason as string | null) ?? null,
    agreement: r.agreement_id
      ? {
          id: r.agreement_id as string,
          voucherId: r.voucher_id as string,
          amountKrw: formatKrw(BigInt(r.agreement_amount as string)),
          startsOn: kstDate(Number(r.agreement_starts_at)),
          endsOn: kstDate(Number(r.agreement_ends_at) - DAY_MS),
          costCategories: JSON.parse(r.agreement_categories as string) as CostCategory[],
          createdAt: iso(r.agreement_created_at)!,
        }
      : null,
    createdAt: iso(r.created_at)!,
    updatedAt: iso(r.updated_at)!,
  };
}

const notDraft = (field: string, status: string) =>
  new ConflictError(
    field,
    `the application is ${status}: only a draft changes`,
    '제출된 신청서는 바꿀 수 없습니다.',
  );

/**
 * Applications to a programme (docs/billing.md): an organisation picks a supplier from the pool and
 * writes its plan with that supplier as a draft, then submits it for review. Who may see and change
 * which application is the route's to check (http/admin/application-routes.ts).
 */
export class ApplicationService {
  constructor(private readonly db: Database) {}

  async create(programmeId: string, input: unknown, trail: AuditTrail): Promise<Application> {
    const v = parseInput(applicationInput, input);
    const id = newId('apl');
    const now = Date.now();
    return this.db.transaction(async (tx) => {
      const p = await tx.get<{ copay_bp: string; ends_at: number | string; cap: string | null }>(
        `SELECT copay_bp, ends_at, CAST(per_organization_cap_micro_krw AS TEXT) AS cap FROM programmes WHERE id = ?`,
        [programmeId],
      );
      if (!p) throw new NotFoundError('programme', programmeId);
      if (now >= Number(p.ends_at))
        throw new ConflictError(
          'programmeId',
          'the programme has ended',
          '종료된 사업에는 신청할 수 없습니다.',
        );
      const org = await tx.get<{ class: string }>('SELECT class FROM organizations WHERE id = ?', [
        v.organizationId,
      ]);
      if (!org) throw ValidationError.of('organizationId', `no organization ${v.organizationId}`);
      if ((JSON.parse(p.copay_bp) as Record<string, number>)[org.class] === undefined)
        throw ValidationError.of(
          'organizationId',
          `organizations of class ${org.class} are not eligible for this programme`,
        );
      checkCap(v.requestedKrw, p.cap);
      const supplierId = await poolSupplier(tx, programmeId, v.poolEntryId);
      try {
        await tx.run(
          `INSERT INTO programme_applications (id, programme_id, organization_id, pool_entry_id, supplier_id, status,
             requested_micro_krw, cost_categories, plan, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, 'draft', ?, ?, ?, ?, ?)`,
          [
            id,
            programmeId,
            v.organizationId,
            v.poolEntryId,
            supplierId,
            v.requestedKrw,
            JSON.stringify(v.costCategories),
            v.plan,
            now,
            now,
          ],
        );
      } catch (error) {
        if (isUniqueViolation(error))
          throw new ConflictError(
            'organizationId',
            'the organization has an application to this programme already (draft, submitted or selected)',
            '이 기관은 이 사업에 진행 중인 신청이 있습니다.',
          );
        throw error;
      }
      const after = await this.get(id, tx);
      await trail(tx, { entityId: id, after });
      return after;
    });
  }

  async get(id: string, db: SqlExecutor = this.db): Promise<Application> {
    const row = await db.get(`SELECT ${COLUMNS} FROM ${FROM} WHERE a.id = ?`, [id]);
    if (!row) throw new NotFoundError('application', id);
    return toApplication(row);
  }

  /** Applications by the query's filters; `scope` (a non-operator) keeps only what that person may see. */
  async list(query: unknown, scope?: ApplicationScope): Promise<Application[]> {
    const q = parseInput(applicationQuery, query);
    const where: string[] = [];
    const params: SqlValue[] = [];
    const filter = (sql: string, value: SqlValue | undefined) => {
      if (value === undefined) return;
      where.push(sql);
      params.push(value);
    };
    filter('a.programme_id = ?', q.programmeId);
    filter('a.organization_id = ?', q.organizationId);
    filter('a.supplier_id = ?', q.supplierId);
    filter('a.status = ?', q.status);
    if (scope) {
      const any: string[] = [];
      const inList = (column: string, ids: readonly string[]) => {
        if (ids.length === 0) return;
        any.push(`${column} IN (${ids.map(() => '?').join(', ')})`);
        params.push(...ids);
      };
      inList('a.organization_id', scope.organizationIds);
      inList('a.supplier_id', scope.supplierIds);
      if (scope.evaluatorUserId !== null) {
        any.push(`(a.status <> 'draft' AND EXISTS (SELECT 1 FROM programme_evaluators pe
          WHERE pe.programme_id = a.programme_id AND pe.user_id = ?))`);
        params.push(scope.evaluatorUserId);
      }
      if (any.length === 0) return [];
      where.push(`(${any.join(' OR ')})`);
    }
    const rows = await this.db.all(
      `SELECT ${COLUMNS} FROM ${FROM} ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY a.created_at, a.id LIMIT ${q.limit}`,
      params,
    );
    return rows.map(toApplication);
  }

  /** Changes a draft: the organisation all of it, the matched supplier the plan (the route checks who). */
  async update(id: string, input: unknown, trail: AuditTrail): Promise<Application> {
    const v = parseInput(applicationUpdate, input);
    return this.db.transaction(async (tx) => {
      const before = await this.get(id, tx);
      if (before.status !== 'draft') throw notDraft('status', before.status);
      const sets: string[] = [];
      const params: SqlValue[] = [];
      const set = (column: string, value: SqlValue) => {
        sets.push(`${column} = ?`);
        params.push(value);
      };
      if (v.poolEntryId !== undefined) {
        set('supplier_id', await poolSupplier(tx, before.programmeId, v.poolEntryId));
        set('pool_entry_id', v.poolEntryId);
      }
      if (v.requestedKrw !== undefined) {
        const p = await tx.get<{ cap: string | null }>(
          'SELECT CAST(per_organization_cap_micro_krw AS TEXT) AS cap FROM programmes WHERE id = ?',
          [before.programmeId],
        );
        checkCap(v.requestedKrw, p?.cap ?? null);
        set('requested_micro_krw', v.requestedKrw);
      }
      if (v.costCategories !== undefined) set('cost_categories', JSON.stringify(v.costCategories));
      if (v.plan !== undefined) set('plan', v.plan);
      set('updated_at', Date.now());
      await tx.run(`UPDATE programme_applications SET ${sets.join(', ')} WHERE id = ?`, [...params, id]);
      const after = await this.get(id, tx);
      await trail(tx, { entityId: id, before, after });
      return after;
    });
  }

  /** draft → submitted: reviewers see it from now on, and it no longer changes. */
  async submit(id: string, trail: AuditTrail): Promise<Application> {
    return this.db.transaction(async (tx) => {
      const before = await this.get(id, tx);
      if (before.status !== 'draft') throw notDraft('status', before.status);
      if (before.plan.trim() === '')
        throw ValidationError.of('plan', 'write the plan before submitting the application');
      const now = Date.now();
      await tx.run(
        `UPDATE programme_applications SET status = 'submitted', submitted_at = ?, updated_at = ?
         WHERE id = ? AND status = 'draft'`,
        [now, now, id],
      );
      const after = await this.get(id, tx);
      await trail(tx, { entityId: id, before, after });
      return after;
    });
  }
}

/** The supplier of a pool entry of this programme; any other id is the caller's mistake. */
async function poolSupplier(tx: SqlExecutor, programmeId: string, poolEntryId: string): Promise<string> {
  const entry = await tx.get<{ supplier_id: string }>(
    'SELECT supplier_id FROM supplier_pool_entries WHERE id = ? AND programme_id = ?',
    [poolEntryId, programmeId],
  );
  if (!entry)
    throw ValidationError.of('poolEntryId', `no entry ${poolEntryId} in this programme's supplier pool`);
  return entry.supplier_id;
}

function checkCap(requested: bigint, cap: string | null): void {
  if (cap !== null && requested > BigInt(cap))
    throw ValidationError.of(
      'requestedKrw',
      `the programme's cap per organization is ${formatKrw(BigInt(cap))} KRW`,
    );
}
