import assert from 'node:assert/strict';
import type { TestHub } from './hub.ts';

/**
 * Makes `organizationId` a prepaid organisation paying through a voucher with 20 % co-payment (KRW
 * 100,000) and a wallet (KRW 100,000): every call is held, charged to both and capped by them.
 */
export async function fundWithVoucher(
  hub: Pick<TestHub, 'admin'>,
  organizationId: string,
  name: string,
  onExhausted: 'block' | 'self-pay' = 'self-pay',
): Promise<{ programmeId: string; voucherId: string }> {
  const must = async (method: string, path: string, body: unknown) => {
    const r = await hub.admin(method, path, body);
    assert.ok(r.status === 200 || r.status === 201, `${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  const programme = await must('POST', '/programmes', {
    name,
    startsOn: '2026-01-01',
    endsOn: '2030-12-31',
    budgetKrw: '1000000',
    copayPercent: { sme: 20 },
    onExhausted,
  });
  const voucher = await must('POST', `/programmes/${programme.id}/vouchers`, {
    organizationId,
    amountKrw: '100000',
  });
  await must('POST', `/organizations/${organizationId}/deposits`, { amountKrw: '100000' });
  await must('PATCH', `/organizations/${organizationId}`, { spendMode: 'prepaid' });
  return { programmeId: programme.id, voucherId: voucher.id };
}
