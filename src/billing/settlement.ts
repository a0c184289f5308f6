import { z } from 'zod';
import type { AuditTrail } from '../audit/audit-log.ts';
import { ConflictError, NotFoundError, ValidationError } from '../errors.ts';
import { kstMonth, kstMonthStart } from '../kst.ts';
import type { Database, SqlExecutor } from '../storage/database.ts';
import { parseInput } from '../validation.ts';
import { formatKrw, type MicroKrw } from './money.ts';

/**
 * Monthly settlement (정산, docs/billing.md): the operator closes a month; the hub computes, from the
 * ledger's charges settled in that month, a statement per supplier (usage by product and price, what
 * to claim from each programme, what organisations paid) and per organisation (usage by product and
 * price, voucher used, co-payment), and keeps them as they were computed. A closed month never
 * changes: a charge that arrives later lands in the next open month, marked as an adjustment.
 *
 * Rounding to the won (the only rounding; amounts inside are exact µ₩):
 * - 공급가액 (supply value) = the statement's exact amount rounded half up to the won;
 * - 프로그램 청구액 / voucher part = the voucher-paid amount rounded half up to the won; the
 *   organisations' part is the supply value less it, so the two always add up;
 * - 부가세 (VAT) = supply value × rate, truncated to the won (원 미만 절사, as tax invoices do);
 * - 합계 = supply value + VAT.
 */

const WON = 1_000_000n;

/** Half up to the won, of a non-negative amount of µ₩. */
export function roundToWon(micro: MicroKrw): bigint {
  return (micro + WON / 2n) / WON;
}

/** VAT on a supply value in won, truncated to the won. */
export function vatOf(supplyWon: bigint, rateBp: number): bigint {
  return (supplyWon * BigInt(rateBp)) / 10_000n;
}

const MONTH = /^\d{4}-(0[1-9]|1[0-2])$/;
const MONTH_MESSAGE = 'expected a month, YYYY-MM (KST)';

/** A month in a path: malformed is a 400 naming `month`, not the 404 of a month with no row. */
function requireMonth(month: string): void {
  if (!MONTH.test(month)) throw ValidationError.of('month', MONTH_MESSAGE);
}

const closeInput = z.strictObject({
  month: z.string().regex(MONTH, MONTH_MESSAGE),
  /** 부가세율: 10 % by default. */
  vatPercent: z.number().min(0).max(100).optional(),
});

export interface StatementLine {
  productId: string;
  model: string;
  priceInputPer1M: string;
  priceOutputPer1M: string;
  /** A late charge from an earlier, closed month. */
  adjustment: boolean;
  requests: number;
  promptTokens: number;
  completionTokens: number;
  amountKrw: string;
  fromVouchersKrw: string;
  fromWalletKrw: string;
  /** On supplier statements: the organisation; on organisation statements: the supplier. */
  counterpartId: string;
}

export interface StatementTotals {
  requests: number;
  amountMicroKrw: string;
  amountKrw: string;
  /** 공급가액, won. */
  supplyValueKrw: string;
  /** 부가세, won. */
  vatKrw: string;
  /** 합계, won. */
  totalKrw: string;
  /** Of the supply value: what the programmes pay (vouchers), won. */
  voucherPartKrw: string;
  /** Of the supply value: what the organisations pay (co-payment and self-pay), won. */
  organizationPartKrw: string;
  adjustments: number;
}

export interface Statement {
  month: string;
  partyKind: 'supplier' | 'organization';
  partyId: string;
  partyName: string;
  vatPercent: number;
  lines: StatementLine[];
  /** Supplier statements: what to claim from each programme (voucher-paid), exact. */
  programmes: { programmeId: string; name: string; amountKrw: string }[];
  totals: StatementTotals;
}

export interface MonthSummary {
  month: string;
  status: 'open' | 'closing' | 'closed';
  closedAt: string | null;
  closedBy: string | null;
  vatPercent: number | null;
  totals: {
    charges: number;
    amountKrw: string;
    voucherPartKrw: string;
    walletPartKrw: string;
    /** Σ usage_events.cost of the charges: equal to the amount, or the month does not reconcile. */
    usageCostKrw: string;
    adjustments: number;
  } | null;
  statements: { partyKind: string; partyId: string; partyName: string; totalKrw: string }[];
}

interface AggregateRow {
  organization_id: string;
  supplier_id: string | null;
  product_id: string;
  model: string | null;
  programme_id: string | null;
  price_in: string;
  price_out: string;
  late: number;
  requests: number;
  prompt: number;
  completion: number;
  payable: string;
  voucher: string;
  wallet: string;
  usage_cost: string;
}

interface Accumulator {
  partyName: string;
  lines: StatementLine[];
  programmes: Map<string, bigint>;
  amount: bigint;
  voucher: bigint;
  requests: number;
  adjustments: number;
}

function totalsOf(a: Accumulator, vatBp: number): StatementTotals {
  const supply = roundToWon(a.amount);
  const voucherPart = roundToWon(a.voucher) > supply ? supply : roundToWon(a.voucher);
  const vat = vatOf(supply, vatBp);
  return {
    requests: a.requests,
    amountMicroKrw: a.amount.toString(),
    amountKrw: formatKrw(a.amount),
    supplyValueKrw: supply.toString(),
    vatKrw: vat.toString(),
    totalKrw: (supply + vat).toString(),
    voucherPartKrw: voucherPart.toString(),
    organizationPartKrw: (supply - voucherPart).toString(),
    adjustments: a.adjustments,
  };
}

export class SettlementService {
  constructor(
    private readonly db: Database,
    /** Resolves once every usage record this replica wrote is in the ledger (UsageJournal.sync). */
    private readonly synced: () => Promise<void> = async () => {},
  ) {}

  /**
   * Closes a month that has ended. First the month is marked `closing` under an exclusive lock, which
   * waits for charges in flight; from then on new charges of that month go to the next one. Then the
   * statements are computed and stored, and the month is `closed` — retried from there if it failed.
   */
  async close(input: unknown, trail: AuditTrail, actorId: string): Promise<MonthSummary> {
    const v = parseInput(closeInput, input);
    const vatBp = Math.round((v.vatPercent ?? 10) * 100);
    if (v.month >= kstMonth(Date.now()))
      throw ValidationError.of('month', 'only a month that has ended can be closed (KST)');
    // what this replica has metered belongs in the month, not in the next one as an adjustment
    await this.synced();
    const lock = this.db.dialect === 'postgres' ? ' FOR UPDATE' : '';
    await this.db.transaction(async (tx) => {
      await tx.run(
        "INSERT INTO settlement_months (month, status) VALUES (?, 'open') ON CONFLICT (month) DO NOTHING",
        [v.month],
      );
      const row = await tx.get<{ status: string }>(
        `SELECT status FROM settlement_months WHERE month = ?${lock}`,
        [v.month],
      );
      if (row?.status === 'closed') throw new ConflictError('month', `${v.month} is closed already`);
      await tx.run("UPDATE settlement_months SET status = 'closing' WHERE month = ?", [v.month]);
    });
    await this.db.transaction(async (tx) => {
      const row = await tx.get<{ status: string }>(
        `SELECT status FROM settlement_months WHERE month = ?${lock}`,
        [v.month],
      );
      // two operators closing at once: the second finds it done
      if (row?.status === 'closed') throw new ConflictError('month', `${v.month} is closed already`);
      const statements = await this.compute(tx, v.month, vatBp);
      const now = Date.now();
      for (const s of statements) {
        await tx.run(
          `INSERT INTO settlement_statements (month, party_kind, party_id, statement_json, created_at)
           VALUES (?, ?, ?, ?, ?)`,
          [v.month, s.partyKind, s.partyId, JSON.stringify(s), now],
        );
      }
      const summary = await this.totals(tx, v.month);
      await tx.run(
        `UPDATE settlement_months SET status = 'closed', vat_rate_bp = ?, closed_at = ?, closed_by = ?, summary_json = ?
         WHERE month = ?`,
        [vatBp, now, actorId, JSON.stringify(summary), v.month],
      );
      await trail(tx, {
        entityId: v.month,
        after: { month: v.month, vatPercent: vatBp / 100, totals: summary, statements: statements.length },
      });
    });
    return this.month(v.month);
  }

  /** The month's status, totals and statements' index (open months: totals so far). */
  async month(month: string, db: SqlExecutor = this.db): Promise<MonthSummary> {
    requireMonth(month);
    const row = await db.get<{
      status: MonthSummary['status'];
      closed_at: number | null;
      closed_by: string | null;
      vat_rate_bp: number | null;
      summary_json: string | null;
    }>(
      'SELECT status, closed_at, closed_by, vat_rate_bp, summary_json FROM settlement_months WHERE month = ?',
      [month],
    );
    if (!row) throw new NotFoundError('settlement month', month);
    const statements = await db.all<{ party_kind: string; party_id: string; statement_json: string }>(
      'SELECT party_kind, party_id, statement_json FROM settlement_statements WHERE month = ? ORDER BY party_kind, party_id',
      [month],
    );
    return {
      month,
      status: row.status,
      closedAt: row.closed_at === null ? null : new Date(Number(row.closed_at)).toISOString(),
      closedBy: row.closed_by,
      vatPercent: row.vat_rate_bp === null ? null : Number(row.vat_rate_bp) / 100,
      totals: row.summary_json
        ? JSON.parse(row.summary_json)
        : row.status === 'open'
          ? await this.totals(db, month)
          : null,
      statements: statements.map((s) => {
        const parsed = JSON.parse(s.statement_json) as Statement;
        return {
          partyKind: s.party_kind,
          partyId: s.party_id,
          partyName: parsed.partyName,
          totalKrw: parsed.totals.totalKrw,
        };
      }),
    };
  }

  async months(): Promise<MonthSummary[]> {
    const rows = await this.db.all<{ month: string }>(
      'SELECT month FROM settlement_months ORDER BY month DESC',
    );
    const result: MonthSummary[] = [];
    for (const r of rows) result.push(await this.month(r.month));
    return result;
  }

  /**
   * A stored statement of a closed month; a party without charges that month gets an empty one (its
   * statement says so), a month not closed yet a 404.
   */
  async statement(
    month: string,
    partyKind: 'supplier' | 'organization',
    partyId: string,
  ): Promise<Statement> {
    requireMonth(month);
    const row = await this.db.get<{ statement_json: string }>(
      'SELECT statement_json FROM settlement_statements WHERE month = ? AND party_kind = ? AND party_id = ?',
      [month, partyKind, partyId],
    );
    if (row) return JSON.parse(row.statement_json) as Statement;
    const closed = await this.db.get<{ vat_rate_bp: number }>(
      "SELECT vat_rate_bp FROM settlement_months WHERE month = ? AND status = 'closed'",
      [month],
    );
    const party = await this.db.get<{ name: string }>(
      `SELECT name FROM ${partyKind === 'supplier' ? 'suppliers' : 'organizations'} WHERE id = ?`,
      [partyId],
    );
    if (!closed || !party) throw new NotFoundError(`${partyKind} statement`, `${month}/${partyId}`);
    const vatBp = Number(closed.vat_rate_bp);
    const empty = {
      partyName: party.name,
      lines: [],
      programmes: new Map(),
      amount: 0n,
      voucher: 0n,
      requests: 0,
      adjustments: 0,
    };
    return {
      month,
      partyKind,
      partyId,
      partyName: party.name,
      vatPercent: vatBp / 100,
      lines: [],
      programmes: [],
      totals: totalsOf(empty, vatBp),
    };
  }

  private async aggregate(db: SqlExecutor, month: string): Promise<AggregateRow[]> {
    return db.all<AggregateRow>(
      `SELECT u.organization_id, p.supplier_id, u.product_id, p.model, v.programme_id,
         CAST(u.price_input_micro_per_1m AS TEXT) AS price_in, CAST(u.price_output_micro_per_1m AS TEXT) AS price_out,
         t.late, COUNT(*) AS requests, SUM(u.prompt_tokens) AS prompt, SUM(u.completion_tokens) AS completion,
         CAST(SUM(x.payable) AS TEXT) AS payable, CAST(SUM(x.voucher) AS TEXT) AS voucher,
         CAST(SUM(x.wallet) AS TEXT) AS wallet, CAST(SUM(u.cost_micro_krw) AS TEXT) AS usage_cost
       FROM (SELECT id, request_id, CASE WHEN created_at < ? THEN 1 ELSE 0 END AS late FROM ledger_transactions
             WHERE settlement_month = ? AND kind = 'charge') t
       JOIN usage_events u ON u.request_id = t.request_id
       JOIN (SELECT e.transaction_id,
               SUM(CASE WHEN e.account_id LIKE 'payable:%' THEN e.amount_micro_krw ELSE 0 END) AS payable,
               SUM(CASE WHEN e.account_id LIKE 'voucher:%' THEN -e.amount_micro_krw ELSE 0 END) AS voucher,
               SUM(CASE WHEN e.account_id LIKE 'wallet:%' THEN -e.amount_micro_krw ELSE 0 END) AS wallet
             FROM ledger_entries e JOIN ledger_transactions t2 ON t2.id = e.transaction_id
             WHERE t2.settlement_month = ? AND t2.kind = 'charge'
             GROUP BY e.transaction_id) x ON x.transaction_id = t.id
       LEFT JOIN products p ON p.id = u.product_id
       LEFT JOIN vouchers v ON v.id = u.voucher_id
       GROUP BY u.organization_id, p.supplier_id, u.product_id, p.model, v.programme_id,
         u.price_input_micro_per_1m, u.price_output_micro_per_1m, t.late
       ORDER BY p.supplier_id, u.product_id, u.organization_id`,
      [kstMonthStart(month), month, month],
    );
  }

  private async totals(db: SqlExecutor, month: string): Promise<NonNullable<MonthSummary['totals']>> {
    let charges = 0;
    let amount = 0n;
    let voucher = 0n;
    let wallet = 0n;
    let usage = 0n;
    let adjustments = 0;
    for (const r of await this.aggregate(db, month)) {
      charges += Number(r.requests);
      amount += BigInt(r.payable);
      voucher += BigInt(r.voucher);
      wallet += BigInt(r.wallet);
      usage += BigInt(r.usage_cost);
      if (Number(r.late) === 1) adjustments += Number(r.requests);
    }
    return {
      charges,
      amountKrw: formatKrw(amount),
      voucherPartKrw: formatKrw(voucher),
      walletPartKrw: formatKrw(wallet),
      usageCostKrw: formatKrw(usage),
      adjustments,
    };
  }

  private async compute(db: SqlExecutor, month: string, vatBp: number): Promise<Statement[]> {
    const rows = await this.aggregate(db, month);
    const names = async (table: 'suppliers' | 'organizations' | 'programmes', ids: string[]) => {
      const map = new Map<string, string>();
      const unique = [...new Set(ids)];
      for (let i = 0; i < unique.length; i += 500) {
        const batch = unique.slice(i, i + 500);
        for (const r of await db.all<{ id: string; name: string }>(
          `SELECT id, name FROM ${table} WHERE id IN (${batch.map(() => '?').join(', ')})`,
          batch,
        ))
          map.set(r.id, r.name);
      }
      return map;
    };
    const supplierNames = await names(
      'suppliers',
      rows.flatMap((r) => (r.supplier_id ? [r.supplier_id] : [])),
    );
    const orgNames = await names(
      'organizations',
      rows.map((r) => r.organization_id),
    );
    const programmeNames = await names(
      'programmes',
      rows.flatMap((r) => (r.programme_id ? [r.programme_id] : [])),
    );

    const parties = new Map<string, Accumulator & { kind: 'supplier' | 'organization'; id: string }>();
    const party = (kind: 'supplier' | 'organization', id: string, name: string) => {
      const key = `${kind}:${id}`;
      let p = parties.get(key);
      if (p === undefined) {
        p = {
          kind,
          id,
          partyName: name,
          lines: [],
          programmes: new Map(),
          amount: 0n,
          voucher: 0n,
          requests: 0,
          adjustments: 0,
        };
        parties.set(key, p);
      }
      return p;
    };
    for (const r of rows) {
      const supplierId = r.supplier_id ?? 'unknown';
      const amount = BigInt(r.payable);
      const voucher = BigInt(r.voucher);
      const line = {
        productId: r.product_id,
        model: r.model ?? r.product_id,
        priceInputPer1M: formatKrw(BigInt(r.price_in)),
        priceOutputPer1M: formatKrw(BigInt(r.price_out)),
        adjustment: Number(r.late) === 1,
        requests: Number(r.requests),
        promptTokens: Number(r.prompt),
        completionTokens: Number(r.completion),
        amountKrw: formatKrw(amount),
        fromVouchersKrw: formatKrw(voucher),
        fromWalletKrw: formatKrw(BigInt(r.wallet)),
      };
      for (const [p, counterpartId] of [
        [party('supplier', supplierId, supplierNames.get(supplierId) ?? supplierId), r.organization_id],
        [
          party('organization', r.organization_id, orgNames.get(r.organization_id) ?? r.organization_id),
          supplierId,
        ],
      ] as const) {
        p.lines.push({ ...line, counterpartId });
        p.amount += amount;
        p.voucher += voucher;
        p.requests += line.requests;
        if (line.adjustment) p.adjustments += line.requests;
        if (r.programme_id !== null && voucher > 0n)
          p.programmes.set(r.programme_id, (p.programmes.get(r.programme_id) ?? 0n) + voucher);
      }
    }
    return [...parties.values()].map((p) => ({
      month,
      partyKind: p.kind,
      partyId: p.id,
      partyName: p.partyName,
      vatPercent: vatBp / 100,
      lines: p.lines,
      programmes: [...p.programmes].map(([programmeId, amount]) => ({
        programmeId,
        name: programmeNames.get(programmeId) ?? programmeId,
        amountKrw: formatKrw(amount),
      })),
      totals: totalsOf(p, vatBp),
    }));
  }
}
