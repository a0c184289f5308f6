import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  type FakeKubernetes,
  type FakePrometheus,
  startFakeKubernetes,
  startFakePrometheus,
} from '../fakes/kubernetes-api.ts';
import { call, computeSupplier, must, organization, TestClock } from '../helpers/compute.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';

/**
 * The monthly utilisation check on a scheduler pool (Kubernetes, usage from a fake Prometheus), months
 * passing on the hub's compute clock: it decides only on a month whose usage was read to the end of
 * every day (a failed read or a day read before it was over defers it, visibly), and on Kubernetes it
 * compares the GPUs' own DCGM utilisation with the call's threshold, so an idle pod is warned, then
 * reclaimed.
 */
describe('the monthly utilisation check on a scheduler pool', () => {
  const TOKEN = 'k8s-service-account-token-utilisation';
  const clock = new TestClock(Date.parse('2026-03-02T10:00:00+09:00'));
  let k8s: FakeKubernetes;
  let prometheus: FakePrometheus;
  let t: TestHub;
  let poolId: string;
  let callId: string;
  const allocation = { busy: '', idle: '' };
  const ns = { busy: '', idle: '' };
  let march: any[] = [];

  const days = (month: string, from: number, to: number) =>
    Array.from({ length: to - from + 1 }, (_, i) => `${month}-${String(from + i).padStart(2, '0')}`);
  const read = (day: string) => t.admin('POST', `/compute/pools/${poolId}/usage`, { day });
  const check = async (month: string) =>
    (await must(t, 'POST', `/compute/calls/${callId}/checks`, { month })).data as any[];
  const outcomeOf = (outcomes: any[], id: string) => outcomes.find((o) => o.allocationId === id);

  before(async () => {
    k8s = await startFakeKubernetes(TOKEN);
    prometheus = await startFakePrometheus();
    t = await startTestHub({ KAIHUB_COMPUTE_RECONCILE_MS: '0' }, { hub: { compute: { clock: clock.now } } });
    const supplierId = await computeSupplier(t);
    poolId = (
      await must(t, 'POST', '/compute/pools', {
        supplierId,
        name: 'H200 쿠버네티스 사용률',
        gpuModel: 'H200',
        tfPerGpu: 989,
        gpuCount: 8,
        region: 'capital',
        pricePerGpuHourKrw: '3600',
        provisioner: 'kubernetes',
        provisionerConfig: { server: k8s.url, token: TOKEN, prometheusUrl: prometheus.url },
      })
    ).id;
    callId = (await call(t, [poolId], { capacityGpus: 8 })).id;
    for (const key of ['busy', 'idle'] as const) {
      const a = await must(t, 'POST', `/compute/calls/${callId}/applications`, {
        organizationId: await organization(t),
        trackId: 'small',
        poolId,
        unit: 'gpu',
        quantity: 1,
        startsOn: '2026-03-03',
        endsOn: '2026-04-30',
        purpose: 'training',
        plan: '학습',
        applicantRegion: 'capital',
        schedulerUsers: ['alice@example.kr'],
      });
      await must(t, 'POST', `/compute/applications/${a.id}/submit`);
      const selected = await must(t, 'POST', `/compute/applications/${a.id}/select`, {
        reason: '심사 결과 적격 / eligible after review',
      });
      allocation[key] = selected.allocationId;
    }
    clock.set('2026-03-03T09:00:00+09:00');
    await must(t, 'POST', '/compute/reconcile', { usage: false, checks: false, drift: false });
    for (const key of ['busy', 'idle'] as const) {
      const a = await must(t, 'GET', `/compute/allocations/${allocation[key]}`);
      assert.equal(a.status, 'active');
      ns[key] = a.schedulerAccount;
      // one GPU seen in every one-minute sample of the day: 90 % busy, or a pod that holds it idle
      prometheus.samples.set(ns[key], 1440);
      prometheus.utilisation.set(ns[key], key === 'busy' ? 90 : 0);
    }
  });
  after(async () => {
    await t?.close();
    await k8s?.close();
    await prometheus?.close();
  });

  test('a month with a day whose usage read failed is not decided: incomplete, no warning; once read, decided', async () => {
    // the 31st read while it is still going on, and the 10th while Prometheus is down
    clock.set('2026-03-31T12:00:00+09:00');
    for (const day of days('2026-03', 3, 31)) {
      prometheus.down = day === '2026-03-10';
      const r = await read(day);
      assert.equal(r.status, day === '2026-03-10' ? 503 : 200, `${day}: ${JSON.stringify(r.body)}`);
    }
    prometheus.down = false;
    clock.set('2026-04-01T01:00:00+09:00');
    const first = await check('2026-03');
    const busy = outcomeOf(first, allocation.busy);
    assert.equal(busy.outcome, 'incomplete');
    assert.deepEqual(busy.missingDays, ['2026-03-10', '2026-03-31']);
    assert.match(busy.reason, /incomplete/);
    const events = await must(t, 'GET', `/compute/allocations/${allocation.busy}/events`);
    assert.ok(events.data.some((e: any) => e.kind === 'check_deferred' && e.detail.month === '2026-03'));
    assert.equal((await must(t, 'GET', `/compute/allocations/${allocation.busy}`)).warnings, 0);
    // asked again with nothing new read: still deferred, and the event is not repeated
    assert.equal(outcomeOf(await check('2026-03'), allocation.busy).outcome, 'incomplete');
    const deferrals = (await must(t, 'GET', `/compute/allocations/${allocation.busy}/events`)).data.filter(
      (e: any) => e.kind === 'check_deferred',
    );
    assert.equal(deferrals.length, 1);

    for (const day of ['2026-03-10', '2026-03-31']) assert.equal((await read(day)).status, 200);
    march = await check('2026-03');
    assert.equal(outcomeOf(march, allocation.busy).outcome, 'ok');
    assert.equal(outcomeOf(march, allocation.busy).usedGpuHours, '696'); // 29 days × 24 h
  });

  test('an idle pod (DCGM utilisation ~0) that holds its GPU is warned, then reclaimed', async () => {
    const idle = outcomeOf(march, allocation.idle);
    assert.equal(idle.usedGpuHours, '696', 'the GPU was held all month');
    assert.equal(idle.busyGpuHours, '0');
    assert.equal(idle.basis, 'gpu_utilisation');
    assert.equal(idle.outcome, 'warning');
    const busy = outcomeOf(march, allocation.busy);
    assert.equal(busy.basis, 'gpu_utilisation');
    assert.equal(busy.utilisationPercent, 90);
    const usage = await must(t, 'GET', `/compute/allocations/${allocation.idle}/usage`);
    assert.equal(usage.days.find((d: any) => d.day === '2026-03-05').busyGpuHours, '0');
    assert.ok(prometheus.queries.some((q) => q.includes('sum_over_time(DCGM_FI_DEV_GPU_UTIL')));

    clock.set('2026-04-30T12:00:00+09:00');
    for (const day of days('2026-04', 1, 29)) assert.equal((await read(day)).status, 200);
    clock.set('2026-05-01T00:30:00+09:00');
    assert.equal((await read('2026-04-30')).status, 200);
    const april = await check('2026-04');
    assert.equal(outcomeOf(april, allocation.busy).outcome, 'ok');
    assert.equal(outcomeOf(april, allocation.idle).outcome, 'reclaimed');
    const after = await must(t, 'GET', `/compute/allocations/${allocation.idle}`);
    assert.ok(['ending', 'reclaimed'].includes(after.status), after.status);
    assert.match(after.endReason, /below the call's 30%/);
  });
});
