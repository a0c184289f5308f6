import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  as,
  type Caller,
  call,
  computeSupplier,
  must,
  organization,
  person,
  pool,
  refused,
  score,
  submitted,
  TestClock,
  unique,
} from '../helpers/compute.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';

/**
 * GPU compute calls, applications, review and selection (docs/compute.md), over HTTP on the engine
 * KAIHUB_TEST_DATABASE names: field-named errors for every way of asking wrong, ranking by weighted
 * score plus the non-capital bonus with the declared tie-break, selection that fills capacity in rank
 * order and keeps a waiting list with a reason for everything, and two operators approving at the
 * same moment never over-committing a pool.
 */
describe('compute calls, applications and selection', () => {
  const clock = new TestClock(Date.parse('2026-03-02T10:00:00+09:00'));
  let t: TestHub;
  let supplierId: string;
  let poolId: string;
  let reviewers: Caller[];

  before(async () => {
    t = await startTestHub({ KAIHUB_COMPUTE_RECONCILE_MS: '0' }, { hub: { compute: { clock: clock.now } } });
    supplierId = await computeSupplier(t);
    poolId = (await pool(t, supplierId, { gpuCount: 16 })).id;
    reviewers = [await person(t, 'evaluator'), await person(t, 'evaluator')];
  });
  after(() => t.close());

  const assign = (callId: string) =>
    must(t, 'PATCH', `/compute/calls/${callId}`, { evaluatorIds: reviewers.map((r) => r.userId) });

  test('bad requests are refused naming the field: track, pool, call, period, overlap, eligibility', async () => {
    const c = await call(t, [poolId]);
    const org = await organization(t);
    const path = `/compute/calls/${c.id}/applications`;
    const base = {
      organizationId: org,
      trackId: 'small',
      poolId,
      unit: 'gpu',
      quantity: 2,
      startsOn: '2026-03-03',
      endsOn: '2026-04-30',
      purpose: 'training',
      applicantRegion: 'capital',
    };
    // beyond the track, the pool, the call
    await refused(t, 'POST', path, { ...base, quantity: 5 }, 'quantity');
    await refused(t, 'POST', path, { ...base, trackId: 'server', unit: 'server', quantity: 3 }, 'quantity');
    const bigCall = await call(t, [poolId], {
      capacityGpus: 100,
      tracks: [{ id: 'big', name: '대형', unit: 'gpu', min: 1, max: 100 }],
    });
    const tooMany = await refused(
      t,
      'POST',
      `/compute/calls/${bigCall.id}/applications`,
      { ...base, trackId: 'big', quantity: 20 },
      'quantity',
    );
    assert.match(tooMany.error.message, /more than pool .* has \(16\)/);
    const overCall = await refused(
      t,
      'POST',
      path,
      { ...base, trackId: 'server', unit: 'server', quantity: 2 },
      'quantity',
    );
    assert.match(overCall.error.message, /more than the call grants \(12\)/);
    await refused(t, 'POST', path, { ...base, unit: 'tf', quantity: 160 }, 'unit');
    await refused(t, 'POST', path, { ...base, trackId: 'tf', unit: 'tf', quantity: 200 }, 'quantity');
    await refused(t, 'POST', path, { ...base, trackId: 'nope' }, 'trackId');
    // unknown pools, past periods, too long, outside the call, ineligible
    await refused(t, 'POST', path, { ...base, poolId: 'gpl_nope' }, 'poolId');
    await refused(t, 'POST', path, { ...base, startsOn: '2026-03-01' }, 'startsOn');
    await refused(t, 'POST', path, { ...base, endsOn: '2026-08-31' }, 'endsOn');
    await refused(t, 'POST', path, { ...base, endsOn: '2026-09-30' }, 'endsOn');
    await refused(t, 'POST', path, { ...base, endsOn: '2026-03-02' }, 'endsOn');
    await refused(
      t,
      'POST',
      path,
      { ...base, organizationId: await organization(t, 'large') },
      'organizationId',
    );
    await refused(t, 'POST', path, { ...base, purpose: 'mining' }, 'purpose');

    // teraflops become whole GPUs, rounded up: 320 TF on a 989-TF H100 is one GPU
    const tf = await must(t, 'POST', path, { ...base, trackId: 'tf', unit: 'tf', quantity: 320 });
    assert.equal(tf.gpus, 1);
    // one live application per organisation and call
    await refused(t, 'POST', path, base, 'organizationId', 409);
    // nothing was left behind by the refusals
    const mine = await must(t, 'GET', `/compute/applications?callId=${c.id}`);
    assert.equal(mine.data.length, 1);

    // an allocation of the organisation on the pool makes an overlapping application a 400
    await must(t, 'PATCH', `/compute/applications/${tf.id}`, { plan: '계획' });
    await must(t, 'POST', `/compute/applications/${tf.id}/submit`);
    await must(t, 'POST', `/compute/applications/${tf.id}/select`, { reason: '테스트' });
    const other = await call(t, [poolId]);
    const overlap = await refused(t, 'POST', `/compute/calls/${other.id}/applications`, base, 'startsOn');
    assert.match(overlap.error.message, /overlaps allocation/);
    // the period after it is fine
    await must(t, 'POST', `/compute/calls/${other.id}/applications`, {
      ...base,
      startsOn: '2026-05-01',
      endsOn: '2026-05-31',
    });

    // a call must be coherent too
    await refused(
      t,
      'POST',
      '/compute/calls',
      { ...(await callBody([poolId])), poolIds: ['gpl_nope'] },
      'poolIds.0',
    );
    await refused(
      t,
      'POST',
      '/compute/calls',
      { ...(await callBody([poolId])), reviewCriteria: [{ id: 'a', name: 'A', weight: 60 }] },
      'reviewCriteria',
    );
    await refused(
      t,
      'POST',
      '/compute/calls',
      { ...(await callBody([poolId])), tieBreak: ['criterion:nope'] },
      'tieBreak.0',
    );
    await refused(
      t,
      'POST',
      '/compute/calls',
      { ...(await callBody([poolId])), tracks: [{ id: 'x', name: 'X', unit: 'tf' }] },
      'tracks.0.sizes',
    );
  });

  async function callBody(poolIds: string[]) {
    return {
      name: `잘못된 공모 ${unique()}`,
      startsOn: '2026-03-01',
      endsOn: '2026-08-31',
      poolIds,
      tracks: [{ id: 'small', name: 'S', unit: 'gpu', min: 1, max: 4 }],
      eligibleClasses: ['sme'],
      maxGrantDays: 120,
      reviewCriteria: [
        { id: 'impact', name: '파급', weight: 50 },
        { id: 'readiness', name: '준비', weight: 50 },
      ],
      capacityGpus: 8,
    };
  }

  test('ranking: weighted score + non-capital bonus, ties by the declared keys; selection fills capacity in rank order and keeps a waiting list', async () => {
    const p = (await pool(t, supplierId, { gpuCount: 16 })).id;
    const c = await call(t, [p]); // capacity 12 GPUs
    await assign(c.id);
    const period = { poolId: p, startsOn: '2026-03-03', endsOn: '2026-06-30' };
    const A = await submitted(t, c.id, {
      organizationId: await organization(t),
      quantity: 4,
      applicantRegion: 'non_capital',
      ...period,
    });
    const B = await submitted(t, c.id, {
      organizationId: await organization(t, 'university'),
      quantity: 4,
      ...period,
    });
    const C = await submitted(t, c.id, {
      organizationId: await organization(t, 'research'),
      quantity: 4,
      ...period,
    });
    const E = await submitted(t, c.id, { organizationId: await organization(t), quantity: 2, ...period });
    const F = await submitted(t, c.id, { organizationId: await organization(t), quantity: 1, ...period });
    // A: 80 + 5 (outside the capital region) = 85; B: 90; C: 85, capital; E: 70; F: not reviewed
    for (const r of reviewers) {
      await score(t, r, A.id, 80);
      await score(t, r, B.id, 90);
      await score(t, r, C.id, 85);
      await score(t, r, E.id, 70);
    }
    // the rules are fixed once reviewing has started
    await refused(t, 'PATCH', `/compute/calls/${c.id}`, { tieBreak: ['fewer_gpus'] }, 'tieBreak', 409);

    const preview = await must(t, 'POST', `/compute/calls/${c.id}/selection`, { dryRun: true });
    assert.equal(
      (await must(t, 'GET', `/compute/applications/${A.id}`)).status,
      'submitted',
      'a dry run decides nothing',
    );
    const run = await must(t, 'POST', `/compute/calls/${c.id}/selection`, {});
    assert.deepEqual(
      preview.decisions.map((d: any) => [d.applicationId, d.decision]),
      run.decisions.map((d: any) => [d.applicationId, d.decision]),
    );
    assert.deepEqual(
      run.decisions.map((d: any) => [d.applicationId, d.rank, d.score, d.decision]),
      [
        [B.id, 1, 90, 'selected'],
        [A.id, 2, 85, 'selected'], // ties with C: non_capital_first
        [C.id, 3, 85, 'selected'],
        [E.id, 4, 70, 'waitlisted'], // 12 of 12 GPUs granted
      ],
    );
    assert.deepEqual(run.notReviewed, [F.id]);
    for (const d of run.decisions) assert.ok(d.reason.length > 10, 'every decision carries a reason');
    assert.match(run.decisions[1].reason, /가점 5\.00/);
    assert.match(run.decisions[3].reason, /the call's capacity has 0 GPUs free, 2 asked/);

    const e = await must(t, 'GET', `/compute/applications/${E.id}`);
    assert.equal(e.status, 'waitlisted');
    assert.equal(e.rank, 4);
    assert.match(e.decisionReason, /waiting list/);
    const allocations = await must(t, 'GET', `/compute/allocations?callId=${c.id}`);
    assert.equal(allocations.data.length, 3);
    for (const a of allocations.data) {
      assert.equal(a.status, 'scheduled');
      assert.equal(a.pricePerGpuHourKrw, '3000');
      assert.equal(a.copayPercent, 20);
    }
    // the pool's days: 12 of 16 held from 2026-03-03
    const availability = await must(t, 'GET', `/compute/pools/${p}/availability?from=2026-03-02&days=3`);
    assert.deepEqual(
      availability.days.map((d: any) => [d.day, d.heldGpus, d.freeGpus]),
      [
        ['2026-03-02', 0, 16],
        ['2026-03-03', 12, 4],
        ['2026-03-04', 12, 4],
      ],
    );

    // the call's capacity raised: the operator approves the waitlisted one by hand
    await must(t, 'PATCH', `/compute/calls/${c.id}`, { capacityGpus: 16 });
    const selected = await must(t, 'POST', `/compute/applications/${E.id}/select`, { reason: '정원 증원' });
    assert.equal(selected.status, 'selected');
    // and now the pool is full: nothing more fits, whoever approves
    const G = await submitted(t, c.id, { organizationId: await organization(t), quantity: 4, ...period });
    const full = await refused(
      t,
      'POST',
      `/compute/applications/${G.id}/select`,
      { reason: '추가 선정' },
      'gpus',
      409,
    );
    assert.match(full.error.message, /2026-03-03/);
    // capacity cannot go below what is granted
    await refused(t, 'PATCH', `/compute/calls/${c.id}`, { capacityGpus: 10 }, 'capacityGpus');
    await refused(t, 'PATCH', `/compute/pools/${p}`, { gpuCount: 8 }, 'gpuCount');
    // a rejection needs a reason
    await refused(t, 'POST', `/compute/applications/${G.id}/reject`, {}, 'reason');
    const rejected = await must(t, 'POST', `/compute/applications/${G.id}/reject`, { reason: '풀 부족' });
    assert.equal(rejected.decisionReason, '풀 부족');

    const audit = await must(t, 'GET', `/audit?entityType=compute_call&entityId=${c.id}&action=select`);
    assert.equal(audit.data.length, 1, 'the selection run is in the audit log (the dry run is not)');
    assert.equal(audit.data[0].after.selected, 3);
  });

  test('a hand approval needs a reason, and a smaller grant it gives still fits the track (minimum, whole servers, TF sizes)', async () => {
    const p = (await pool(t, supplierId, { gpuCount: 32, tfPerGpu: 100 })).id;
    const c = await call(t, [p], {
      capacityGpus: 32,
      tracks: [
        { id: 'small', name: '2–4 GPU', unit: 'gpu', min: 2, max: 4 },
        { id: 'server', name: '8 GPU 서버 단위', unit: 'server', min: 1, max: 2 },
        { id: 'tf', name: '160/320 TF 단위', unit: 'tf', sizes: [160, 320] },
      ],
    });
    const apply = async (trackId: string, unit: string, quantity: number) =>
      (
        await submitted(t, c.id, {
          organizationId: await organization(t),
          trackId,
          unit,
          quantity,
          poolId: p,
          startsOn: '2026-03-03',
          endsOn: '2026-04-30',
        })
      ).id as string;
    const select = (id: string) => `/compute/applications/${id}/select`;
    const small = await apply('small', 'gpu', 4);
    const refusal = await refused(t, 'POST', select(small), {}, 'reason');
    assert.match(JSON.stringify(refusal.error), /say why/);
    await refused(t, 'POST', select(small), { reason: '  ' }, 'reason');
    await refused(t, 'POST', select(small), { reason: '일부 선정', gpus: 1 }, 'gpus');
    const chosen = await must(t, 'POST', select(small), { reason: '예산 범위 내 일부 선정', gpus: 2 });
    assert.equal(chosen.decisionReason, '예산 범위 내 일부 선정');
    assert.equal((await must(t, 'GET', `/compute/allocations/${chosen.allocationId}`)).gpus, 2);

    const server = await apply('server', 'server', 2);
    const notWhole = await refused(t, 'POST', select(server), { reason: '일부', gpus: 12 }, 'gpus');
    assert.match(notWhole.error.fields[0].message, /whole servers of 8 GPUs/);
    const one = await must(t, 'POST', select(server), { reason: '서버 1대 선정', gpus: 8 });
    assert.equal((await must(t, 'GET', `/compute/allocations/${one.allocationId}`)).gpus, 8);

    const tf = await apply('tf', 'tf', 320); // 4 GPUs of 100 TF
    await refused(t, 'POST', select(tf), { reason: '일부', gpus: 3 }, 'gpus');
    const half = await must(t, 'POST', select(tf), { reason: '160 TF로 선정', gpus: 2 });
    assert.equal((await must(t, 'GET', `/compute/allocations/${half.allocationId}`)).gpus, 2);
  });

  test('two operators approving at the same moment never over-commit a pool', async () => {
    const operators = [await person(t, 'operator'), await person(t, 'operator')];
    for (let round = 0; round < 4; round++) {
      // a 4-GPU pool; two applications of 3 GPUs over the same days: only one fits
      const p = (await pool(t, supplierId, { gpuCount: 4 })).id;
      const c = await call(t, [p], { capacityGpus: 100 });
      const period = { poolId: p, quantity: 3, startsOn: '2026-04-01', endsOn: '2026-04-30' };
      const x = await submitted(t, c.id, { organizationId: await organization(t), ...period });
      const y = await submitted(t, c.id, { organizationId: await organization(t), ...period });
      const answers = await Promise.all([
        as(t, operators[0]!.token, 'POST', `/compute/applications/${x.id}/select`, { reason: '동시 1' }),
        as(t, operators[1]!.token, 'POST', `/compute/applications/${y.id}/select`, { reason: '동시 2' }),
      ]);
      const statuses = answers.map((a) => a.status).sort();
      assert.deepEqual(statuses, [200, 409], JSON.stringify(answers.map((a) => a.body)));
      const loser = answers.find((a) => a.status === 409)!;
      assert.equal(loser.body.error.fields[0].field, 'gpus');
      const held = await must(t, 'GET', `/compute/pools/${p}/availability?from=2026-04-01&days=30`);
      for (const d of held.days) assert.ok(d.freeGpus >= 0, `over-committed on ${d.day}`);
      assert.equal((await must(t, 'GET', `/compute/allocations?poolId=${p}`)).data.length, 1);
    }
    // two selection runs of two calls sharing one pool, at once: together within the pool
    const shared = (await pool(t, supplierId, { gpuCount: 6 })).id;
    const calls = [
      await call(t, [shared], { capacityGpus: 100 }),
      await call(t, [shared], { capacityGpus: 100 }),
    ];
    for (const c of calls) {
      await assign(c.id);
      for (let i = 0; i < 3; i++) {
        const a = await submitted(t, c.id, {
          organizationId: await organization(t),
          poolId: shared,
          quantity: 2,
          startsOn: '2026-05-01',
          endsOn: '2026-05-31',
        });
        await score(t, reviewers[0]!, a.id, 50 + i);
      }
    }
    const runs = await Promise.all(
      calls.map((c, i) => as(t, operators[i]!.token, 'POST', `/compute/calls/${c.id}/selection`, {})),
    );
    for (const r of runs) assert.equal(r.status, 200, JSON.stringify(r.body));
    const selected = runs.flatMap((r) => r.body.decisions.filter((d: any) => d.decision === 'selected'));
    assert.equal(selected.length, 3, '6 GPUs hold three 2-GPU grants, whichever run came first');
    const held = await must(t, 'GET', `/compute/pools/${shared}/availability?from=2026-05-01&days=31`);
    for (const d of held.days) assert.equal(d.freeGpus, 0);
  });

  test('reviews: only the call’s evaluators, on its criteria; the applicant’s people see their own only', async () => {
    const p = (await pool(t, supplierId)).id;
    const c = await call(t, [p]);
    await assign(c.id);
    const org = await organization(t);
    const orgAdmin = await person(t, 'org_admin', { organizationId: org });
    const outsider = await person(t, 'evaluator');
    const created = await as(t, orgAdmin.token, 'POST', `/compute/calls/${c.id}/applications`, {
      organizationId: org,
      trackId: 'small',
      poolId: p,
      unit: 'gpu',
      quantity: 1,
      startsOn: '2026-03-10',
      endsOn: '2026-03-20',
      purpose: 'research',
      plan: '연구 계획',
      applicantRegion: 'non_capital',
      schedulerUsers: ['kim'],
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    // a draft is the organisation's alone
    assert.equal(
      (await as(t, reviewers[0]!.token, 'GET', `/compute/applications/${created.body.id}`)).status,
      404,
    );
    assert.equal(
      (await as(t, orgAdmin.token, 'POST', `/compute/applications/${created.body.id}/submit`)).status,
      200,
    );
    const bad = await as(t, reviewers[0]!.token, 'POST', `/compute/applications/${created.body.id}/reviews`, {
      scores: { impact: 50 },
    });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.fields[0].field, 'scores.readiness');
    assert.equal(
      (
        await as(t, outsider.token, 'POST', `/compute/applications/${created.body.id}/reviews`, {
          scores: { impact: 1, readiness: 1 },
        })
      ).status,
      404,
      'an evaluator not assigned to the call does not see it',
    );
    await score(t, reviewers[0]!, created.body.id, 60, 70);
    const listed = await as(
      t,
      reviewers[1]!.token,
      'GET',
      `/compute/applications/${created.body.id}/reviews`,
    );
    assert.deepEqual(listed.body.data, [], 'blind until one’s own review is in');
    const mine = await as(t, orgAdmin.token, 'GET', '/compute/applications');
    assert.deepEqual(
      mine.body.data.map((a: any) => a.id),
      [created.body.id],
    );
  });
});
