import {
  accountId,
  balancesOf,
  postTransaction,
  settlementMonthOf,
  voucherShare,
} from '../billing/ledger.ts';
import { dayOfText, dayStartMs } from '../kst.ts';
import type { Dialect, SqlExecutor } from '../storage/database.ts';
import { newId } from '../storage/ids.ts';
import { gpuCost, gpuHoursText } from './units.ts';

/**
 * GPU time on the ledger (docs/compute.md "Billing"). An allocation-day is charged for its GPU-seconds
 * at the price the grant was made at: cost = seconds × price per GPU-hour ÷ 3600, rounded half up to the
 * µ₩ on the day's total. Usage of a day can grow after it was first charged (a job still running, a
 * late record), so each pass charges the difference between the day's cost now and what was charged
 * for it before — a new charge, never an edit. A day whose usage shrank is not refunded here: that is
 * a correction for the operator (recorded as an event).
 *
 * Each charge moves money the way a voucher charge does (billing/ledger.ts): the programme pays
 * ⌊C·(1−r)⌋ with r the call's co-payment ratio, from the funding programme's budget as far as it goes
 * (or from outside the budgets when the call names none), the organisation's wallet the rest, and the
 * compute supplier's payable receives C. Settled in the day's KST month, or the first open month
 * after it once that one is closed (decision 0018).
 */

export interface ChargeTarget {
  allocationId: string;
  organizationId: string;
  supplierId: string;
  priceMicroKrwPerGpuHour: bigint;
  copayBp: number;
  fundingProgrammeId: string | null;
}

export interface ChargeOutcome {
  allocationId: string;
  day: string;
  gpuSeconds: bigint;
  amountMicroKrw: bigint;
}

/**
 * Charges what is not yet charged of these allocation-days. The caller holds the allocations' rows
 * locked (compute/usage.ts), so two passes over the same day cannot both charge the difference.
 */
export async function chargeDays(
  tx: SqlExecutor,
  dialect: Dialect,
  targets: ReadonlyMap<string, ChargeTarget>,
  days: readonly { allocationId: string; day: string }[],
  now: number,
): Promise<{ charged: ChargeOutcome[]; shrank: ChargeOutcome[] }> {
  const charged: ChargeOutcome[] = [];
  const shrank: ChargeOutcome[] = [];
  for (const { allocationId, day } of days) {
    const t = targets.get(allocationId);
    if (!t) continue;
    const used = await tx.get<{ s: string | null }>(
      'SELECT CAST(gpu_seconds AS TEXT) AS s FROM compute_usage_daily WHERE allocation_id = ? AND day = ?',
      [allocationId, day],
    );
    const before = await tx.get<{ s: string | null; a: string | null }>(
      `SELECT CAST(SUM(gpu_seconds) AS TEXT) AS s, CAST(SUM(amount_micro_krw) AS TEXT) AS a FROM compute_charges
       WHERE allocation_id = ? AND day = ?`,
      [allocationId, day],
    );
    const seconds = BigInt(used?.s ?? '0');
    const chargedSeconds = BigInt(before?.s ?? '0');
    const chargedAmount = BigInt(before?.a ?? '0');
    const deltaSeconds = seconds - chargedSeconds;
    const deltaAmount = gpuCost(seconds, t.priceMicroKrwPerGpuHour) - chargedAmount;
    if (deltaSeconds === 0n && deltaAmount === 0n) continue;
    if (deltaSeconds < 0n || deltaAmount < 0n) {
      shrank.push({ allocationId, day, gpuSeconds: deltaSeconds, amountMicroKrw: deltaAmount });
      continue;
    }
    const dayMs = dayStartMs(dayOfText(day));
    const month = await settlementMonthOf(tx, dialect, dayMs);
    const funding =
      t.fundingProgrammeId === null ? accountId.funding : accountId.programme(t.fundingProgrammeId);
    let programmePart = voucherShare(deltaAmount, t.copayBp);
    if (t.fundingProgrammeId !== null) {
      // a budget never goes below zero: what it cannot pay is the organisation's
      const left = (await balancesOf(tx, [funding])).get(funding) ?? 0n;
      if (programmePart > left) programmePart = left > 0n ? left : 0n;
    }
    const organizationPart = deltaAmount - programmePart;
    const id = newId('gch');
    let transactionId: string | null = null;
    if (deltaAmount > 0n) {
      transactionId = await postTransaction(tx, dialect, {
        kind: 'charge',
        createdAtMs: now,
        requestId: `compute:${id}`,
        memo: `GPU ${gpuHoursText(deltaSeconds)} h, allocation ${allocationId}, ${day}`,
        settlementMonth: month,
        entries: [
          { accountId: funding, amount: -programmePart },
          { accountId: accountId.wallet(t.organizationId), amount: -organizationPart },
          { accountId: accountId.payable(t.supplierId), amount: deltaAmount },
        ],
      });
    }
    await tx.run(
      `INSERT INTO compute_charges (id, allocation_id, day, gpu_seconds, amount_micro_krw, programme_micro_krw,
         organization_micro_krw, transaction_id, settlement_month, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        id,
        allocationId,
        day,
        deltaSeconds,
        deltaAmount,
        programmePart,
        organizationPart,
        transactionId,
        month,
        now,
      ],
    );
    charged.push({ allocationId, day, gpuSeconds: deltaSeconds, amountMicroKrw: deltaAmount });
  }
  return { charged, shrank };
}
