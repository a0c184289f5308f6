import { z } from 'zod';
import { ORGANIZATION_CLASSES } from '../accounts/organizations.ts';
import { requireEvaluators } from '../accounts/users.ts';
import type { AuditTrail } from '../audit/audit-log.ts';
import { ConflictError, NotFoundError, ValidationError } from '../errors.ts';
import { DAY_MS, kstDate, kstDateStart } from '../kst.ts';
import { type Database, isUniqueViolation, type SqlExecutor } from '../storage/database.ts';
import { newId } from '../storage/ids.ts';
import { parseInput } from '../validation.ts';
import { accountId, balancesOf, lockBalances, postTransaction } from './ledger.ts';
import { formatKrw, type MicroKrw, PriceFormatError, parseKrwAmount } from './money.ts';

/** Days are Korean days: a programme that runs to 2026-12-31 runs to midnight in Seoul. */
export const kstDay = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, 'expected a date, YYYY-MM-DD (KST)')
  .transform((text, ctx) => {
    const ms = kstDateStart(text);
    if (Number.isNaN(ms)) {
      ctx.addIssue({ code: 'custom', message: 'not a calendar date' });
      return z.NEVER;
    }
    return ms;
  });

/** A positive amount of KRW (decimal string or number, ≤ 6 decimals) → µ₩; a field-named 400 otherwise. */
export const krw = z.union([z.string(), z.number()]).transform((value, ctx) => {
  try {
    const amount = parseKrwAmount(value);
    if (amount <= 0n) {
      ctx.addIssue({ code: 'custom', message: 'must be more than 0 KRW' });
      return z.NEVER;
    }
    return amount;
  } catch (error) {
    ctx.addIssue({
      code: 'custom',
      message: error instanceof PriceFormatError ? error.message : String(error),
    });
    return z.NEVER;
  }
});

/** A percentage with at most two decimals, kept as basis points (20.5 % = 2050). */
const percent = z
  .number()
  .min(0)
  .max(100)
  .refine((p) => Number.isInteger(Math.round(p * 100)) && Math.abs(p * 100 - Math.round(p * 100)) < 1e-9, {
    message: 'at most two decimals',
  })
  .transform((p) => Math.round(p * 100));

/**
 * What reviewers score an application on, each weighted; the weights sum to 100, so a weighted score
 * is on the same 0–100 scale as each criterion's.
 */
export const reviewCriteriaInput = z
  .array(
    z.strictObject({
      id: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,39}$/, 'lowercase letters, digits, - and _ (at most 40)'),
      name: z.string().trim().min(1).max(200),
      weight: z.number().int().min(1).max(100),
    }),
  )
  .min(1)
  .max(20)
  .superRefine((criteria, ctx) => {
    const seen = new Set<string>();
    criteria.forEach((c, i) => {
      if (seen.has(c.id)) ctx.addIssue({ code: 'custom', path: [i, 'id'], message: 'ids must be unique' });
      seen.add(c.id);
    });
    const total = criteria.reduce((sum, c) => sum + c.weight, 0);
    if (total !== 100)
      ctx.addIssue({ code: 'custom', message: `weights must sum to 100 (they sum to ${total})` });
  });

export type ReviewCriterion = z.infer<typeof reviewCriteriaInput>[number];

/** How many organisations a programme selects; null: as many as its budget allows. */
const capacityInput = z.number().int().min(1).max(1_000_000).nullable();

const programmeInput = z
  .strictObject({
    name: z.string().trim().min(1).max(200),
    startsOn: kstDay,
    /** The last day, inclusive. */
    endsOn: kstDay,
    budgetKrw: krw,
    /** Eligible organisation classes, each with the share of every charge the organisation pays. */
    copayPercent: z
      .partialRecord(z.enum(ORGANIZATION_CLASSES), percent)
      .refine((r) => Object.keys(r).length > 0, { message: 'name at least one eligible organisation class' }),
    /** When a voucher cannot cover a call: refuse it (`block`) or let the wallet pay (`self-pay`). */
    onExhausted: z.enum(['block', 'self-pay']),
    /** Products its vouchers pay for; null or absent: every product. */
    eligibleProductIds: z.array(z.string().min(1).max(128)).min(1).max(1000).nullable().optional(),
    /**
     * Suppliers whose products its vouchers pay for; null or absent: every supplier. With both lists a
     * product must be in both: each list is a limit the programme set, and neither widens the other.
     */
    eligibleSupplierIds: z.array(z.string().min(1).max(64)).min(1).max(1000).nullable().optional(),
    perOrganizationCapKrw: krw.nullable().optional(),
    capacity: capacityInput.optional(),
    reviewCriteria: reviewCriteriaInput.nullable().optional(),
  })
  .refine((p) => p.endsOn >= p.startsOn, { path: ['endsOn'], message: 'must not be before startsOn' });

/** What the operator may change once a programme exists (docs/billing.md: when each is frozen). */
const programmeUpdate = z.strictObject({
  capacity: capacityInput.optional(),
  reviewCriteria: reviewCriteriaInput.nullable().optional(),
  /** Users holding the evaluator role who review this programme's applications; replaces the list. */
  evaluatorIds: z.array(z.string().min(1).max(64)).max(200).optional(),
});

const voucherInput = z.strictObject({
  organizationId: z.string().min(1).max(64),
  amountKrw: krw,
  /** Defaults: the programme's period. */
  validFrom: kstDay.optional(),
  validUntil: kstDay.optional(),
});

export interface Programme {
  id: string;
  name: string;
  startsOn: string;
  endsOn: string;
  budgetKrw: string;
  /** What is left to issue as vouchers. */
  unissuedKrw: string;
  copayPercent: Record<string, number>;
  onExhausted: 'block' | 'self-pay';
  eligibleProductIds: string[] | null;
  eligibleSupplierIds: string[] | null;
  perOrganizationCapKrw: string | null;
  /** How many organisations it selects; null: as many as the budget allows. */
  capacity: number | null;
  reviewCriteria: ReviewCriterion[];
  createdAt: string;
}

export interface ProgrammeWithEvaluators extends Programme {
  evaluatorIds: string[];
}

/** Applications of a programme selected so far: what its capacity counts. */
export async function selectedCount(db: SqlExecutor, programmeId: string): Promise<number> {
  const row = await db.get<{ n: number | string }>(
    `SELECT COUNT(*) AS n FROM programme_applications WHERE programme_id = ? AND status = 'selected'`,
    [programmeId],
  );
  return Number(row?.n ?? 0);
}

export interface Voucher {
  id: string;
  programmeId: string;
  organizationId: string;
  amountKrw: string;
  balanceKrw: string;
  copayPercent: number;
  validFrom: string;
  /** The last day, inclusive. */
  validUntil: string;
  createdAt: string;
}

const PROGRAMME_COLUMNS = `id, name, starts_at, ends_at, CAST(budget_micro_krw AS TEXT) AS budget, copay_bp, on_exhausted,
  eligible_products, eligible_suppliers, CAST(per_organization_cap_micro_krw AS TEXT) AS cap, capacity, review_criteria, created_at`;
const VOUCHER_COLUMNS = `id, programme_id, organization_id, CAST(amount_micro_krw AS TEXT) AS amount, copay_bp, valid_from,
  valid_until, created_at`;

function toProgramme(r: Record<string, unknown>, unissued: MicroKrw): Programme {
  const bp = JSON.parse(r.copay_bp as string) as Record<string, number>;
  return {
    id: r.id as string,
    name: r.name as string,
    startsOn: kstDate(Number(r.starts_at)),
    endsOn: kstDate(Number(r.ends_at) - DAY_MS),
    budgetKrw: formatKrw(BigInt(r.budget as string)),
    unissuedKrw: formatKrw(unissued),
    copayPercent: Object.fromEntries(Object.entries(bp).map(([k, v]) => [k, v / 100])),
    onExhausted: r.on_exhausted as Programme['onExhausted'],
    eligibleProductIds: r.eligible_products ? (JSON.parse(r.eligible_products as string) as string[]) : null,
    eligibleSupplierIds: r.eligible_suppliers
      ? (JSON.parse(r.eligible_suppliers as string) as string[])
      : null,
    perOrganizationCapKrw: r.cap === null || r.cap === undefined ? null : formatKrw(BigInt(r.cap as string)),
    capacity: r.capacity === null || r.capacity === undefined ? null : Number(r.capacity),
    reviewCriteria: r.review_criteria ? (JSON.parse(r.review_criteria as string) as ReviewCriterion[]) : [],
    createdAt: new Date(Number(r.created_at)).toISOString(),
  };
}

function toVoucher(r: Record<string, unknown>, balance: MicroKrw): Voucher {
  return {
    id: r.id as string,
    programmeId: r.programme_id as string,
    organizationId: r.organization_id as string,
    amountKrw: formatKrw(BigInt(r.amount as string)),
    balanceKrw: formatKrw(balance),
    copayPercent: Number(r.copay_bp) / 100,
    validFrom: kstDate(Number(r.valid_from)),
    validUntil: kstDate(Number(r.valid_until) - DAY_MS),
    createdAt: new Date(Number(r.created_at)).toISOString(),
  };
}

/**
 * Support programmes (지원사업) and the vouchers they issue. Creating a programme funds its budget
 * account from the government's side; issuing a voucher moves money from the budget to the voucher —
 * both in the ledger, so the budget can never be issued twice (two operators at the same moment
 * included: the budget account is locked while it is checked).
 */
export class ProgrammeService {
  /** A voucher was issued: the budget holds of that organisation must learn of it. */
  onVoucherIssued: (organizationId: string) => void = () => {};

  constructor(private readonly db: Database) {}

  async create(input: unknown, trail: AuditTrail, actorId: string): Promise<Programme> {
    const v = parseInput(programmeInput, input);
    if (v.eligibleProductIds) await this.requireProducts(v.eligibleProductIds);
    if (v.eligibleSupplierIds) await this.requireSuppliers(v.eligibleSupplierIds);
    const id = newId('prg');
    const now = Date.now();
    return this.db.transaction(async (tx) => {
      try {
        await tx.run(
          `INSERT INTO programmes (id, name, starts_at, ends_at, budget_micro_krw, copay_bp, on_exhausted,
             eligible_products, eligible_suppliers, per_organization_cap_micro_krw, capacity, review_criteria,
             created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          [
            id,
            v.name,
            v.startsOn,
            v.endsOn + DAY_MS,
            v.budgetKrw,
            JSON.stringify(v.copayPercent),
            v.onExhausted,
            v.eligibleProductIds ? JSON.stringify(v.eligibleProductIds) : null,
            v.eligibleSupplierIds ? JSON.stringify([...new Set(v.eligibleSupplierIds)]) : null,
            v.perOrganizationCapKrw ?? null,
            v.capacity ?? null,
            v.reviewCriteria ? JSON.stringify(v.reviewCriteria) : null,
            now,
            now,
          ],
        );
      } catch (error) {
        if (isUniqueViolation(error)) throw new ConflictError('name', 'a programme with this name exists');
        throw error;
      }
      await postTransaction(tx, this.db.dialect, {
        kind: 'programme_funding',
        createdAtMs: now,
        actorId,
        memo: `budget of ${v.name}`,
        entries: [
          { accountId: accountId.funding, amount: -v.budgetKrw },
          { accountId: accountId.programme(id), amount: v.budgetKrw },
        ],
      });
      const after = await this.get(id, tx);
      await trail(tx, { entityId: id, after });
      return after;
    });
  }

  async get(id: string, db: SqlExecutor = this.db): Promise<Programme> {
    const row = await db.get(`SELECT ${PROGRAMME_COLUMNS} FROM programmes WHERE id = ?`, [id]);
    if (!row) throw new NotFoundError('programme', id);
    const balances = await balancesOf(db, [accountId.programme(id)]);
    return toProgramme(row, balances.get(accountId.programme(id))!);
  }

  async list(): Promise<Programme[]> {
    const rows = await this.db.all(`SELECT ${PROGRAMME_COLUMNS} FROM programmes ORDER BY starts_at DESC, id`);
    const balances = await balancesOf(
      this.db,
      rows.map((r) => accountId.programme(r.id as string)),
    );
    return rows.map((r) => toProgramme(r, balances.get(accountId.programme(r.id as string))!));
  }

  /**
   * Changes what a programme selects and how: capacity (never below the organisations already
   * selected), review criteria (only until the first application is submitted, so every application is
   * scored on the same ones) and its evaluators.
   */
  async update(id: string, input: unknown, trail: AuditTrail): Promise<ProgrammeWithEvaluators> {
    const v = parseInput(programmeUpdate, input);
    return this.db.transaction(async (tx) => {
      const before = await this.withEvaluators(await this.get(id, tx), tx);
      // locked as a selection locks it: a capacity lowered while an operator selects is seen by one of them
      await lockBalances(tx, this.db.dialect, [accountId.programme(id)]);
      if (v.reviewCriteria !== undefined) {
        const row = await tx.get<{ n: number | string }>(
          `SELECT COUNT(*) AS n FROM programme_applications WHERE programme_id = ? AND status <> 'draft'`,
          [id],
        );
        if (Number(row?.n ?? 0) > 0)
          throw new ConflictError(
            'reviewCriteria',
            'applications have been submitted: the review criteria are fixed',
            '신청서가 제출되어 평가 기준을 바꿀 수 없습니다.',
          );
      }
      if (v.capacity !== undefined && v.capacity !== null) {
        const selected = await selectedCount(tx, id);
        if (v.capacity < selected)
          throw new ConflictError(
            'capacity',
            `${selected} organisations are selected already: the capacity cannot be lower`,
            `이미 ${selected}개 기관이 선정되어 정원을 그보다 줄일 수 없습니다.`,
          );
      }
      if (v.evaluatorIds !== undefined) await requireEvaluators(tx, v.evaluatorIds);
      await tx.run(`UPDATE programmes SET capacity = ?, review_criteria = ?, updated_at = ? WHERE id = ?`, [
        v.capacity === undefined ? before.capacity : v.capacity,
        v.reviewCriteria === undefined
          ? before.reviewCriteria.length > 0
            ? JSON.stringify(before.reviewCriteria)
            : null
          : v.reviewCriteria && JSON.stringify(v.reviewCriteria),
        Date.now(),
        id,
      ]);
      if (v.evaluatorIds !== undefined) {
        await tx.run('DELETE FROM programme_evaluators WHERE programme_id = ?', [id]);
        for (const userId of new Set(v.evaluatorIds))
          await tx.run(
            'INSERT INTO programme_evaluators (programme_id, user_id, created_at) VALUES (?, ?, ?)',
            [id, userId, Date.now()],
          );
      }
      const after = await this.withEvaluators(await this.get(id, tx), tx);
      await trail(tx, { entityId: id, before, after });
      return after;
    });
  }

  /** The programme as the operator sees it: with the evaluators assigned to it. */
  async withEvaluators(programme: Programme, db: SqlExecutor = this.db): Promise<ProgrammeWithEvaluators> {
    return { ...programme, evaluatorIds: await this.evaluatorIds(programme.id, db) };
  }

  async evaluatorIds(programmeId: string, db: SqlExecutor = this.db): Promise<string[]> {
    const rows = await db.all<{ user_id: string }>(
      'SELECT user_id FROM programme_evaluators WHERE programme_id = ? ORDER BY user_id',
      [programmeId],
    );
    return rows.map((r) => r.user_id);
  }

  async issueVoucher(
    programmeId: string,
    input: unknown,
    trail: AuditTrail,
    actorId: string,
  ): Promise<Voucher> {
    // parsed before the transaction too, so that bad input never waits for the write lock
    parseInput(voucherInput, input);
    const voucher = await this.db.transaction((tx) =>
      this.issueVoucherIn(tx, programmeId, input, trail, actorId),
    );
    this.onVoucherIssued(voucher.organizationId);
    return voucher;
  }

  /**
   * Issues a voucher inside the caller's transaction (selection issues one with its agreement); the
   * caller calls `onVoucherIssued` once that transaction has committed.
   */
  async issueVoucherIn(
    tx: SqlExecutor,
    programmeId: string,
    input: unknown,
    trail: AuditTrail,
    actorId: string,
  ): Promise<Voucher> {
    const v = parseInput(voucherInput, input);
    const id = newId('vch');
    const now = Date.now();
    const p = await tx.get(
      `SELECT starts_at, ends_at, copay_bp, CAST(per_organization_cap_micro_krw AS TEXT) AS cap FROM programmes
       WHERE id = ?`,
      [programmeId],
    );
    if (!p) throw new NotFoundError('programme', programmeId);
    const org = await tx.get<{ class: string }>('SELECT class FROM organizations WHERE id = ?', [
      v.organizationId,
    ]);
    if (!org) throw ValidationError.of('organizationId', `no organization ${v.organizationId}`);
    const copay = (JSON.parse(p.copay_bp as string) as Record<string, number>)[org.class];
    if (copay === undefined)
      throw ValidationError.of('organizationId', `organizations of class ${org.class} are not eligible`);
    const startsAt = Number(p.starts_at);
    const endsAt = Number(p.ends_at);
    const validFrom = v.validFrom ?? startsAt;
    const validUntil = v.validUntil === undefined ? endsAt : v.validUntil + DAY_MS;
    if (validFrom < startsAt || validFrom >= endsAt)
      throw ValidationError.of('validFrom', 'must lie within the programme period');
    if (validUntil > endsAt) throw ValidationError.of('validUntil', 'must lie within the programme period');
    if (validUntil <= validFrom) throw ValidationError.of('validUntil', 'must not be before validFrom');

    // the budget account is locked from here to commit: a second issue waits, then sees this one
    const budget = (await lockBalances(tx, this.db.dialect, [accountId.programme(programmeId)])).get(
      accountId.programme(programmeId),
    )!;
    if (v.amountKrw > budget)
      throw new ConflictError(
        'amountKrw',
        `the programme has ${formatKrw(budget)} KRW left to issue`,
        '사업 예산이 부족합니다.',
      );
    if (p.cap !== null && p.cap !== undefined) {
      const issued = await tx.get<{ total: string | null }>(
        `SELECT CAST(SUM(amount_micro_krw) AS TEXT) AS total FROM vouchers
         WHERE programme_id = ? AND organization_id = ?`,
        [programmeId, v.organizationId],
      );
      const total = BigInt(issued?.total ?? '0') + v.amountKrw;
      if (total > BigInt(p.cap as string))
        throw new ConflictError(
          'amountKrw',
          `the programme's cap per organisation is ${formatKrw(BigInt(p.cap as string))} KRW`,
          '기관당 지원 한도를 넘습니다.',
        );
    }
    await tx.run(
      `INSERT INTO vouchers (id, programme_id, organization_id, amount_micro_krw, copay_bp, valid_from, valid_until,
         created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      [id, programmeId, v.organizationId, v.amountKrw, copay, validFrom, validUntil, now],
    );
    await postTransaction(tx, this.db.dialect, {
      kind: 'voucher_issue',
      createdAtMs: now,
      actorId,
      memo: `voucher ${id}`,
      entries: [
        { accountId: accountId.programme(programmeId), amount: -v.amountKrw },
        { accountId: accountId.voucher(id), amount: v.amountKrw },
      ],
    });
    const after = await this.voucher(id, tx);
    await trail(tx, { entityId: id, after });
    return after;
  }

  async voucher(id: string, db: SqlExecutor = this.db): Promise<Voucher> {
    const row = await db.get(`SELECT ${VOUCHER_COLUMNS} FROM vouchers WHERE id = ?`, [id]);
    if (!row) throw new NotFoundError('voucher', id);
    const balances = await balancesOf(db, [accountId.voucher(id)]);
    return toVoucher(row, balances.get(accountId.voucher(id))!);
  }

  /** Vouchers of a programme, or of an organisation. */
  async vouchers(filter: { programmeId?: string; organizationId?: string }): Promise<Voucher[]> {
    const where = filter.programmeId !== undefined ? 'programme_id = ?' : 'organization_id = ?';
    const rows = await this.db.all(
      `SELECT ${VOUCHER_COLUMNS} FROM vouchers WHERE ${where} ORDER BY valid_until, id`,
      [(filter.programmeId ?? filter.organizationId)!],
    );
    const balances = await balancesOf(
      this.db,
      rows.map((r) => accountId.voucher(r.id as string)),
    );
    return rows.map((r) => toVoucher(r, balances.get(accountId.voucher(r.id as string))!));
  }

  private async requireProducts(ids: readonly string[]): Promise<void> {
    const rows = await this.db.all<{ id: string }>(
      `SELECT id FROM products WHERE id IN (${ids.map(() => '?').join(', ')})`,
      [...ids],
    );
    const known = new Set(rows.map((r) => r.id));
    const missing = ids.findIndex((id) => !known.has(id));
    if (missing !== -1)
      throw ValidationError.of(`eligibleProductIds.${missing}`, `no product ${ids[missing]}`);
  }

  private async requireSuppliers(ids: readonly string[]): Promise<void> {
    const rows = await this.db.all<{ id: string }>(
      `SELECT id FROM suppliers WHERE id IN (${ids.map(() => '?').join(', ')})`,
      [...ids],
    );
    const known = new Set(rows.map((r) => r.id));
    const missing = ids.findIndex((id) => !known.has(id));
    if (missing !== -1)
      throw ValidationError.of(`eligibleSupplierIds.${missing}`, `no supplier ${ids[missing]}`);
  }
}
