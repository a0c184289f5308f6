import assert from 'node:assert/strict';
import type { MatrixRole, MatrixRow, Pair } from './tenant-matrix.rows.ts';
import type { Caller, Side, World } from './world.ts';

/**
 * The tenant matrix's rows for GPU compute (docs/compute.md, docs/roles.md): pools and calls are public;
 * an application is its organisation's and, once submitted, its call's evaluators'; an allocation is
 * its organisation's and its pool's compute supplier's (side A's supplier admin administers A's pools).
 * Decisions are the operator's. Things a cell changes are made fresh for it, and only for callers
 * who may change them (the others are refused before the id is looked at).
 */

const all = (pair: Pair): Record<MatrixRole, Pair> => ({
  supplier_admin: pair,
  org_admin: pair,
  org_member: pair,
  evaluator: pair,
  nobody: pair,
});

const ids = (body: any) => (body.data as { id: string }[]).map((x) => x.id);

const KST = 9 * 3600_000;
const day = (offset: number) => new Date(Date.now() + KST + offset * 86_400_000).toISOString().slice(0, 10);

async function freshPool(w: World, s: Side, over: Record<string, unknown> = {}): Promise<string> {
  return (
    await w.must('POST', '/compute/pools', {
      supplierId: s.supplierId,
      name: `매트릭스 GPU 풀 ${w.nonce()}`,
      gpuModel: 'H100',
      tfPerGpu: 989,
      gpuCount: 100,
      region: 'capital',
      pricePerGpuHourKrw: '3000',
      provisioner: 'manual',
      ...over,
    })
  ).id;
}

/** A call on the pool; A's calls are reviewed by the world's evaluator, B's are not. */
async function freshCall(w: World, s: Side, poolId: string): Promise<string> {
  const c = await w.must('POST', '/compute/calls', {
    name: `매트릭스 공모 ${w.nonce()}`,
    startsOn: day(0),
    endsOn: day(300),
    poolIds: [poolId],
    tracks: [{ id: 'small', name: '1–4 GPU', unit: 'gpu', min: 1, max: 4 }],
    eligibleClasses: ['sme'],
    maxGrantDays: 120,
    reviewCriteria: [
      { id: 'impact', name: '파급 효과', weight: 50 },
      { id: 'readiness', name: '준비도', weight: 50 },
    ],
    capacityGpus: 100,
  });
  if (s === w.A)
    await w.must('PATCH', `/compute/calls/${c.id}`, { evaluatorIds: [w.callers.evaluator.userId] });
  return c.id;
}

const applicationBody = (organizationId: string, poolId: string) => ({
  organizationId,
  trackId: 'small',
  poolId,
  unit: 'gpu',
  quantity: 1,
  startsOn: day(0),
  endsOn: day(10),
  purpose: 'research',
  plan: '매트릭스 계획',
  applicantRegion: 'capital',
});

async function freshApplication(w: World, s: Side, status: 'draft' | 'submitted'): Promise<string> {
  const poolId = await freshPool(w, s);
  const callId = await freshCall(w, s, poolId);
  const a = await w.must(
    'POST',
    `/compute/calls/${callId}/applications`,
    applicationBody(s.organizationId, poolId),
  );
  if (status === 'submitted') await w.must('POST', `/compute/applications/${a.id}/submit`);
  return a.id;
}

type AllocationState = 'scheduled' | 'provisioning' | 'active' | 'ending' | 'offered';

/** An allocation of s's organisation on a new pool of s's supplier, brought to `state`. */
async function freshAllocation(w: World, s: Side, state: AllocationState): Promise<string> {
  if (state === 'offered') return freshOffer(w, s);
  const application = await freshApplication(w, s, 'submitted');
  const id = (await w.must('POST', `/compute/applications/${application}/select`, { reason: '매트릭스' }))
    .allocationId;
  if (state === 'scheduled') return id;
  await w.must('POST', '/compute/reconcile', { usage: false, checks: false, drift: false });
  if (state === 'provisioning') return id;
  await w.must('POST', `/compute/allocations/${id}/handover`);
  if (state === 'active') return id;
  await w.must('POST', `/compute/allocations/${id}/reclaim`, { reason: '매트릭스' });
  return id;
}

/** s's organisation waitlisted behind another's grant on a 1-GPU pool, offered it once that is reclaimed. */
async function freshOffer(w: World, s: Side): Promise<string> {
  const poolId = await freshPool(w, s, { gpuCount: 1 });
  const callId = await freshCall(w, s, poolId);
  const other = (await w.must('POST', '/organizations', { name: `대기 앞 기관 ${w.nonce()}`, class: 'sme' }))
    .id;
  const first = await w.must('POST', `/compute/calls/${callId}/applications`, applicationBody(other, poolId));
  await w.must('POST', `/compute/applications/${first.id}/submit`);
  const blocker = (
    await w.must('POST', `/compute/applications/${first.id}/select`, { reason: '대기열 앞 선정' })
  ).allocationId;
  const mine = await w.must(
    'POST',
    `/compute/calls/${callId}/applications`,
    applicationBody(s.organizationId, poolId),
  );
  await w.must('POST', `/compute/applications/${mine.id}/submit`);
  await w.must('POST', `/compute/applications/${mine.id}/reviews`, { scores: { impact: 50, readiness: 50 } });
  await w.must('POST', `/compute/calls/${callId}/selection`, {});
  // the hub's own loop may have started the blocker already: then its supplier confirms the return
  const reclaimed = await w.must('POST', `/compute/allocations/${blocker}/reclaim`, { reason: '매트릭스' });
  if (reclaimed.status === 'ending') await w.must('POST', `/compute/allocations/${blocker}/return`);
  await w.must('POST', '/compute/reconcile', { usage: false, checks: false, drift: false });
  const offered = (await w.must('GET', `/compute/applications/${mine.id}`)).allocationId;
  assert.ok(offered, 'the freed GPU was offered');
  return offered;
}

interface ComputeSide {
  poolId: string;
  callId: string;
  submitted: string;
  draft: string;
  allocation: string;
  /** The pool of `allocation`. */
  allocationPool: string;
}

const sides = new WeakMap<Side, Promise<ComputeSide>>();
/** Per side and world, the things rows only read or edit freely. */
function shared(w: World, s: Side): Promise<ComputeSide> {
  let p = sides.get(s);
  if (p === undefined) {
    p = (async () => {
      const poolId = await freshPool(w, s);
      const callId = await freshCall(w, s, poolId);
      const submitted = await w.must(
        'POST',
        `/compute/calls/${callId}/applications`,
        applicationBody(s.organizationId, poolId),
      );
      await w.must('POST', `/compute/applications/${submitted.id}/submit`);
      const allocation = await freshAllocation(w, s, 'active');
      return {
        poolId,
        callId,
        submitted: submitted.id,
        draft: await freshApplication(w, s, 'draft'),
        allocation,
        allocationPool: (await w.must('GET', `/compute/allocations/${allocation}`)).poolId,
      };
    })();
    sides.set(s, p);
  }
  return p;
}

/** The id a cell acts on: fresh for callers who may change it, the shared one for the others. */
async function target(
  w: World,
  s: Side,
  caller: Caller,
  mayChange: readonly string[],
  fresh: () => Promise<string>,
  fallback: (c: ComputeSide) => string,
): Promise<string> {
  if (caller.isOperator || mayChange.includes(caller.who)) return fresh();
  return fallback(await shared(w, s));
}

const closed = new WeakMap<World, Promise<string>>();
function closedMonth(w: World): Promise<string> {
  let m = closed.get(w);
  if (m === undefined) {
    m = w.must('POST', '/settlements', { month: '2019-10' }).then((r) => r.month as string);
    closed.set(w, m);
  }
  return m;
}

/** Organisation ids a supplier admin (its pools' allocations) or an evaluator (applicants) may see. */
const applicant = (w: World, caller: Caller): string[] =>
  caller.who === 'supplier_admin' || caller.who === 'evaluator' ? [w.A.organizationId] : [];

const NOTHING = 'gex_00000000000nothinghere';

export const COMPUTE_MATRIX: MatrixRow[] = [
  // --- pools: public; their supplier's admins keep them, the operator creates and reads usage -------
  {
    method: 'POST',
    route: '/compute/pools',
    expect: all('403/403'),
    request: async (w, s) => ({
      path: '/compute/pools',
      body: {
        supplierId: s.supplierId,
        name: `새 풀 ${w.nonce()}`,
        gpuModel: 'A100',
        tfPerGpu: 312,
        gpuCount: 8,
        region: 'capital',
        pricePerGpuHourKrw: '2000',
      },
    }),
  },
  {
    method: 'GET',
    route: '/compute/pools',
    expect: all('ok/ok'),
    request: async () => ({ path: '/compute/pools' }),
  },
  {
    method: 'GET',
    route: '/compute/pools/:id',
    expect: all('ok/ok'),
    request: async (w, s) => ({ path: `/compute/pools/${(await shared(w, s)).poolId}` }),
    check(body, _w, side, caller) {
      // the provisioner's configuration is its supplier's and the operator's
      if (!caller.isOperator && !(caller.who === 'supplier_admin' && side === 'own'))
        assert.equal(body.provisionerConfig, undefined);
    },
  },
  {
    method: 'PATCH',
    route: '/compute/pools/:id',
    expect: { ...all('403/403'), supplier_admin: 'ok/403' },
    request: async (w, s) => ({
      path: `/compute/pools/${(await shared(w, s)).poolId}`,
      body: { name: `풀 ${w.nonce()}` },
    }),
  },
  {
    method: 'GET',
    route: '/compute/pools/:id/availability',
    expect: all('ok/ok'),
    request: async (w, s) => ({ path: `/compute/pools/${(await shared(w, s)).poolId}/availability?days=3` }),
  },
  {
    method: 'GET',
    route: '/compute/pools/:id/drift',
    expect: { ...all('404/404'), supplier_admin: 'ok/404' },
    request: async (w, s) => ({ path: `/compute/pools/${(await shared(w, s)).poolId}/drift` }),
  },
  {
    method: 'POST',
    route: '/compute/pools/:id/repair',
    expect: { ...all('404/404'), supplier_admin: 'ok/404' },
    request: async (w, s) => ({ path: `/compute/pools/${(await shared(w, s)).poolId}/repair`, body: {} }),
  },
  {
    method: 'POST',
    route: '/compute/pools/:id/usage',
    expect: all('403/403'),
    // a Kubernetes pool without grants: nothing to read from a cluster that is not there
    request: async (w, s, _side, caller) => ({
      path: `/compute/pools/${
        caller.isOperator
          ? await freshPool(w, s, {
              provisioner: 'kubernetes',
              provisionerConfig: { server: 'https://127.0.0.1:9' },
            })
          : (await shared(w, s)).poolId
      }/usage`,
      body: {},
    }),
  },
  {
    method: 'GET',
    route: '/compute/pools/:id/events',
    expect: { ...all('404/404'), supplier_admin: 'ok/404' },
    request: async (w, s) => ({ path: `/compute/pools/${(await shared(w, s)).poolId}/events` }),
    visible: applicant,
  },

  // --- calls: public; the operator's to make, change, rank, select and check -----------------------
  {
    method: 'POST',
    route: '/compute/calls',
    expect: all('403/403'),
    request: async (w, s) => ({
      path: '/compute/calls',
      body: {
        name: `새 공모 ${w.nonce()}`,
        startsOn: day(0),
        endsOn: day(30),
        poolIds: [(await shared(w, s)).poolId],
        tracks: [{ id: 'small', name: 'S', unit: 'gpu', min: 1, max: 4 }],
        eligibleClasses: ['sme'],
        maxGrantDays: 30,
        reviewCriteria: [{ id: 'impact', name: '파급', weight: 100 }],
        capacityGpus: 8,
      },
    }),
  },
  {
    method: 'GET',
    route: '/compute/calls',
    expect: all('ok/ok'),
    request: async () => ({ path: '/compute/calls' }),
  },
  {
    method: 'GET',
    route: '/compute/calls/:id',
    expect: all('ok/ok'),
    request: async (w, s) => ({ path: `/compute/calls/${(await shared(w, s)).callId}` }),
    check(body, _w, _side, caller) {
      if (!caller.isOperator)
        assert.equal(body.evaluatorIds, undefined, 'who reviews is the operator’s to know');
    },
  },
  {
    method: 'PATCH',
    route: '/compute/calls/:id',
    expect: all('403/403'),
    request: async (w, s) => ({
      path: `/compute/calls/${(await shared(w, s)).callId}`,
      body: { capacityGpus: 100 },
    }),
  },
  {
    method: 'GET',
    route: '/compute/calls/:id/ranking',
    expect: all('403/403'),
    request: async (w, s) => ({ path: `/compute/calls/${(await shared(w, s)).callId}/ranking` }),
  },
  {
    method: 'POST',
    route: '/compute/calls/:id/selection',
    expect: all('403/403'),
    request: async (w, s, _side, caller) => ({
      path: `/compute/calls/${caller.isOperator ? await freshCall(w, s, (await shared(w, s)).poolId) : (await shared(w, s)).callId}/selection`,
      body: {},
    }),
  },
  {
    method: 'POST',
    route: '/compute/calls/:id/checks',
    expect: all('403/403'),
    request: async (w, s) => ({ path: `/compute/calls/${(await shared(w, s)).callId}/checks`, body: {} }),
  },

  // --- applications: the organisation's; its call's evaluators once submitted ------------------------
  {
    method: 'POST',
    route: '/compute/calls/:id/applications',
    expect: { ...all('403/403'), org_admin: 'ok/404', org_member: '403/404' },
    request: async (w, s, _side, caller) => {
      const poolId = (await shared(w, s)).poolId;
      const callId =
        caller.isOperator || caller.who === 'org_admin'
          ? await freshCall(w, s, poolId)
          : (await shared(w, s)).callId;
      return {
        path: `/compute/calls/${callId}/applications`,
        body: applicationBody(s.organizationId, poolId),
      };
    },
  },
  {
    method: 'GET',
    route: '/compute/applications',
    expect: { ...all('ok/ok'), supplier_admin: '403/403', nobody: '403/403' },
    request: async (w, s) => {
      await rememberSubmitted(w, w.A);
      return { path: `/compute/applications?callId=${(await shared(w, s)).callId}` };
    },
    check(body, w, side, caller) {
      if (caller.isOperator) return;
      assert.deepEqual(ids(body), side === 'own' ? [submittedOf.get(w.A)] : []);
    },
    visible: applicant,
  },
  {
    method: 'GET',
    route: '/compute/applications/:id',
    expect: { ...all('404/404'), org_admin: 'ok/404', org_member: 'ok/404', evaluator: 'ok/404' },
    request: async (w, s) => ({ path: `/compute/applications/${await rememberSubmitted(w, s)}` }),
    visible: applicant,
  },
  {
    method: 'PATCH',
    route: '/compute/applications/:id',
    expect: { ...all('404/404'), org_admin: 'ok/404', org_member: '403/404' },
    request: async (w, s) => ({
      path: `/compute/applications/${(await shared(w, s)).draft}`,
      body: { plan: `계획 ${w.nonce()}` },
    }),
  },
  {
    method: 'POST',
    route: '/compute/applications/:id/submit',
    expect: { ...all('404/404'), org_admin: 'ok/404', org_member: '403/404' },
    request: async (w, s, _side, caller) => ({
      path: `/compute/applications/${await target(
        w,
        s,
        caller,
        ['org_admin'],
        () => freshApplication(w, s, 'draft'),
        (c) => c.draft,
      )}/submit`,
    }),
  },
  {
    method: 'POST',
    route: '/compute/applications/:id/withdraw',
    expect: { ...all('404/404'), org_admin: 'ok/404', org_member: '403/404' },
    request: async (w, s, _side, caller) => ({
      path: `/compute/applications/${await target(
        w,
        s,
        caller,
        ['org_admin'],
        () => freshApplication(w, s, 'draft'),
        (c) => c.draft,
      )}/withdraw`,
    }),
  },
  {
    method: 'POST',
    route: '/compute/applications/:id/reviews',
    expect: { ...all('403/404'), evaluator: 'ok/404', supplier_admin: '404/404', nobody: '404/404' },
    request: async (w, s) => ({
      path: `/compute/applications/${await rememberSubmitted(w, s)}/reviews`,
      body: { scores: { impact: 70, readiness: 80 } },
    }),
  },
  {
    method: 'GET',
    route: '/compute/applications/:id/reviews',
    expect: { ...all('403/404'), evaluator: 'ok/404', supplier_admin: '404/404', nobody: '404/404' },
    request: async (w, s) => ({ path: `/compute/applications/${await rememberSubmitted(w, s)}/reviews` }),
    check(body, _w, _side, caller) {
      if (caller.isOperator) return;
      for (const review of body.data) if (!review.mine) assert.equal(review.reviewerId, undefined);
    },
  },
  {
    method: 'POST',
    route: '/compute/applications/:id/select',
    expect: all('403/403'),
    request: async (w, s, _side, caller) => ({
      path: `/compute/applications/${await target(
        w,
        s,
        caller,
        [],
        () => freshApplication(w, s, 'submitted'),
        (c) => c.submitted,
      )}/select`,
      body: { reason: '선정' },
    }),
  },
  {
    method: 'POST',
    route: '/compute/applications/:id/reject',
    expect: all('403/403'),
    request: async (w, s, _side, caller) => ({
      path: `/compute/applications/${await target(
        w,
        s,
        caller,
        [],
        () => freshApplication(w, s, 'submitted'),
        (c) => c.submitted,
      )}/reject`,
      body: { reason: '탈락' },
    }),
  },

  // --- allocations: the organisation's and its pool's compute supplier's ---------------------------
  {
    method: 'GET',
    route: '/compute/allocations',
    expect: { ...all('ok/ok'), evaluator: '403/403', nobody: '403/403' },
    request: async (w, s) => ({ path: `/compute/allocations?poolId=${(await shared(w, s)).allocationPool}` }),
    check(body, w, side, caller) {
      if (caller.isOperator) return;
      assert.equal(ids(body).length, side === 'own' ? 1 : 0);
      for (const a of body.data) assert.equal(a.organizationId, w.A.organizationId);
    },
    visible: applicant,
  },
  {
    method: 'GET',
    route: '/compute/allocations/:id',
    expect: { ...all('404/404'), org_admin: 'ok/404', org_member: 'ok/404', supplier_admin: 'ok/404' },
    request: async (w, s) => ({ path: `/compute/allocations/${(await shared(w, s)).allocation}` }),
    visible: applicant,
  },
  {
    method: 'PATCH',
    route: '/compute/allocations/:id',
    expect: { ...all('404/404'), org_admin: 'ok/404', org_member: '403/404', supplier_admin: '403/404' },
    request: async (w, s) => ({
      path: `/compute/allocations/${(await shared(w, s)).allocation}`,
      body: { schedulerUsers: ['kim'] },
    }),
  },
  {
    method: 'GET',
    route: '/compute/allocations/:id/usage',
    expect: { ...all('404/404'), org_admin: 'ok/404', org_member: 'ok/404', supplier_admin: 'ok/404' },
    request: async (w, s) => ({ path: `/compute/allocations/${(await shared(w, s)).allocation}/usage` }),
  },
  {
    method: 'POST',
    route: '/compute/allocations/:id/usage',
    expect: { ...all('404/404'), org_admin: '403/404', org_member: '403/404', supplier_admin: 'ok/404' },
    request: async (w, s) => ({
      path: `/compute/allocations/${(await shared(w, s)).allocation}/usage`,
      body: { day: day(0), gpuHours: 1 },
    }),
    visible: applicant,
  },
  {
    method: 'GET',
    route: '/compute/allocations/:id/events',
    expect: { ...all('404/404'), org_admin: 'ok/404', org_member: 'ok/404', supplier_admin: 'ok/404' },
    request: async (w, s) => ({ path: `/compute/allocations/${(await shared(w, s)).allocation}/events` }),
    visible: applicant,
  },
  {
    method: 'POST',
    route: '/compute/allocations/:id/provision',
    expect: all('403/403'),
    request: async (w, s, _side, caller) => ({
      path: `/compute/allocations/${await target(
        w,
        s,
        caller,
        [],
        () => freshAllocation(w, s, 'provisioning'),
        (c) => c.allocation,
      )}/provision`,
    }),
  },
  {
    method: 'POST',
    route: '/compute/allocations/:id/reclaim',
    expect: all('403/403'),
    request: async (w, s, _side, caller) => ({
      path: `/compute/allocations/${await target(
        w,
        s,
        caller,
        [],
        () => freshAllocation(w, s, 'active'),
        (c) => c.allocation,
      )}/reclaim`,
      body: { reason: '회수' },
    }),
  },
  {
    method: 'POST',
    route: '/compute/allocations/:id/handover',
    expect: { ...all('404/404'), org_admin: '403/404', org_member: '403/404', supplier_admin: 'ok/404' },
    request: async (w, s, side, caller) => ({
      path: `/compute/allocations/${await target(
        w,
        s,
        caller,
        side === 'own' ? ['supplier_admin'] : [],
        () => freshAllocation(w, s, 'provisioning'),
        (c) => c.allocation,
      )}/handover`,
    }),
    visible: applicant,
  },
  {
    method: 'POST',
    route: '/compute/allocations/:id/return',
    expect: { ...all('404/404'), org_admin: '403/404', org_member: '403/404', supplier_admin: 'ok/404' },
    request: async (w, s, side, caller) => ({
      path: `/compute/allocations/${await target(
        w,
        s,
        caller,
        side === 'own' ? ['supplier_admin'] : [],
        () => freshAllocation(w, s, 'ending'),
        (c) => c.allocation,
      )}/return`,
    }),
    visible: applicant,
  },
  {
    method: 'POST',
    route: '/compute/allocations/:id/accept',
    expect: { ...all('404/404'), org_admin: 'ok/404', org_member: '403/404', supplier_admin: '403/404' },
    request: async (w, s, side, caller) => ({
      path: `/compute/allocations/${await target(
        w,
        s,
        caller,
        side === 'own' ? ['org_admin'] : [],
        () => freshAllocation(w, s, 'offered'),
        (c) => c.allocation,
      )}/accept`,
    }),
  },
  {
    method: 'POST',
    route: '/compute/allocations/:id/decline',
    expect: { ...all('404/404'), org_admin: 'ok/404', org_member: '403/404', supplier_admin: '403/404' },
    request: async (w, s, side, caller) => ({
      path: `/compute/allocations/${await target(
        w,
        s,
        caller,
        side === 'own' ? ['org_admin'] : [],
        () => freshAllocation(w, s, 'offered'),
        (c) => c.allocation,
      )}/decline`,
    }),
  },
  {
    method: 'POST',
    route: '/compute/allocations/:id/extensions',
    expect: { ...all('404/404'), org_admin: 'ok/404', org_member: '403/404', supplier_admin: '403/404' },
    request: async (w, s, side, caller) => ({
      path: `/compute/allocations/${await target(
        w,
        s,
        caller,
        side === 'own' ? ['org_admin'] : [],
        () => freshAllocation(w, s, 'scheduled'),
        (c) => c.allocation,
      )}/extensions`,
      body: { endsOn: day(20), reason: '연장' },
    }),
  },
  {
    method: 'POST',
    route: '/compute/extensions/:id/approve',
    expect: all('403/403'),
    request: async (w, s, _side, caller) => ({
      path: `/compute/extensions/${caller.isOperator ? await freshExtension(w, s) : NOTHING}/approve`,
      body: { reason: '승인' },
    }),
  },
  {
    method: 'POST',
    route: '/compute/extensions/:id/reject',
    expect: all('403/403'),
    request: async (w, s, _side, caller) => ({
      path: `/compute/extensions/${caller.isOperator ? await freshExtension(w, s) : NOTHING}/reject`,
      body: { reason: '반려' },
    }),
  },

  // --- the compute supplier's statement; the operator's loop --------------------------------------
  {
    method: 'GET',
    route: '/compute/settlements/:month/suppliers/:id',
    expect: { ...all('404/404'), supplier_admin: 'ok/404' },
    request: async (w, s) => ({
      path: `/compute/settlements/${await closedMonth(w)}/suppliers/${s.supplierId}`,
    }),
  },
  {
    method: 'POST',
    route: '/compute/reconcile',
    expect: all('403/403'),
    request: async () => ({
      path: '/compute/reconcile',
      body: { usage: false, checks: false, drift: false },
    }),
  },
];

async function freshExtension(w: World, s: Side): Promise<string> {
  const allocation = await freshAllocation(w, s, 'scheduled');
  return (
    await w.must('POST', `/compute/allocations/${allocation}/extensions`, { endsOn: day(20), reason: '연장' })
  ).id;
}

/** The shared submitted application of a side, remembered for checks (which are not async). */
const submittedOf = new WeakMap<Side, string>();
async function rememberSubmitted(w: World, s: Side): Promise<string> {
  const id = (await shared(w, s)).submitted;
  submittedOf.set(s, id);
  return id;
}
