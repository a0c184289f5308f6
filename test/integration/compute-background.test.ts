import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { dayIndex, dayText } from '../../src/compute/units.ts';
import { call, computeSupplier, must, organization, pool } from '../helpers/compute.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';

/**
 * The reconciler on its own (KAIHUB_COMPUTE_RECONCILE_MS): a grant whose period has begun is started
 * without anyone asking, and what the loop changed is in the audit log as the `system`'s.
 */
describe('the compute loop in the background', () => {
  let t: TestHub;
  before(async () => {
    t = await startTestHub({ KAIHUB_COMPUTE_RECONCILE_MS: '200' });
  });
  after(() => t.close());

  test('a selected grant starting today is started by the loop, and audited as the system', async () => {
    const today = dayText(dayIndex(Date.now()));
    const p = (await pool(t, await computeSupplier(t))).id;
    const c = await call(t, [p], { startsOn: today, endsOn: dayText(dayIndex(Date.now()) + 30) });
    const a = await must(t, 'POST', `/compute/calls/${c.id}/applications`, {
      organizationId: await organization(t),
      trackId: 'small',
      poolId: p,
      unit: 'gpu',
      quantity: 1,
      startsOn: today,
      endsOn: dayText(dayIndex(Date.now()) + 5),
      purpose: 'research',
      plan: '계획',
      applicantRegion: 'capital',
    });
    await must(t, 'POST', `/compute/applications/${a.id}/submit`);
    const selected = await must(t, 'POST', `/compute/applications/${a.id}/select`, {
      reason: '선정 / selected',
    });
    let status = '';
    for (let i = 0; i < 50 && status !== 'provisioning'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      status = (await must(t, 'GET', `/compute/allocations/${selected.allocationId}`)).status;
    }
    assert.equal(status, 'provisioning', 'a manual pool then waits for its supplier’s hand-over');
    const audit = await must(t, 'GET', '/audit?entityType=compute&action=reconcile&actorId=system');
    assert.ok(
      audit.data.some(
        (e: any) =>
          e.source === 'system' && e.after.started.some((s: any) => s.allocationId === selected.allocationId),
      ),
    );
  });
});
