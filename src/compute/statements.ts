import { formatKrw } from '../billing/money.ts';
import { roundToWon, vatOf } from '../billing/settlement.ts';
import { type Cell, decimalCell, writeCsv, writeXlsx } from '../billing/xlsx.ts';
import { NotFoundError, ValidationError } from '../errors.ts';
import type { Database } from '../storage/database.ts';
import { gpuHoursText } from './units.ts';

/**
 * A compute supplier's monthly statement (정산, docs/compute.md "Billing"): the GPU time charged on its
 * pools in a closed settlement month, by pool, organisation, call and price; what the programme pays
 * and what the organisations pay; rounded to the won as API statements are (billing/settlement.ts:
 * supply value half up, VAT truncated). Computed from the month's compute charges, which are
 * append-only and can no longer grow once the month is closed (a late charge lands in the next open
 * month, marked as an adjustment), and stored the first time it is read, as it was computed.
 */

export interface ComputeStatementLine {
  poolId: string;
  poolName: string;
  gpuModel: string;
  organizationId: string;
  callId: string;
  pricePerGpuHourKrw: string;
  /** Usage of an earlier, closed month charged late. */
  adjustment: boolean;
  gpuSeconds: number;
  gpuHours: string;
  amountKrw: string;
  programmeKrw: string;
  organizationKrw: string;
}

export interface ComputeStatement {
  month: string;
  supplierId: string;
  supplierName: string;
  vatPercent: number;
  lines: ComputeStatementLine[];
  totals: {
    gpuHours: string;
    amountKrw: string;
    supplyValueKrw: string;
    vatKrw: string;
    totalKrw: string;
    programmePartKrw: string;
    organizationPartKrw: string;
    adjustments: number;
  };
}

const MONTH = /^\d{4}-(0[1-9]|1[0-2])$/;

export class ComputeStatementService {
  constructor(private readonly db: Database) {}

  async statement(month: string, supplierId: string): Promise<ComputeStatement> {
    if (!MONTH.test(month)) throw ValidationError.of('month', 'expected a month, YYYY-MM (KST)');
    const stored = await this.db.get<{ statement_json: string }>(
      'SELECT statement_json FROM compute_statements WHERE month = ? AND supplier_id = ?',
      [month, supplierId],
    );
    if (stored) return JSON.parse(stored.statement_json) as ComputeStatement;
    const closed = await this.db.get<{ vat_rate_bp: number }>(
      "SELECT vat_rate_bp FROM settlement_months WHERE month = ? AND status = 'closed'",
      [month],
    );
    const supplier = await this.db.get<{ name: string }>('SELECT name FROM suppliers WHERE id = ?', [
      supplierId,
    ]);
    if (!closed || !supplier) throw new NotFoundError('compute statement', `${month}/${supplierId}`);
    const statement = await this.compute(month, supplierId, supplier.name, Number(closed.vat_rate_bp));
    await this.db.run(
      `INSERT INTO compute_statements (month, supplier_id, statement_json, created_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (month, supplier_id) DO NOTHING`,
      [month, supplierId, JSON.stringify(statement), Date.now()],
    );
    // two readers at once: both return the one stored
    const row = await this.db.get<{ statement_json: string }>(
      'SELECT statement_json FROM compute_statements WHERE month = ? AND supplier_id = ?',
      [month, supplierId],
    );
    return JSON.parse(row!.statement_json) as ComputeStatement;
  }

  private async compute(
    month: string,
    supplierId: string,
    supplierName: string,
    vatBp: number,
  ): Promise<ComputeStatement> {
    const rows = await this.db.all<{
      pool_id: string;
      pool_name: string;
      gpu_model: string;
      organization_id: string;
      call_id: string;
      price: string;
      late: number;
      s: string;
      a: string;
      p: string;
      o: string;
    }>(
      `SELECT l.pool_id, p.name AS pool_name, p.gpu_model, l.organization_id, l.call_id,
         CAST(l.price_micro_krw_per_gpu_hour AS TEXT) AS price, c.late,
         CAST(SUM(c.gpu_seconds) AS TEXT) AS s, CAST(SUM(c.amount_micro_krw) AS TEXT) AS a,
         CAST(SUM(c.programme_micro_krw) AS TEXT) AS p, CAST(SUM(c.organization_micro_krw) AS TEXT) AS o
       FROM (SELECT allocation_id, gpu_seconds, amount_micro_krw, programme_micro_krw, organization_micro_krw,
               CASE WHEN day < ? THEN 1 ELSE 0 END AS late
             FROM compute_charges WHERE settlement_month = ?) c
       JOIN compute_allocations l ON l.id = c.allocation_id JOIN compute_pools p ON p.id = l.pool_id
       WHERE p.supplier_id = ?
       GROUP BY l.pool_id, p.name, p.gpu_model, l.organization_id, l.call_id, l.price_micro_krw_per_gpu_hour, c.late
       ORDER BY l.pool_id, l.organization_id, l.call_id, c.late`,
      [`${month}-01`, month, supplierId],
    );
    let seconds = 0n;
    let amount = 0n;
    let programme = 0n;
    let adjustments = 0;
    const lines = rows.map((r) => {
      seconds += BigInt(r.s);
      amount += BigInt(r.a);
      programme += BigInt(r.p);
      if (Number(r.late) === 1) adjustments += 1;
      return {
        poolId: r.pool_id,
        poolName: r.pool_name,
        gpuModel: r.gpu_model,
        organizationId: r.organization_id,
        callId: r.call_id,
        pricePerGpuHourKrw: formatKrw(BigInt(r.price)),
        adjustment: Number(r.late) === 1,
        gpuSeconds: Number(r.s),
        gpuHours: gpuHoursText(BigInt(r.s)),
        amountKrw: formatKrw(BigInt(r.a)),
        programmeKrw: formatKrw(BigInt(r.p)),
        organizationKrw: formatKrw(BigInt(r.o)),
      };
    });
    const supply = roundToWon(amount);
    const programmePart = roundToWon(programme) > supply ? supply : roundToWon(programme);
    const vat = vatOf(supply, vatBp);
    return {
      month,
      supplierId,
      supplierName,
      vatPercent: vatBp / 100,
      lines,
      totals: {
        gpuHours: gpuHoursText(seconds),
        amountKrw: formatKrw(amount),
        supplyValueKrw: supply.toString(),
        vatKrw: vat.toString(),
        totalKrw: (supply + vat).toString(),
        programmePartKrw: programmePart.toString(),
        organizationPartKrw: (supply - programmePart).toString(),
        adjustments,
      },
    };
  }
}

function rowsOf(s: ComputeStatement): Cell[][] {
  const rows: Cell[][] = [
    [
      '풀 Pool',
      'GPU',
      '수요기관 Organization',
      '공모 Call',
      '단가 KRW/GPU-hour',
      '조정 Adjustment',
      'GPU 시간 GPU-hours',
      '금액 Amount (KRW)',
      '사업 부담 Programme (KRW)',
      '자부담 Organization (KRW)',
    ],
  ];
  for (const l of s.lines)
    rows.push([
      l.poolName,
      l.gpuModel,
      l.organizationId,
      l.callId,
      decimalCell(l.pricePerGpuHourKrw),
      l.adjustment ? '이전 달 / earlier month' : '',
      decimalCell(l.gpuHours),
      decimalCell(l.amountKrw),
      decimalCell(l.programmeKrw),
      decimalCell(l.organizationKrw),
    ]);
  const t = s.totals;
  rows.push([]);
  rows.push(['정산월 Month', s.month]);
  rows.push(['컴퓨팅 공급기업 Compute supplier', `${s.supplierName} (${s.supplierId})`]);
  rows.push(['GPU 시간 GPU-hours', t.gpuHours]);
  rows.push(['금액 Amount (KRW, exact)', t.amountKrw]);
  rows.push(['공급가액 Supply value (KRW)', decimalCell(t.supplyValueKrw)]);
  rows.push([`부가세 VAT ${s.vatPercent}% (KRW)`, decimalCell(t.vatKrw)]);
  rows.push(['합계 Total (KRW)', decimalCell(t.totalKrw)]);
  rows.push(['사업 부담 Programme part (KRW)', decimalCell(t.programmePartKrw)]);
  rows.push(['기관 부담 Organization part (KRW)', decimalCell(t.organizationPartKrw)]);
  return rows;
}

export function computeStatementCsv(s: ComputeStatement): string {
  return writeCsv(rowsOf(s));
}

export function computeStatementXlsx(s: ComputeStatement): Buffer {
  return writeXlsx([{ name: `${s.month} compute`, rows: rowsOf(s) }]);
}

export const computeStatementFilename = (s: ComputeStatement, extension: 'csv' | 'xlsx') =>
  `컴퓨팅정산-${s.month}-${s.supplierId}.${extension}`;
