import { gpuHoursText } from '../compute/units.ts';
import type { SqlExecutor } from '../storage/database.ts';
import { formatKrw } from './money.ts';

/**
 * GPU time on the organisation's side of settlement (decision 0026, docs/compute.md "Billing"). The
 * compute charges settled in a month (`compute_charges.settlement_month`, fixed when each is posted,
 * decision 0018) become lines of the organisation's statement beside its API usage. Read here, the way
 * settlement reads the catalogue's products and the accounts' organisations: a statement is a join over
 * the month's charges, and compute/charges.ts writes each charge's parts exactly as its ledger
 * transaction moves them (programme part from the funding programme's budget or outside funding,
 * organisation part from the wallet), so these sums are the ledger's.
 */

/** A line of GPU time on an organisation's statement: one per pool, call, programme, price and month kind. */
export interface ComputeStatementLine {
  poolId: string;
  poolName: string;
  gpuModel: string;
  /** The compute supplier (the pool's supplier). */
  computeSupplierId: string;
  computeSupplierName: string;
  callId: string;
  callName: string;
  /** The programme whose budget pays the programme part; null when the call names none (outside funding). */
  programmeId: string | null;
  programmeName: string | null;
  pricePerGpuHourKrw: string;
  /** Usage of an earlier, closed month charged late (its day is before this month). */
  adjustment: boolean;
  /** Compute charges on the line (each a ledger charge, or a GPU-seconds-only row worth 0 ₩). */
  charges: number;
  gpuSeconds: number;
  gpuHours: string;
  amountKrw: string;
  /** Paid by the programme (its budget, or outside funding), exact. */
  programmeKrw: string;
  /** Paid by the organisation's wallet (co-payment and what the budget could not pay), exact. */
  organizationKrw: string;
}

export interface ComputeLineRow {
  organizationId: string;
  line: ComputeStatementLine;
  amount: bigint;
  programme: bigint;
  organization: bigint;
  seconds: bigint;
}

/** The month's compute charges as organisation statement lines, every organisation's. */
export async function computeLinesOf(db: SqlExecutor, month: string): Promise<ComputeLineRow[]> {
  const rows = await db.all<{
    organization_id: string;
    pool_id: string;
    pool_name: string | null;
    gpu_model: string | null;
    supplier_id: string | null;
    supplier_name: string | null;
    call_id: string;
    call_name: string | null;
    programme_id: string | null;
    programme_name: string | null;
    price: string;
    late: number;
    charges: number;
    s: string;
    a: string;
    p: string;
    o: string;
  }>(
    `SELECT l.organization_id, l.pool_id, p.name AS pool_name, p.gpu_model, p.supplier_id, s.name AS supplier_name,
       l.call_id, k.name AS call_name, l.funding_programme_id AS programme_id, g.name AS programme_name,
       CAST(l.price_micro_krw_per_gpu_hour AS TEXT) AS price, c.late, COUNT(*) AS charges,
       CAST(SUM(c.gpu_seconds) AS TEXT) AS s, CAST(SUM(c.amount_micro_krw) AS TEXT) AS a,
       CAST(SUM(c.programme_micro_krw) AS TEXT) AS p, CAST(SUM(c.organization_micro_krw) AS TEXT) AS o
     FROM (SELECT allocation_id, gpu_seconds, amount_micro_krw, programme_micro_krw, organization_micro_krw,
             CASE WHEN day < ? THEN 1 ELSE 0 END AS late
           FROM compute_charges WHERE settlement_month = ?) c
     JOIN compute_allocations l ON l.id = c.allocation_id
     LEFT JOIN compute_pools p ON p.id = l.pool_id
     LEFT JOIN suppliers s ON s.id = p.supplier_id
     LEFT JOIN compute_calls k ON k.id = l.call_id
     LEFT JOIN programmes g ON g.id = l.funding_programme_id
     GROUP BY l.organization_id, l.pool_id, p.name, p.gpu_model, p.supplier_id, s.name, l.call_id, k.name,
       l.funding_programme_id, g.name, l.price_micro_krw_per_gpu_hour, c.late
     ORDER BY l.organization_id, p.supplier_id, l.pool_id, l.call_id, l.price_micro_krw_per_gpu_hour, c.late`,
    [`${month}-01`, month],
  );
  return rows.map((r) => {
    const seconds = BigInt(r.s);
    const amount = BigInt(r.a);
    const programme = BigInt(r.p);
    const organization = BigInt(r.o);
    return {
      organizationId: r.organization_id,
      amount,
      programme,
      organization,
      seconds,
      line: {
        poolId: r.pool_id,
        poolName: r.pool_name ?? r.pool_id,
        gpuModel: r.gpu_model ?? '',
        computeSupplierId: r.supplier_id ?? 'unknown',
        computeSupplierName: r.supplier_name ?? r.supplier_id ?? 'unknown',
        callId: r.call_id,
        callName: r.call_name ?? r.call_id,
        programmeId: r.programme_id,
        programmeName: r.programme_id === null ? null : (r.programme_name ?? r.programme_id),
        pricePerGpuHourKrw: formatKrw(BigInt(r.price)),
        adjustment: Number(r.late) === 1,
        charges: Number(r.charges),
        gpuSeconds: Number(seconds),
        gpuHours: gpuHoursText(seconds),
        amountKrw: formatKrw(amount),
        programmeKrw: formatKrw(programme),
        organizationKrw: formatKrw(organization),
      },
    };
  });
}
