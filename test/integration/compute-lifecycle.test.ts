import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import ExcelJS from 'exceljs';
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
} from '../helpers/compute.ts';
import { ADMIN_TOKEN, startTestHub, type TestHub } from '../helpers/hub.ts';

/**
 * The life of GPU grants on a manual pool (docs/compute.md), months passing on the hub's compute clock:
 * hand-over and return confirmed by the compute supplier's admin, usage reported per day and charged
 * on the ledger (programme share from the funding programme's budget, co-payment from the wallet),
 * the monthly utilisation check warning then reclaiming, the freed GPUs offered to the waiting list,
 * an extension, the end of the period, and the compute supplier's monthly statement in CSV and XLSX.
 */
describe('compute allocations: hand-over, usage, utilisation, reclaim, waiting list, extensions, billing', () => {
  const clock = new TestClock(Date.parse('2026-03-02T10:00:00+09:00'));
  let t: TestHub;
  let supplierId: string;
  let supplierAdmin: Caller;
  let poolId: string;
  let callId: string;
  let programmeId: string;
  const orgs: Record<'A' | 'B' | 'C' | 'E', string> = { A: '', B: '', C: '', E: '' };
  const allocation: Record<string, string> = {};
  let applicationE: string;

  const reconcile = () => must(t, 'POST', '/compute/reconcile', {});
  const report = (who: Caller, id: string, day: string, gpuHours: number) =>
    as(t, who.token, 'POST', `/compute/allocations/${id}/usage`, { day, gpuHours });

  before(async () => {
    t = await startTestHub({ KAIHUB_COMPUTE_RECONCILE_MS: '0' }, { hub: { compute: { clock: clock.now } } });
    supplierId = await computeSupplier(t);
    supplierAdmin = await person(t, 'supplier_admin', { supplierId });
    poolId = (await pool(t, supplierId, { gpuCount: 16, pricePerGpuHourKrw: '3000' })).id;
    programmeId = (
      await must(t, 'POST', '/programmes', {
        name: `GPU 지원사업 ${Date.now()}`,
        startsOn: '2026-01-01',
        endsOn: '2026-12-31',
        budgetKrw: '100000000',
        copayPercent: { sme: 20 },
        onExhausted: 'block',
      })
    ).id;
    const reviewers = [await person(t, 'evaluator'), await person(t, 'evaluator')];
    callId = (await call(t, [poolId], { fundingProgrammeId: programmeId })).id;
    await must(t, 'PATCH', `/compute/calls/${callId}`, { evaluatorIds: reviewers.map((r) => r.userId) });
    orgs.A = await organization(t);
    orgs.B = await organization(t, 'university');
    orgs.C = await organization(t, 'research');
    orgs.E = await organization(t);
    const period = { poolId, startsOn: '2026-03-03', endsOn: '2026-06-30' };
    const apps = {
      A: await submitted(t, callId, {
        organizationId: orgs.A,
        quantity: 4,
        applicantRegion: 'non_capital',
        ...period,
      }),
      B: await submitted(t, callId, { organizationId: orgs.B, quantity: 4, ...period }),
      C: await submitted(t, callId, { organizationId: orgs.C, quantity: 4, ...period }),
      E: await submitted(t, callId, { organizationId: orgs.E, quantity: 2, ...period }),
    };
    applicationE = apps.E.id;
    for (const r of reviewers) {
      await score(t, r, apps.A.id, 80);
      await score(t, r, apps.B.id, 90);
      await score(t, r, apps.C.id, 85);
      await score(t, r, apps.E.id, 70);
    }
    const run = await must(t, 'POST', `/compute/calls/${callId}/selection`, {});
    for (const d of run.decisions) {
      const key = (Object.keys(orgs) as (keyof typeof orgs)[]).find((k) => orgs[k] === d.organizationId)!;
      if (d.allocationId) allocation[key] = d.allocationId;
    }
    assert.deepEqual(Object.keys(allocation).sort(), ['A', 'B', 'C']);
  });
  after(() => t.close());

  test('a manual pool: provisioning waits for the compute supplier to confirm the hand-over', async () => {
    clock.set('2026-03-03T09:00:00+09:00');
    const report = await reconcile();
    assert.equal(report.started.length, 3);
    for (const key of ['A', 'B', 'C']) {
      const a = await must(t, 'GET', `/compute/allocations/${allocation[key]}`);
      assert.equal(a.status, 'provisioning', 'nothing is active until the supplier says it was handed over');
    }
    const orgAdmin = await person(t, 'org_admin', { organizationId: orgs.A });
    assert.equal(
      (await as(t, orgAdmin.token, 'POST', `/compute/allocations/${allocation.A}/handover`)).status,
      403,
    );
    const otherSupplier = await person(t, 'supplier_admin', { supplierId: await computeSupplier(t) });
    assert.equal(
      (await as(t, otherSupplier.token, 'POST', `/compute/allocations/${allocation.A}/handover`)).status,
      404,
    );
    for (const key of ['A', 'B', 'C']) {
      const r = await as(t, supplierAdmin.token, 'POST', `/compute/allocations/${allocation[key]}/handover`);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.status, 'active');
    }
    // who sees which allocation
    const mine = await as(t, orgAdmin.token, 'GET', '/compute/allocations');
    assert.deepEqual(
      mine.body.data.map((a: any) => a.id),
      [allocation.A],
    );
    assert.equal((await as(t, supplierAdmin.token, 'GET', '/compute/allocations')).body.data.length, 3);
    assert.equal((await as(t, otherSupplier.token, 'GET', '/compute/allocations')).body.data.length, 0);
    assert.equal((await as(t, orgAdmin.token, 'GET', `/compute/allocations/${allocation.B}`)).status, 404);
  });

  test('usage reported per day is charged: programme share from its budget, co-payment from the wallet', async () => {
    clock.set('2026-03-12T09:00:00+09:00');
    const before = await must(t, 'GET', `/programmes/${programmeId}`);
    assert.equal((await report(supplierAdmin, allocation.A!, '2026-03-03', 10)).status, 200);
    // the same day again, more: only the difference is charged
    assert.equal((await report(supplierAdmin, allocation.A!, '2026-03-03', 12)).status, 200);
    // a day reported lower later is not refunded here: it is recorded for the operator
    assert.equal((await report(supplierAdmin, allocation.A!, '2026-03-04', 5)).status, 200);
    assert.equal((await report(supplierAdmin, allocation.A!, '2026-03-04', 3)).status, 200);
    for (let d = 3; d <= 11; d++) {
      const r = await report(supplierAdmin, allocation.C!, `2026-03-${String(d).padStart(2, '0')}`, 96);
      assert.equal(r.status, 200, JSON.stringify(r.body));
    }
    // bad reports
    const over = await report(supplierAdmin, allocation.A!, '2026-03-05', 97);
    assert.equal(over.status, 400);
    assert.equal(over.body.error.fields[0].field, 'gpuHours');
    assert.equal(
      (await report(supplierAdmin, allocation.A!, '2026-03-02', 1)).body.error.fields[0].field,
      'day',
    );
    assert.equal(
      (await report(supplierAdmin, allocation.A!, '2026-03-13', 1)).body.error.fields[0].field,
      'day',
    );
    const orgAdmin = await person(t, 'org_admin', { organizationId: orgs.A });
    assert.equal((await report(orgAdmin, allocation.A!, '2026-03-05', 1)).status, 403);

    const usage = await must(t, 'GET', `/compute/allocations/${allocation.A}/usage`);
    assert.equal(usage.totals.gpuHours, '15');
    assert.equal(usage.totals.billedGpuHours, '17');
    assert.equal(usage.totals.chargedKrw, '51000');
    assert.equal(usage.totals.programmeKrw, '40800');
    assert.equal(usage.totals.organizationKrw, '10200');
    const funds = await must(t, 'GET', `/organizations/${orgs.A}/funds`);
    assert.equal(funds.walletKrw, '-10200');
    const after = await must(t, 'GET', `/programmes/${programmeId}`);
    // the programme paid 80 % of A's 51,000 and of C's 864 GPU-hours × 3,000
    assert.equal(BigInt(before.unissuedKrw) - BigInt(after.unissuedKrw), 40_800n + 2_073_600n);
    const events = await must(t, 'GET', `/compute/allocations/${allocation.A}/events`);
    assert.ok(events.data.some((e: any) => e.kind === 'usage_shrank'));
  });

  test('the monthly check warns below the threshold, clears on a good month, reclaims after the warning', async () => {
    clock.set('2026-04-01T01:00:00+09:00');
    const march = await must(t, 'POST', `/compute/calls/${callId}/checks`, {});
    const outcome = (id: string) => march.data.find((o: any) => o.allocationId === id);
    assert.equal(outcome(allocation.A!).outcome, 'warning');
    assert.equal(outcome(allocation.A!).grantedGpuHours, '2784'); // 4 GPUs × 29 days × 24 h
    assert.equal(outcome(allocation.B!).outcome, 'warning');
    assert.equal(outcome(allocation.C!).outcome, 'ok'); // 864 of 2,784 GPU-hours: 31.03 %
    assert.equal(outcome(allocation.C!).utilisationPercent, 31.03);
    assert.deepEqual(
      (await must(t, 'POST', `/compute/calls/${callId}/checks`, {})).data,
      [],
      'once per month',
    );
    const events = await must(t, 'GET', `/organizations/${orgs.A}/events`);
    assert.ok(events.data.some((e: any) => e.kind === 'compute.utilisation_warning'));
    await refused(t, 'POST', `/compute/calls/${callId}/checks`, { month: '2026-04' }, 'month');

    // April: B works (clears its warning), A and C do not
    clock.set('2026-04-20T09:00:00+09:00');
    for (let d = 1; d <= 10; d++) {
      const r = await report(supplierAdmin, allocation.B!, `2026-04-${String(d).padStart(2, '0')}`, 96);
      assert.equal(r.status, 200);
    }
    clock.set('2026-05-01T01:00:00+09:00');
    const april = await must(t, 'POST', `/compute/calls/${callId}/checks`, { month: '2026-04' });
    const a = april.data.find((o: any) => o.allocationId === allocation.A);
    assert.equal(a.outcome, 'reclaimed');
    assert.equal(april.data.find((o: any) => o.allocationId === allocation.B).outcome, 'ok');
    assert.equal(april.data.find((o: any) => o.allocationId === allocation.C).outcome, 'warning');
    // a manual pool: reclaimed once the supplier confirms the GPUs are back
    assert.equal((await must(t, 'GET', `/compute/allocations/${allocation.A}`)).status, 'ending');
    const back = await as(t, supplierAdmin.token, 'POST', `/compute/allocations/${allocation.A}/return`);
    assert.equal(back.body.status, 'reclaimed');
    assert.match(back.body.endReason, /below the call's 30%/);
    assert.ok(
      (await must(t, 'GET', `/organizations/${orgs.A}/events`)).data.some(
        (e: any) => e.kind === 'compute.reclaimed',
      ),
    );
  });

  test('reclaimed GPUs are offered to the waiting list, accepted, handed over, then extended', async () => {
    const report = await reconcile();
    assert.equal(report.offers.length, 1);
    const offer = report.offers[0];
    assert.equal(offer.applicationId, applicationE);
    assert.equal(offer.startsOn, '2026-05-01');
    assert.equal(offer.endsOn, '2026-06-30');
    const orgAdminE = await person(t, 'org_admin', { organizationId: orgs.E });
    const memberE = await person(t, 'org_member', { organizationId: orgs.E });
    assert.equal(
      (await as(t, memberE.token, 'POST', `/compute/allocations/${offer.allocationId}/accept`)).status,
      403,
    );
    const accepted = await as(
      t,
      orgAdminE.token,
      'POST',
      `/compute/allocations/${offer.allocationId}/accept`,
    );
    assert.equal(accepted.status, 200, JSON.stringify(accepted.body));
    assert.equal(accepted.body.status, 'scheduled');
    assert.equal((await must(t, 'GET', `/compute/applications/${applicationE}`)).status, 'selected');
    assert.ok(
      (await must(t, 'GET', `/organizations/${orgs.E}/events`)).data.some(
        (e: any) => e.kind === 'compute.offer',
      ),
    );
    await reconcile();
    await as(t, supplierAdmin.token, 'POST', `/compute/allocations/${offer.allocationId}/handover`);
    assert.equal((await must(t, 'GET', `/compute/allocations/${offer.allocationId}`)).status, 'active');

    // extensions: within the call and its longest grant, reviewed by the operator
    const tooLong = await as(
      t,
      orgAdminE.token,
      'POST',
      `/compute/allocations/${offer.allocationId}/extensions`,
      {
        endsOn: '2026-08-31',
        reason: '학습 연장',
      },
    );
    assert.equal(tooLong.status, 400);
    assert.equal(tooLong.body.error.fields[0].field, 'endsOn');
    const asked = await as(
      t,
      orgAdminE.token,
      'POST',
      `/compute/allocations/${offer.allocationId}/extensions`,
      {
        endsOn: '2026-07-31',
        reason: '학습 연장',
      },
    );
    assert.equal(asked.status, 201, JSON.stringify(asked.body));
    await refused(t, 'POST', `/compute/extensions/${asked.body.id}/approve`, {}, 'reason');
    const approved = await must(t, 'POST', `/compute/extensions/${asked.body.id}/approve`, {
      reason: '타당',
    });
    assert.equal(approved.status, 'approved');
    const extended = await must(t, 'GET', `/compute/allocations/${offer.allocationId}`);
    assert.equal(extended.endsOn, '2026-07-31');
    assert.equal(extended.extensions.length, 1);
  });

  test('the end of the period: ending, returned, ended', async () => {
    clock.set('2026-07-01T00:30:00+09:00');
    await reconcile();
    for (const key of ['B', 'C']) {
      assert.equal((await must(t, 'GET', `/compute/allocations/${allocation[key]}`)).status, 'ending');
      const r = await as(t, supplierAdmin.token, 'POST', `/compute/allocations/${allocation[key]}/return`);
      assert.equal(r.body.status, 'ended');
    }
  });

  test('the compute supplier’s monthly statement: closed months only, late usage as an adjustment, CSV and XLSX', async () => {
    const path = `/compute/settlements/2026-03/suppliers/${supplierId}`;
    assert.equal((await t.admin('GET', path)).status, 404, 'an open month has no statement');
    await must(t, 'POST', '/settlements', { month: '2026-03' });
    const s = await must(t, 'GET', path);
    assert.equal(s.lines.length, 2);
    const lineA = s.lines.find((l: any) => l.organizationId === orgs.A);
    assert.equal(lineA.gpuHours, '17');
    assert.equal(lineA.amountKrw, '51000');
    assert.equal(s.totals.gpuHours, '881');
    assert.equal(s.totals.amountKrw, '2643000');
    assert.equal(s.totals.supplyValueKrw, '2643000');
    assert.equal(s.totals.vatKrw, '264300');
    assert.equal(s.totals.totalKrw, '2907300');
    assert.equal(s.totals.programmePartKrw, '2114400');
    assert.equal(s.totals.organizationPartKrw, '528600');
    // a supplier's admin reads theirs; another's gets a 404
    assert.equal((await as(t, supplierAdmin.token, 'GET', path)).status, 200);
    const other = await person(t, 'supplier_admin', { supplierId: await computeSupplier(t) });
    assert.equal((await as(t, other.token, 'GET', path)).status, 404);

    // March is closed: usage of March reported now lands in April, marked as an adjustment
    clock.set('2026-07-02T09:00:00+09:00');
    assert.equal((await report(supplierAdmin, allocation.A!, '2026-03-05', 5)).status, 200);
    assert.deepEqual(await must(t, 'GET', path), s, 'a closed month never changes');
    await must(t, 'POST', '/settlements', { month: '2026-04' });
    const april = await must(t, 'GET', `/compute/settlements/2026-04/suppliers/${supplierId}`);
    const late = april.lines.find((l: any) => l.adjustment);
    assert.equal(late.organizationId, orgs.A);
    assert.equal(late.gpuHours, '5');
    assert.equal(april.totals.adjustments, 1);

    const csv = await fetch(`${t.url}/admin/v1${path}?format=csv`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    const bytes = Buffer.from(await csv.arrayBuffer());
    assert.deepEqual([...bytes.subarray(0, 3)], [0xef, 0xbb, 0xbf], 'a byte-order mark, for Excel');
    const text = bytes.toString('utf8');
    assert.match(text, /GPU 시간 GPU-hours/);
    assert.match(text, /합계 Total \(KRW\),2907300/);
    const xlsx = await fetch(`${t.url}/admin/v1${path}?format=xlsx`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    const workbook = new ExcelJS.Workbook();
    await workbook.xlsx.load(Buffer.from(await xlsx.arrayBuffer()) as never);
    let supply: unknown;
    let amounts = 0;
    workbook.worksheets[0]!.eachRow((row, n) => {
      if (String(row.getCell(1).value).startsWith('공급가액')) supply = row.getCell(2).value;
      if (n > 1 && typeof row.getCell(8).value === 'number') amounts += row.getCell(8).value as number;
    });
    assert.equal(supply, 2_643_000);
    assert.equal(amounts, 2_643_000);
  });

  test('every change is in the audit log', async () => {
    for (const [entityType, action] of [
      ['compute_allocation', 'handover'],
      ['compute_allocation', 'report_usage'],
      ['compute_allocation', 'return'],
      ['compute_allocation', 'accept_offer'],
      ['compute_allocation', 'utilisation_check'],
      ['compute_extension', 'request'],
      ['compute_extension', 'approve'],
      ['compute_call', 'select'],
      ['compute', 'reconcile'],
    ]) {
      const r = await must(t, 'GET', `/audit?entityType=${entityType}&action=${action}`);
      assert.ok(r.data.length > 0, `${entityType} ${action} audited`);
    }
  });
});
