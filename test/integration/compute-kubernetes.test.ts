import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { dayIndex, dayText } from '../../src/kst.ts';
import {
  type FakeKubernetes,
  type FakePrometheus,
  startFakeKubernetes,
  startFakePrometheus,
} from '../fakes/kubernetes-api.ts';
import { call, computeSupplier, must, organization } from '../helpers/compute.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';

/**
 * The `kubernetes` provisioner through the official @kubernetes/client-node against a fake API server
 * that checks what it is sent (test/fakes/kubernetes-api.ts): per organisation a namespace, a
 * ResourceQuota on requests.nvidia.com/gpu, a RoleBinding for its users and a Kueue ClusterQueue and
 * LocalQueue; usage from the Prometheus HTTP API (DCGM samples); drift, reclaim and a down API server.
 */
describe('GPU allocations on Kubernetes', () => {
  const TOKEN = 'k8s-service-account-token-0123456789';
  let k8s: FakeKubernetes;
  let prometheus: FakePrometheus;
  let t: TestHub;
  let poolId: string;
  let callId: string;
  const today = dayText(dayIndex(Date.now()));
  /** The hub's compute clock: the wall clock, moved on to reach a planned retry. */
  let offsetMs = 0;

  before(async () => {
    k8s = await startFakeKubernetes(TOKEN);
    prometheus = await startFakePrometheus();
    t = await startTestHub(
      { KAIHUB_COMPUTE_RECONCILE_MS: '0' },
      { hub: { compute: { clock: () => Date.now() + offsetMs } } },
    );
    const supplierId = await computeSupplier(t);
    poolId = (
      await must(t, 'POST', '/compute/pools', {
        supplierId,
        name: 'H200 쿠버네티스',
        gpuModel: 'H200',
        tfPerGpu: 989,
        gpuCount: 32,
        region: 'capital',
        pricePerGpuHourKrw: '3600',
        provisioner: 'kubernetes',
        provisionerConfig: {
          server: k8s.url,
          token: TOKEN,
          kueue: { resourceFlavor: 'h200' },
          prometheusUrl: prometheus.url,
        },
      })
    ).id;
    callId = (
      await call(t, [poolId], {
        startsOn: today,
        endsOn: dayText(dayIndex(Date.now()) + 60),
        capacityGpus: 32,
      })
    ).id;
  });
  after(async () => {
    await t?.close();
    await k8s?.close();
    await prometheus?.close();
  });

  async function grant(gpus: number) {
    const organizationId = await organization(t);
    const a = await must(t, 'POST', `/compute/calls/${callId}/applications`, {
      organizationId,
      trackId: 'small',
      poolId,
      unit: 'gpu',
      quantity: gpus,
      startsOn: today,
      endsOn: dayText(dayIndex(Date.now()) + 20),
      purpose: 'inference',
      plan: '추론 서비스',
      applicantRegion: 'capital',
      schedulerUsers: ['alice@example.kr', 'bob@example.kr'],
    });
    await must(t, 'POST', `/compute/applications/${a.id}/submit`);
    const selected = await must(t, 'POST', `/compute/applications/${a.id}/select`, {
      reason: '심사 적격 / eligible',
    });
    await must(t, 'POST', '/compute/reconcile', { usage: false, checks: false, drift: false });
    return must(t, 'GET', `/compute/allocations/${selected.allocationId}`);
  }

  test('a grant is a namespace, a GPU quota, a role binding and Kueue queues; the token stays sealed', async () => {
    const allocation = await grant(2);
    assert.equal(allocation.status, 'active', JSON.stringify(allocation));
    const ns = allocation.schedulerAccount;
    assert.match(ns, /^kh-org-/);
    assert.equal(
      k8s.get('namespaces', ns)?.metadata.labels['kaihub.kr/organization'],
      allocation.organizationId,
    );
    assert.deepEqual(k8s.get('resourcequotas', `${ns}/kaihub-gpu`)?.spec.hard, {
      'requests.nvidia.com/gpu': '2',
    });
    const binding = k8s.get('rolebindings', `${ns}/kaihub-users`)!;
    assert.deepEqual(
      binding.subjects.map((s: any) => s.name),
      ['alice@example.kr', 'bob@example.kr'],
    );
    assert.equal(binding.roleRef.name, 'edit');
    const cq = k8s.get('clusterqueues', ns)!;
    assert.equal(cq.spec.resourceGroups[0].flavors[0].name, 'h200');
    assert.equal(cq.spec.resourceGroups[0].flavors[0].resources[0].nominalQuota, 2);
    assert.equal(k8s.get('localqueues', `${ns}/default`)?.spec.clusterQueue, ns);
    // what the pool shows and what the audit log keeps: never the token
    const pool = await must(t, 'GET', `/compute/pools/${poolId}`);
    assert.equal(pool.provisionerConfig.token, '[sealed]');
    const audit = await t.admin('GET', `/audit?entityType=compute_pool&entityId=${poolId}`);
    assert.ok(!JSON.stringify(audit.body).includes(TOKEN));
    assert.ok(!JSON.stringify(pool).includes(TOKEN));
  });

  test('usage from Prometheus (DCGM samples per namespace), drift repaired, reclaim to zero with its pods gone', async () => {
    const allocation = await grant(4);
    const ns = allocation.schedulerAccount;
    // 120 one-minute samples of GPUs in the namespace: 7,200 GPU-seconds
    prometheus.samples.set(ns, 120);
    const ingest = await must(t, 'POST', `/compute/pools/${poolId}/usage`, {});
    assert.ok(prometheus.queries.some((q) => q.includes('DCGM_FI_DEV_GPU_UTIL') && q.includes(ns)));
    const mine = ingest.allocations.find((a: any) => a.allocationId === allocation.id);
    assert.equal(mine.gpuSeconds, 7200);
    assert.equal(
      (await must(t, 'GET', `/compute/allocations/${allocation.id}/usage`)).totals.chargedKrw,
      '7200',
    );

    // someone raises the quota by hand, and the queue disagrees with it
    k8s.edit('resourcequotas', `${ns}/kaihub-gpu`, (o) => {
      o.spec.hard['requests.nvidia.com/gpu'] = '16';
    });
    const drift = (await must(t, 'GET', `/compute/pools/${poolId}/drift`)).data.find(
      (d: any) => d.account === ns,
    );
    assert.deepEqual(drift.differences, ['gpus']);
    await must(t, 'POST', `/compute/pools/${poolId}/repair`, {});
    assert.equal(k8s.get('resourcequotas', `${ns}/kaihub-gpu`)?.spec.hard['requests.nvidia.com/gpu'], '4');
    assert.ok(
      k8s.requests.some(
        (r) => r.method === 'PUT' && r.path.endsWith(`/namespaces/${ns}/resourcequotas/kaihub-gpu`),
      ),
      'replaced with the resourceVersion it read',
    );

    k8s.addPod(ns, 'trainer-0');
    const reclaimed = await must(t, 'POST', `/compute/allocations/${allocation.id}/reclaim`, {
      reason: '유휴',
    });
    assert.equal(reclaimed.status, 'reclaimed');
    assert.equal(k8s.get('resourcequotas', `${ns}/kaihub-gpu`)?.spec.hard['requests.nvidia.com/gpu'], '0');
    assert.equal(
      k8s.get('clusterqueues', ns)!.spec.resourceGroups[0].flavors[0].resources[0].nominalQuota,
      0,
    );
    assert.equal(k8s.get('pods', `${ns}/trainer-0`), undefined, 'its pods are gone');
  });

  test('an API server that is down: a clear error, nothing marked active, retried when its time comes', async () => {
    k8s.down = true;
    let allocation: any;
    try {
      allocation = await grant(1);
      assert.equal(allocation.status, 'provisioning');
      assert.match(allocation.provisioning.lastError, /Kubernetes refused .*HTTP 503/);
      assert.equal(allocation.provisioning.attempts, 1);
    } finally {
      k8s.down = false;
    }
    // not before its next attempt is due …
    await must(t, 'POST', '/compute/reconcile', { usage: false, checks: false, drift: false });
    assert.equal((await must(t, 'GET', `/compute/allocations/${allocation.id}`)).status, 'provisioning');
    // … then by the loop on its own
    offsetMs = Date.parse(allocation.provisioning.nextAttemptAt) - Date.now() + 1000;
    try {
      await must(t, 'POST', '/compute/reconcile', { usage: false, checks: false, drift: false });
    } finally {
      offsetMs = 0;
    }
    const retried = await must(t, 'GET', `/compute/allocations/${allocation.id}`);
    assert.equal(retried.status, 'active');
    assert.equal(retried.provisioning.lastError, null);
    const kinds = (await must(t, 'GET', `/compute/allocations/${allocation.id}/events`)).data.map(
      (e: any) => e.kind,
    );
    assert.ok(kinds.includes('provision_failed') && kinds.includes('provisioned'));
    assert.equal(
      k8s.get('resourcequotas', `${allocation.schedulerAccount}/kaihub-gpu`)?.spec.hard[
        'requests.nvidia.com/gpu'
      ],
      '1',
    );
  });
});
