import type { SqlExecutor } from '../storage/database.ts';
import { newId } from '../storage/ids.ts';
import { formatKrw, type MicroKrw } from './money.ts';

/** How much of a voucher used raises an alert (issue 13: "e.g. 80 % and 100 %"). */
export const VOUCHER_ALERT_PERCENTS = [80, 100] as const;

export interface VoucherMovement {
  voucherId: string;
  organizationId: string;
  amount: MicroKrw;
  balanceBefore: MicroKrw;
  balanceAfter: MicroKrw;
}

/** The thresholds a charge carried a voucher across, lowest first. */
export function crossedThresholds(m: VoucherMovement): number[] {
  if (m.amount <= 0n) return [];
  const usedBefore = m.amount - m.balanceBefore;
  const usedAfter = m.amount - m.balanceAfter;
  return VOUCHER_ALERT_PERCENTS.filter((percent) => {
    // used ≥ percent % of amount, in integers: used × 100 ≥ amount × percent
    const line = m.amount * BigInt(percent);
    return usedBefore * 100n < line && usedAfter * 100n >= line;
  });
}

/**
 * Records the alert events of these voucher movements, inside the transaction that charged them: an
 * event exists exactly when the charge that crossed its threshold does, and at most once per voucher
 * and threshold (`dedupe_key`). Each event gets a pending delivery for every webhook the organisation
 * has; the dispatcher sends them later, never on the request path.
 */
export async function recordVoucherAlerts(
  tx: SqlExecutor,
  movements: readonly VoucherMovement[],
  now: number,
): Promise<void> {
  for (const m of movements) {
    for (const percent of crossedThresholds(m)) {
      const id = newId('evt');
      const payload = {
        voucherId: m.voucherId,
        percentUsed: percent,
        amountKrw: formatKrw(m.amount),
        balanceKrw: formatKrw(m.balanceAfter < 0n ? 0n : m.balanceAfter),
      };
      const inserted = await tx.all(
        `INSERT INTO organization_events (id, organization_id, kind, dedupe_key, payload_json, created_at)
         VALUES (?, ?, 'voucher.threshold', ?, ?, ?) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id`,
        [id, m.organizationId, `voucher:${m.voucherId}:${percent}`, JSON.stringify(payload), now],
      );
      if (inserted.length === 0) continue;
      await tx.run(
        `INSERT INTO webhook_deliveries (event_id, webhook_id, status, attempts, next_attempt_at)
         SELECT ?, id, 'pending', 0, ? FROM webhooks WHERE organization_id = ? AND disabled_at IS NULL`,
        [id, now, m.organizationId],
      );
    }
  }
}
