import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { dayIndex, dayText } from '../../src/kst.ts';
import {
  type FakeKubernetes,
  type FakePrometheus,
  startFakeKubernetes,
  startFakePrometheus,
} from '../fakes/kubernetes-api.ts';
import { call, computeSupplier, must, organization, pool, TestClock } from '../helpers/compute.ts';
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

/**
 * What the background loop does on its own beyond starting grants — reading usage and posting its
 * charges, ending a grant whose period passed before it ever started — is audited as the `system`'s
 * and, for an allocation, an event.
 */
describe('the compute loop in the background: usage, charges and the never-started sweep are audited', () => {
  const TOKEN = 'k8s-service-account-token-background';
  const clock = new TestClock(Date.parse('2026-03-02T10:00:00+09:00'));
  let k8s: FakeKubernetes;
  let prometheus: FakePrometheus;
  let t: TestHub;
  before(async () => {
    k8s = await startFakeKubernetes(TOKEN);
    prometheus = await startFakePrometheus();
    t = await startTestHub(
      { KAIHUB_COMPUTE_RECONCILE_MS: '200', KAIHUB_COMPUTE_USAGE_MS: '1000' },
      { hub: { compute: { clock: clock.now } } },
    );
  });
  after(async () => {
    await t?.close();
    await k8s?.close();
    await prometheus?.close();
  });

  const audited = async () =>
    (await must(t, 'GET', '/audit?entityType=compute&action=reconcile&actorId=system')).data as any[];
  async function until<T>(what: () => Promise<T | undefined>): Promise<T | undefined> {
    for (let i = 0; i < 60; i++) {
      const found = await what();
      if (found !== undefined) return found;
      await new Promise((r) => setTimeout(r, 100));
    }
    return undefined;
  }

  test('a tick that reads usage and charges it, and the sweep ending a never-started grant, leave audit entries and events', async () => {
    const p = (
      await pool(t, await computeSupplier(t), {
        provisioner: 'kubernetes',
        provisionerConfig: { server: k8s.url, token: TOKEN, prometheusUrl: prometheus.url },
      })
    ).id;
    const c = await call(t, [p]);
    const grant = async (startsOn: string, endsOn: string) => {
      const a = await must(t, 'POST', `/compute/calls/${c.id}/applications`, {
        organizationId: await organization(t),
        trackId: 'small',
        poolId: p,
        unit: 'gpu',
        quantity: 1,
        startsOn,
        endsOn,
        purpose: 'research',
        plan: '계획',
        applicantRegion: 'capital',
      });
      await must(t, 'POST', `/compute/applications/${a.id}/submit`);
      return (await must(t, 'POST', `/compute/applications/${a.id}/select`, { reason: '선정 / selected' }))
        .allocationId as string;
    };
    const running = await grant('2026-03-05', '2026-03-31');
    const never = await grant('2026-03-03', '2026-03-04');
    // the loop sleeps through the never-started grant's whole period
    clock.set('2026-03-06T10:00:00+09:00');
    const swept = await until(async () =>
      (await audited()).find((e) => e.after.endedUnstarted?.includes(never)),
    );
    assert.ok(swept, 'the sweep is audited');
    const gone = await must(t, 'GET', `/compute/allocations/${never}`);
    assert.equal(gone.status, 'ended');
    assert.match(gone.endReason, /before the grant was started/);
    const events = await must(t, 'GET', `/compute/allocations/${never}/events`);
    assert.ok(events.data.some((e: any) => e.kind === 'ended_unstarted'));

    const ns = (await must(t, 'GET', `/compute/allocations/${running}`)).schedulerAccount;
    prometheus.samples.set(ns, 60);
    clock.set('2026-03-06T12:00:00+09:00');
    const charged = await until(async () =>
      (await audited()).find((e) => e.after.usage?.some((u: any) => u.poolId === p && u.charged > 0)),
    );
    assert.ok(charged, 'the usage step that charged is audited');
    const u = charged.after.usage.find((x: any) => x.poolId === p && x.charged > 0);
    assert.equal(u.chargedKrw, '3000'); // 60 GPU-minutes × 3,000 KRW per GPU-hour
  });
});
