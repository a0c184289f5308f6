import { z } from 'zod';
import type { AuditTrail } from '../audit/audit-log.ts';
import { gpuHoursText } from '../compute/units.ts';
import { ConflictError, NotFoundError, ValidationError } from '../errors.ts';
import { kstMonth, kstMonthStart } from '../kst.ts';
import type { Database, SqlExecutor } from '../storage/database.ts';
import { parseInput } from '../validation.ts';
import { formatKrw, MICRO_PER_KRW, type MicroKrw } from './money.ts';
import { type ComputeStatementLine, computeLinesOf } from './settlement-compute.ts';

/**
 * Monthly settlement (정산, docs/billing.md): the operator closes a month; the hub computes, from the
 * ledger's charges settled in that month, a statement per supplier (usage by product and price, what
 * to claim from each programme, what organisations paid) and per organisation (usage by product and
 * price, voucher used, co-payment, and its GPU time: decision 0026), and keeps them as they were
 * computed. A closed month never changes: a charge that arrives later lands in the next open month,
 * marked as an adjustment.
 *
 * Rounding to the won (the only rounding; amounts inside are exact µ₩), once per statement over all
 * its lines — an organisation's API usage and GPU time together:
 * - 공급가액 (supply value) = the statement's exact amount rounded half up to the won;
 * - 프로그램 청구액 / voucher part = the programme-paid amount rounded half up to the won; the
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

/** "1250.5" (formatKrw's text) → µ₩; for totals stored as text, which have no upper bound here. */
function microOf(text: string): MicroKrw {
  const negative = text.startsWith('-');
  const [whole = '0', fraction = ''] = (negative ? text.slice(1) : text).split('.');
  const micro = BigInt(whole) * MICRO_PER_KRW + BigInt(fraction.padEnd(6, '0') || '0');
  return negative ? -micro : micro;
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

export type { ComputeStatementLine } from './settlement-compute.ts';

/**
 * The shape of organisation statements and month summaries computed since decision 0026 (with GPU
 * time). Statements and summaries stored before carry no `version`: they are returned as stored.
 */
export const SETTLEMENT_VERSION = 2;

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
  /**
   * Of the supply value: what the programmes pay, won — their vouchers, and on version 2 organisation
   * statements also their budgets (or outside funding) for GPU time.
   */
  voucherPartKrw: string;
  /** Of the supply value: what the organisations pay (co-payment and self-pay), won. */
  organizationPartKrw: string;
  /**
   * Charges marked as adjustments: late API requests, and on version 2 organisation statements late
   * compute charges too (one charge each).
   */
  adjustments: number;
  /** Version 2 organisation statements: what the programmes paid, exact (the ledger's figure). */
  fromProgrammesKrw?: string;
  /** Version 2 organisation statements: what the organisation's wallet paid, exact (the ledger's figure). */
  fromWalletKrw?: string;
}

/** Version 2 organisation statements: each kind of line summed, exact, before the one rounding. */
export interface StatementSubtotals {
  api: {
    requests: number;
    amountKrw: string;
    fromVouchersKrw: string;
    fromWalletKrw: string;
    adjustments: number;
  };
  compute: {
    charges: number;
    gpuHours: string;
    amountKrw: string;
    programmeKrw: string;
    organizationKrw: string;
    adjustments: number;
  };
}

export interface Statement {
  /** 2: an organisation statement with GPU time. Absent: stored before decision 0026 (API lines only). */
  version?: typeof SETTLEMENT_VERSION;
  month: string;
  partyKind: 'supplier' | 'organization';
  partyId: string;
  partyName: string;
  vatPercent: number;
  /** API usage, by product, price and counterpart. */
  lines: StatementLine[];
  /** Version 2 organisation statements: GPU time (compute charges), by pool, call, programme and price. */
  computeLines?: ComputeStatementLine[];
  /**
   * Supplier statements: what to claim from each programme (voucher-paid), exact. Organisation
   * statements: what each programme paid for the organisation (vouchers; since version 2 also budgets
   * for GPU time), exact.
   */
  programmes: { programmeId: string; name: string; amountKrw: string }[];
  subtotals?: StatementSubtotals;
  /** Over every line of the statement (both kinds), rounded to the won once. */
  totals: StatementTotals;
}

/** The month's API usage charges (what `totals` always was). */
export interface ApiMonthTotals {
  charges: number;
  amountKrw: string;
  voucherPartKrw: string;
  walletPartKrw: string;
  /** Σ usage_events.cost of the charges: equal to the amount, or the month does not reconcile. */
  usageCostKrw: string;
  adjustments: number;
}

/** The month's compute charges (GPU time). */
export interface ComputeMonthTotals {
  charges: number;
  gpuHours: string;
  amountKrw: string;
  /** Paid by programme budgets (or outside funding). */
  programmePartKrw: string;
  walletPartKrw: string;
  adjustments: number;
}

/** API usage and GPU time together: what the month's charges moved. */
export interface CombinedMonthTotals {
  charges: number;
  amountKrw: string;
  /** Vouchers and programme budgets (or outside funding). */
  programmePartKrw: string;
  walletPartKrw: string;
  adjustments: number;
}

export interface MonthSummary {
  month: string;
  status: 'open' | 'closing' | 'closed';
  closedAt: string | null;
  closedBy: string | null;
  vatPercent: number | null;
  /** API usage (null while closing). */
  totals: ApiMonthTotals | null;
  /** GPU time (null while closing). */
  computeTotals: ComputeMonthTotals | null;
  /** Both (null while closing). */
  combinedTotals: CombinedMonthTotals | null;
  /**
   * Whether the month's organisation statements carry GPU time: false for months closed before
   * decision 0026 (their statements are kept as stored; their GPU time is in `computeTotals` and on
   * the compute suppliers' statements).
   */
  computeOnStatements: boolean;
  statements: { partyKind: string; partyId: string; partyName: string; totalKrw: string }[];
}

/** The month summary as stored in `settlement_months.summary_json` since decision 0026. */
interface StoredSummary {
  version: typeof SETTLEMENT_VERSION;
  api: ApiMonthTotals;
  compute: ComputeMonthTotals;
  combined: CombinedMonthTotals;
}

interface ApiSums {
  charges: number;
  amount: bigint;
  voucher: bigint;
  wallet: bigint;
  usage: bigint;
  adjustments: number;
}

interface ComputeSums {
  charges: number;
  seconds: bigint;
  amount: bigint;
  programme: bigint;
  wallet: bigint;
  adjustments: number;
}

const NO_API: ApiSums = { charges: 0, amount: 0n, voucher: 0n, wallet: 0n, usage: 0n, adjustments: 0 };
const NO_COMPUTE: ComputeSums = {
  charges: 0,
  seconds: 0n,
  amount: 0n,
  programme: 0n,
  wallet: 0n,
  adjustments: 0,
};

function apiTotals(s: ApiSums): ApiMonthTotals {
  return {
    charges: s.charges,
    amountKrw: formatKrw(s.amount),
    voucherPartKrw: formatKrw(s.voucher),
    walletPartKrw: formatKrw(s.wallet),
    usageCostKrw: formatKrw(s.usage),
    adjustments: s.adjustments,
  };
}

function computeTotals(s: ComputeSums): ComputeMonthTotals {
  return {
    charges: s.charges,
    gpuHours: gpuHoursText(s.seconds),
    amountKrw: formatKrw(s.amount),
    programmePartKrw: formatKrw(s.programme),
    walletPartKrw: formatKrw(s.wallet),
    adjustments: s.adjustments,
  };
}

/** Combined from the two as formatted: a stored API part (months before 0026) is only text. */
function combinedTotals(api: ApiMonthTotals, compute: ComputeMonthTotals): CombinedMonthTotals {
  return {
    charges: api.charges + compute.charges,
    amountKrw: formatKrw(microOf(api.amountKrw) + microOf(compute.amountKrw)),
    programmePartKrw: formatKrw(microOf(api.voucherPartKrw) + microOf(compute.programmePartKrw)),
    walletPartKrw: formatKrw(microOf(api.walletPartKrw) + microOf(compute.walletPartKrw)),
    adjustments: api.adjustments + compute.adjustments,
  };
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

/** What one statement sums while it is built. */
interface Accumulator {
  partyName: string;
  lines: StatementLine[];
  computeLines: ComputeStatementLine[];
  programmes: Map<string, bigint>;
  /** API usage. */
  amount: bigint;
  voucher: bigint;
  wallet: bigint;
  requests: number;
  adjustments: number;
  /** GPU time. */
  compute: ComputeSums;
}

function emptyAccumulator(partyName: string): Accumulator {
  return {
    partyName,
    lines: [],
    computeLines: [],
    programmes: new Map(),
    amount: 0n,
    voucher: 0n,
    wallet: 0n,
    requests: 0,
    adjustments: 0,
    compute: { ...NO_COMPUTE },
  };
}

/** The one rounding to the won of a statement's exact amount and programme-paid part. */
function rounded(
  amount: MicroKrw,
  programme: MicroKrw,
  vatBp: number,
): Pick<
  StatementTotals,
  | 'amountMicroKrw'
  | 'amountKrw'
  | 'supplyValueKrw'
  | 'vatKrw'
  | 'totalKrw'
  | 'voucherPartKrw'
  | 'organizationPartKrw'
> {
  const supply = roundToWon(amount);
  const programmePart = roundToWon(programme) > supply ? supply : roundToWon(programme);
  const vat = vatOf(supply, vatBp);
  return {
    amountMicroKrw: amount.toString(),
    amountKrw: formatKrw(amount),
    supplyValueKrw: supply.toString(),
    vatKrw: vat.toString(),
    totalKrw: (supply + vat).toString(),
    voucherPartKrw: programmePart.toString(),
    organizationPartKrw: (supply - programmePart).toString(),
  };
}

/** API usage only: a supplier's statement, and an organisation's in a month closed before decision 0026. */
function apiOnlyTotals(a: Accumulator, vatBp: number): StatementTotals {
  const r = rounded(a.amount, a.voucher, vatBp);
  return { requests: a.requests, ...r, adjustments: a.adjustments };
}

/** An organisation's statement: API usage and GPU time, summed exactly, rounded once. */
function organizationTotals(a: Accumulator, vatBp: number): StatementTotals {
  const programme = a.voucher + a.compute.programme;
  const r = rounded(a.amount + a.compute.amount, programme, vatBp);
  return {
    requests: a.requests,
    ...r,
    adjustments: a.adjustments + a.compute.adjustments,
    fromProgrammesKrw: formatKrw(programme),
    fromWalletKrw: formatKrw(a.wallet + a.compute.wallet),
  };
}

function subtotalsOf(a: Accumulator): StatementSubtotals {
  return {
    api: {
      requests: a.requests,
      amountKrw: formatKrw(a.amount),
      fromVouchersKrw: formatKrw(a.voucher),
      fromWalletKrw: formatKrw(a.wallet),
      adjustments: a.adjustments,
    },
    compute: {
      charges: a.compute.charges,
      gpuHours: gpuHoursText(a.compute.seconds),
      amountKrw: formatKrw(a.compute.amount),
      programmeKrw: formatKrw(a.compute.programme),
      organizationKrw: formatKrw(a.compute.wallet),
      adjustments: a.compute.adjustments,
    },
  };
}

function statementOf(
  month: string,
  kind: 'supplier' | 'organization',
  id: string,
  a: Accumulator,
  vatBp: number,
  programmeNames: ReadonlyMap<string, string>,
  /** False only for an organisation in a month closed before decision 0026: its statements' old shape. */
  withCompute = true,
): Statement {
  const programmes = [...a.programmes].map(([programmeId, amount]) => ({
    programmeId,
    name: programmeNames.get(programmeId) ?? programmeId,
    amountKrw: formatKrw(amount),
  }));
  if (kind === 'supplier' || !withCompute)
    return {
      month,
      partyKind: kind,
      partyId: id,
      partyName: a.partyName,
      vatPercent: vatBp / 100,
      lines: a.lines,
      programmes,
      totals: apiOnlyTotals(a, vatBp),
    };
  return {
    version: SETTLEMENT_VERSION,
    month,
    partyKind: kind,
    partyId: id,
    partyName: a.partyName,
    vatPercent: vatBp / 100,
    lines: a.lines,
    computeLines: a.computeLines,
    programmes,
    subtotals: subtotalsOf(a),
    totals: organizationTotals(a, vatBp),
  };
}

/** `(SELECT month, start_ms, first_day …)`: the months asked for, as a table both engines read. */
function monthsTable(months: readonly string[]): { sql: string; params: (string | number)[] } {
  return {
    sql: months
      .map(
        () => 'SELECT CAST(? AS TEXT) AS month, CAST(? AS BIGINT) AS start_ms, CAST(? AS TEXT) AS first_day',
      )
      .join(' UNION ALL '),
    params: months.flatMap((m) => [m, kstMonthStart(m), `${m}-01`]),
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
   * waits for charges in flight — API usage and compute charges alike take its row for share when they
   * pick their settlement month (ledger.ts `settlementMonths`); from then on new charges of that month
   * go to the next one. Then the statements are computed and stored, and the month is `closed` —
   * retried from there if it failed.
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
      const sums = await this.sums(tx, [v.month], [v.month]);
      const api = apiTotals(sums.api.get(v.month) ?? NO_API);
      const compute = computeTotals(sums.compute.get(v.month) ?? NO_COMPUTE);
      const summary: StoredSummary = {
        version: SETTLEMENT_VERSION,
        api,
        compute,
        combined: combinedTotals(api, compute),
      };
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
  async month(month: string): Promise<MonthSummary> {
    requireMonth(month);
    const [summary] = await this.summaries(month);
    if (!summary) throw new NotFoundError('settlement month', month);
    return summary;
  }

  /** Every month, newest first: two queries, however many months (see `summaries`). */
  async months(): Promise<MonthSummary[]> {
    return this.summaries();
  }

  /**
   * Month summaries (all, or one): the months with their statements' index in one query (each
   * statement's name and total read from its JSON by the database, not shipped whole), then, only for
   * months that need it, the totals so far in a second — API and compute of open months, compute of
   * months closed before decision 0026 (a closed month's compute charges can no longer change, so
   * that figure is as fixed as a stored one).
   */
  private async summaries(only?: string): Promise<MonthSummary[]> {
    const json =
      this.db.dialect === 'postgres'
        ? {
            name: "CAST(s.statement_json AS json) ->> 'partyName'",
            total: "CAST(s.statement_json AS json) #>> '{totals,totalKrw}'",
          }
        : {
            name: "json_extract(s.statement_json, '$.partyName')",
            total: "json_extract(s.statement_json, '$.totals.totalKrw')",
          };
    const rows = await this.db.all<{
      month: string;
      status: MonthSummary['status'];
      closed_at: number | null;
      closed_by: string | null;
      vat_rate_bp: number | null;
      summary_json: string | null;
      party_kind: string | null;
      party_id: string | null;
      party_name: string | null;
      total_krw: string | null;
    }>(
      `SELECT m.month, m.status, m.closed_at, m.closed_by, m.vat_rate_bp, m.summary_json,
         s.party_kind, s.party_id, ${json.name} AS party_name, ${json.total} AS total_krw
       FROM settlement_months m LEFT JOIN settlement_statements s ON s.month = m.month
       ${only === undefined ? '' : 'WHERE m.month = ?'}
       ORDER BY m.month DESC, s.party_kind, s.party_id`,
      only === undefined ? [] : [only],
    );
    const months: (Omit<MonthSummary, 'totals' | 'computeTotals' | 'combinedTotals'> & {
      stored: StoredSummary | ApiMonthTotals | null;
    })[] = [];
    for (const r of rows) {
      let m = months.at(-1);
      if (m?.month !== r.month) {
        const stored =
          r.summary_json === null ? null : (JSON.parse(r.summary_json) as StoredSummary | ApiMonthTotals);
        m = {
          month: r.month,
          status: r.status,
          closedAt: r.closed_at === null ? null : new Date(Number(r.closed_at)).toISOString(),
          closedBy: r.closed_by,
          vatPercent: r.vat_rate_bp === null ? null : Number(r.vat_rate_bp) / 100,
          computeOnStatements: stored === null || 'version' in stored,
          statements: [],
          stored,
        };
        months.push(m);
      }
      if (r.party_kind !== null)
        m.statements.push({
          partyKind: r.party_kind,
          partyId: r.party_id!,
          partyName: r.party_name ?? r.party_id!,
          totalKrw: String(r.total_krw),
        });
    }
    const open = months.filter((m) => m.stored === null && m.status === 'open').map((m) => m.month);
    const legacy = months.filter((m) => m.stored !== null && !('version' in m.stored)).map((m) => m.month);
    const sums = await this.sums(this.db, open, [...open, ...legacy]);
    return months.map(({ stored, ...m }) => {
      if (stored !== null && 'version' in stored)
        return { ...m, totals: stored.api, computeTotals: stored.compute, combinedTotals: stored.combined };
      if (stored === null && m.status !== 'open')
        return { ...m, totals: null, computeTotals: null, combinedTotals: null };
      const api = stored ?? apiTotals(sums.api.get(m.month) ?? NO_API);
      const compute = computeTotals(sums.compute.get(m.month) ?? NO_COMPUTE);
      return { ...m, totals: api, computeTotals: compute, combinedTotals: combinedTotals(api, compute) };
    });
  }

  /**
   * What the charges settled in these months add up to, per month, in one query: API usage charges
   * (ledger charges with a usage record, as the statements count them) for `apiMonths`, compute charges
   * for `computeMonths`. A charge is an adjustment when it belongs to an earlier month: an API charge
   * made before the month began, a compute charge for a day before it.
   */
  private async sums(
    db: SqlExecutor,
    apiMonths: readonly string[],
    computeMonths: readonly string[],
  ): Promise<{ api: Map<string, ApiSums>; compute: Map<string, ComputeSums> }> {
    const api = new Map<string, ApiSums>();
    const compute = new Map<string, ComputeSums>();
    const parts: string[] = [];
    const params: (string | number)[] = [];
    if (apiMonths.length > 0) {
      const table = monthsTable(apiMonths);
      parts.push(
        `SELECT 'api' AS kind, t.settlement_month AS month, COUNT(*) AS charges,
           SUM(CASE WHEN t.created_at < ms.start_ms THEN 1 ELSE 0 END) AS late, '0' AS seconds,
           CAST(SUM(x.payable) AS TEXT) AS amount, CAST(SUM(x.voucher) AS TEXT) AS programme,
           CAST(SUM(x.wallet) AS TEXT) AS wallet, CAST(SUM(u.cost_micro_krw) AS TEXT) AS usage_cost
         FROM (${table.sql}) ms
         JOIN ledger_transactions t ON t.settlement_month = ms.month AND t.kind = 'charge'
         JOIN usage_events u ON u.request_id = t.request_id
         JOIN (SELECT e.transaction_id,
                 SUM(CASE WHEN e.account_id LIKE 'payable:%' THEN e.amount_micro_krw ELSE 0 END) AS payable,
                 SUM(CASE WHEN e.account_id LIKE 'voucher:%' THEN -e.amount_micro_krw ELSE 0 END) AS voucher,
                 SUM(CASE WHEN e.account_id LIKE 'wallet:%' THEN -e.amount_micro_krw ELSE 0 END) AS wallet
               FROM ledger_entries e JOIN ledger_transactions t2 ON t2.id = e.transaction_id
               WHERE t2.settlement_month IN (${apiMonths.map(() => '?').join(', ')}) AND t2.kind = 'charge'
               GROUP BY e.transaction_id) x ON x.transaction_id = t.id
         GROUP BY t.settlement_month`,
      );
      params.push(...table.params, ...apiMonths);
    }
    if (computeMonths.length > 0) {
      const table = monthsTable(computeMonths);
      parts.push(
        `SELECT 'compute' AS kind, c.settlement_month AS month, COUNT(*) AS charges,
           SUM(CASE WHEN c.day < ms.first_day THEN 1 ELSE 0 END) AS late,
           CAST(SUM(c.gpu_seconds) AS TEXT) AS seconds, CAST(SUM(c.amount_micro_krw) AS TEXT) AS amount,
           CAST(SUM(c.programme_micro_krw) AS TEXT) AS programme,
           CAST(SUM(c.organization_micro_krw) AS TEXT) AS wallet, '0' AS usage_cost
         FROM (${table.sql}) ms JOIN compute_charges c ON c.settlement_month = ms.month
         GROUP BY c.settlement_month`,
      );
      params.push(...table.params);
    }
    if (parts.length === 0) return { api, compute };
    for (const r of await db.all<{
      kind: 'api' | 'compute';
      month: string;
      charges: number;
      late: number;
      seconds: string;
      amount: string;
      programme: string;
      wallet: string;
      usage_cost: string;
    }>(parts.join(' UNION ALL '), params)) {
      if (r.kind === 'api')
        api.set(r.month, {
          charges: Number(r.charges),
          amount: BigInt(r.amount),
          voucher: BigInt(r.programme),
          wallet: BigInt(r.wallet),
          usage: BigInt(r.usage_cost),
          adjustments: Number(r.late),
        });
      else
        compute.set(r.month, {
          charges: Number(r.charges),
          seconds: BigInt(r.seconds),
          amount: BigInt(r.amount),
          programme: BigInt(r.programme),
          wallet: BigInt(r.wallet),
          adjustments: Number(r.late),
        });
    }
    return { api, compute };
  }

  /**
   * A stored statement of a closed month, returned exactly as stored (one stored before decision 0026
   * has no `version` and no GPU time). A party without charges that month gets an empty one (its
   * statement says so: a month closed since 0026 stored a statement for every organisation with API
   * usage or GPU time), a month not closed yet a 404.
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
    const closed = await this.db.get<{ vat_rate_bp: number; summary_json: string | null }>(
      "SELECT vat_rate_bp, summary_json FROM settlement_months WHERE month = ? AND status = 'closed'",
      [month],
    );
    const party = await this.db.get<{ name: string }>(
      `SELECT name FROM ${partyKind === 'supplier' ? 'suppliers' : 'organizations'} WHERE id = ?`,
      [partyId],
    );
    if (!closed || !party) throw new NotFoundError(`${partyKind} statement`, `${month}/${partyId}`);
    const vatBp = Number(closed.vat_rate_bp);
    // a month closed before 0026: an organisation's empty statement in the shape its stored ones have
    const since0026 = closed.summary_json !== null && 'version' in JSON.parse(closed.summary_json);
    return statementOf(month, partyKind, partyId, emptyAccumulator(party.name), vatBp, new Map(), since0026);
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

  private async compute(db: SqlExecutor, month: string, vatBp: number): Promise<Statement[]> {
    const rows = await this.aggregate(db, month);
    const computeRows = await computeLinesOf(db, month);
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
    const orgNames = await names('organizations', [
      ...rows.map((r) => r.organization_id),
      ...computeRows.map((r) => r.organizationId),
    ]);
    const programmeNames = await names(
      'programmes',
      rows.flatMap((r) => (r.programme_id ? [r.programme_id] : [])),
    );
    for (const r of computeRows)
      if (r.line.programmeId !== null && r.line.programmeName !== null)
        programmeNames.set(r.line.programmeId, r.line.programmeName);

    const parties = new Map<string, Accumulator & { kind: 'supplier' | 'organization'; id: string }>();
    const party = (kind: 'supplier' | 'organization', id: string, name: string) => {
      const key = `${kind}:${id}`;
      let p = parties.get(key);
      if (p === undefined) {
        p = { kind, id, ...emptyAccumulator(name) };
        parties.set(key, p);
      }
      return p;
    };
    for (const r of rows) {
      const supplierId = r.supplier_id ?? 'unknown';
      const amount = BigInt(r.payable);
      const voucher = BigInt(r.voucher);
      const wallet = BigInt(r.wallet);
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
        fromWalletKrw: formatKrw(wallet),
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
        p.wallet += wallet;
        p.requests += line.requests;
        if (line.adjustment) p.adjustments += line.requests;
        if (r.programme_id !== null && voucher > 0n)
          p.programmes.set(r.programme_id, (p.programmes.get(r.programme_id) ?? 0n) + voucher);
      }
    }
    // GPU time is the organisation's side only: the compute supplier's is its compute statement
    for (const r of computeRows) {
      const p = party('organization', r.organizationId, orgNames.get(r.organizationId) ?? r.organizationId);
      p.computeLines.push(r.line);
      p.compute.charges += r.line.charges;
      p.compute.seconds += r.seconds;
      p.compute.amount += r.amount;
      p.compute.programme += r.programme;
      p.compute.wallet += r.organization;
      if (r.line.adjustment) p.compute.adjustments += r.line.charges;
      if (r.line.programmeId !== null && r.programme > 0n)
        p.programmes.set(r.line.programmeId, (p.programmes.get(r.line.programmeId) ?? 0n) + r.programme);
    }
    return [...parties.values()].map((p) => statementOf(month, p.kind, p.id, p, vatBp, programmeNames));
  }
}
