import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { voucherShare } from '../../src/billing/ledger.ts';
import { formatKrw, parseKrwAmount } from '../../src/billing/money.ts';
import { type Database, openDatabase } from '../../src/storage/database.ts';
import { type FakeOpenAI, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import { runAdminInProcess } from '../helpers/cli.ts';
import { ADMIN_TOKEN, type Catalog, seedCatalog, startTestHub, type TestHub } from '../helpers/hub.ts';
import { usageEvent } from '../helpers/v1.ts';

/**
 * The supplier pool, applications, review and selection (docs/billing.md), over HTTP, on the engine
 * KAIHUB_TEST_DATABASE names: the whole flow with each role's own token, selection against capacity
 * and budget (two operators at the same moment included), the voucher it issues paying for calls,
 * field-named errors and who sees what.
 */

interface Answer {
  status: number;
  body: any;
  requestId: string | null;
}

const CRITERIA = [
  { id: 'feasibility', name: '실현 가능성', weight: 60 },
  { id: 'impact', name: '기대 효과', weight: 40 },
];

describe('supplier pool, applications, review and selection', () => {
  let fake: FakeOpenAI;
  let t: TestHub;
  let db: Database;
  let catalog: Catalog;
  let n = 0;
  const unique = () => `${Date.now().toString(36)}-${n++}`;

  async function call(token: string, method: string, path: string, body?: unknown): Promise<Answer> {
    const res = await fetch(`${t.url}/admin/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return {
      status: res.status,
      body: text ? JSON.parse(text) : undefined,
      requestId: res.headers.get('x-request-id'),
    };
  }

  /** The operator token's call; asserts the status. */
  async function admin(method: string, path: string, body?: unknown, status?: number) {
    const r = await t.admin(method, path, body);
    if (status === undefined)
      assert.ok(
        r.status === 200 || r.status === 201,
        `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`,
      );
    else assert.equal(r.status, status, `${method} ${path}: ${JSON.stringify(r.body)}`);
    return r.body;
  }

  /** A user holding `role` (in `tenant`) and a personal access token: a function calling as them. */
  async function person(role: string, tenant: { supplierId?: string; organizationId?: string } = {}) {
    const user = await admin('POST', '/users', {
      name: `사람 ${unique()}`,
      email: `p-${unique()}@example.kr`,
    });
    await admin('POST', `/users/${user.id}/memberships`, { role, ...tenant });
    const token = await admin('POST', `/users/${user.id}/tokens`, { name: 'test' });
    const as = (method: string, path: string, body?: unknown) => call(token.token, method, path, body);
    return Object.assign(as, { userId: user.id as string });
  }

  async function supplier() {
    const s = await admin('POST', '/suppliers', { name: `공급기업 ${unique()}` });
    const p = await admin('POST', '/products', {
      supplierId: s.id,
      model: `pool-${unique()}`,
      displayName: 'Pool product',
      purposes: ['chat'],
      modality: 'text',
      contextWindow: 8192,
      priceInputPer1M: '1000',
      priceOutputPer1M: '2000',
      residency: 'domestic',
    });
    return {
      id: s.id as string,
      productId: p.id as string,
      admin: await person('supplier_admin', { supplierId: s.id }),
    };
  }

  async function organization(cls = 'sme') {
    const o = await admin('POST', '/organizations', {
      name: `수요기관 ${unique()}`,
      class: cls,
      spendMode: 'prepaid',
    });
    return { id: o.id as string, admin: await person('org_admin', { organizationId: o.id }) };
  }

  async function programme(extra: Record<string, unknown> = {}) {
    return admin('POST', '/programmes', {
      name: `AI 바우처 공모 ${unique()}`,
      startsOn: '2026-01-01',
      endsOn: '2030-12-31',
      budgetKrw: '100000000',
      copayPercent: { sme: 20 },
      onExhausted: 'block',
      reviewCriteria: CRITERIA,
      ...extra,
    });
  }

  /** A submitted application of a new organisation, through a pool entry of `poolEntryId`. */
  async function submitted(programmeId: string, poolEntryId: string, requestedKrw = '30000000') {
    const org = await organization();
    const a = await admin('POST', `/programmes/${programmeId}/applications`, {
      organizationId: org.id,
      poolEntryId,
      requestedKrw,
      costCategories: ['api_usage'],
      plan: '사업 계획',
    });
    await admin('POST', `/applications/${a.id}/submit`);
    return { id: a.id as string, org };
  }

  async function poolEntry(programmeId: string) {
    const s = await supplier();
    return (
      await admin('POST', `/programmes/${programmeId}/pool`, { supplierId: s.id, productIds: [s.productId] })
    ).id as string;
  }

  async function programmeBalance(programmeId: string): Promise<bigint> {
    const row = await db.get<{ b: string }>(
      'SELECT CAST(balance_micro_krw AS TEXT) AS b FROM ledger_accounts WHERE id = ?',
      [`programme:${programmeId}`],
    );
    return BigInt(row!.b);
  }

  before(async () => {
    fake = await startFakeOpenAI({ apiKey: 'upstream-secret' });
    t = await startTestHub();
    catalog = await seedCatalog(t, fake.url);
    db = await openDatabase(t.database.location);
  });
  after(async () => {
    await db?.close();
    await t?.close();
    await fake?.close();
  });

  test('the whole flow: pool, matching, a plan written together, review, selection within capacity, a voucher that pays', async () => {
    const p = await programme({ capacity: 2 });
    assert.equal(p.capacity, 2);
    assert.deepEqual(p.reviewCriteria, CRITERIA);
    const e1 = await person('evaluator');
    const e2 = await person('evaluator');
    const patched = await admin('PATCH', `/programmes/${p.id}`, { evaluatorIds: [e1.userId, e2.userId] });
    assert.deepEqual(patched.evaluatorIds, [e1.userId, e2.userId].sort());

    // two suppliers join the pool; the first with the product that has a deployment
    const sa1 = await person('supplier_admin', { supplierId: catalog.supplierId });
    const s2 = await supplier();
    const entry1 = await sa1('POST', `/programmes/${p.id}/pool`, {
      supplierId: catalog.supplierId,
      summary: '초거대 AI API와 PoC 컨설팅',
      productIds: [catalog.productId],
      services: [{ name: 'PoC 컨설팅', description: '4주', costCategories: ['consulting', 'poc'] }],
    });
    assert.equal(entry1.status, 201, JSON.stringify(entry1.body));
    const entry2 = await s2.admin('POST', `/programmes/${p.id}/pool`, {
      supplierId: s2.id,
      productIds: [s2.productId],
    });
    assert.equal(entry2.status, 201, JSON.stringify(entry2.body));
    // a supplier admin joins for their own supplier only
    const foreign = await s2.admin('POST', `/programmes/${p.id}/pool`, {
      supplierId: catalog.supplierId,
      productIds: [],
    });
    assert.equal(foreign.status, 403);
    // anyone signed in browses the pool
    const pool = await e1('GET', `/programmes/${p.id}/pool`);
    assert.deepEqual(pool.body.data.map((e: any) => e.id).sort(), [entry1.body.id, entry2.body.id].sort());

    // three organisations apply, each with its matched supplier
    const orgs = [await organization(), await organization(), await organization()];
    const matched = [entry1.body.id, entry2.body.id, entry1.body.id];
    const apps: string[] = [];
    for (const [i, org] of orgs.entries()) {
      const a = await org.admin('POST', `/programmes/${p.id}/applications`, {
        organizationId: org.id,
        poolEntryId: matched[i],
        requestedKrw: '20000000',
        costCategories: ['api_usage', 'poc'],
        plan: `기관 ${i + 1}의 초안`,
      });
      assert.equal(a.status, 201, JSON.stringify(a.body));
      assert.equal(a.body.status, 'draft');
      apps.push(a.body.id);
    }
    // the plan is co-written: the matched supplier edits it; another supplier does not even see it
    const coEdit = await sa1('PATCH', `/applications/${apps[0]}`, {
      plan: '공동 작성한 계획: API 연동과 PoC',
    });
    assert.equal(coEdit.status, 200, JSON.stringify(coEdit.body));
    assert.equal(coEdit.body.plan, '공동 작성한 계획: API 연동과 PoC');
    assert.equal((await s2.admin('GET', `/applications/${apps[0]}`)).status, 404);
    assert.equal((await s2.admin('PATCH', `/applications/${apps[0]}`, { plan: 'x' })).status, 404);
    const amount = await sa1('PATCH', `/applications/${apps[0]}`, { requestedKrw: '1' });
    assert.equal(amount.status, 403, 'the supplier edits the plan, not the request');
    // drafts are not the evaluators' to see
    assert.equal((await e1('GET', `/applications/${apps[0]}`)).status, 404);
    for (const [i, org] of orgs.entries()) {
      const s = await org.admin('POST', `/applications/${apps[i]}/submit`);
      assert.equal(s.status, 200, JSON.stringify(s.body));
      assert.equal(s.body.status, 'submitted');
    }
    assert.equal((await sa1('PATCH', `/applications/${apps[0]}`, { plan: '늦은 수정' })).status, 409);
    assert.deepEqual(
      (await sa1('GET', `/programmes/${p.id}/applications`)).body.data.map((a: any) => a.id),
      [apps[0], apps[2]],
      'a supplier sees the applications matched to it',
    );

    // review: nobody sees the others' scores before giving their own
    assert.deepEqual((await e2('GET', `/applications/${apps[0]}/reviews`)).body.data, []);
    const r1 = await e1('POST', `/applications/${apps[0]}/reviews`, {
      scores: { feasibility: 80, impact: 70 },
      comment: '좋음',
    });
    assert.equal(r1.status, 200, JSON.stringify(r1.body));
    assert.equal(r1.body.weightedScore, 76);
    assert.deepEqual((await e2('GET', `/applications/${apps[0]}/reviews`)).body.data, []);
    await e2('POST', `/applications/${apps[0]}/reviews`, { scores: { feasibility: 91, impact: 55 } });
    const seen = (await e2('GET', `/applications/${apps[0]}/reviews`)).body.data;
    assert.equal(seen.length, 2);
    const other = seen.find((r: any) => !r.mine);
    assert.equal(other.reviewerId, undefined, 'the other reviewer is not named');
    assert.equal(other.weightedScore, 76);
    assert.equal(seen.find((r: any) => r.mine).weightedScore, 76.6);
    const scored = await admin('GET', `/applications/${apps[0]}`);
    assert.deepEqual(scored.review, { reviews: 2, weightedScore: 76.3 });
    // an organisation does not score, and does not read the reviews
    assert.equal((await orgs[0]!.admin('GET', `/applications/${apps[0]}/reviews`)).status, 403);

    // selection: two fit the capacity, the third is refused naming it
    const unissued = await programmeBalance(p.id);
    const selected = await admin('POST', `/applications/${apps[0]}/select`, {
      amountKrw: '15000000',
      startsOn: '2026-03-01',
      endsOn: '2027-02-28',
      costCategories: ['api_usage'],
      reason: '평가 1위',
    });
    assert.equal(selected.status, 'selected');
    assert.equal(selected.decisionReason, '평가 1위');
    assert.deepEqual(
      { ...selected.agreement, id: undefined, voucherId: undefined, createdAt: undefined },
      {
        id: undefined,
        voucherId: undefined,
        createdAt: undefined,
        amountKrw: '15000000',
        startsOn: '2026-03-01',
        endsOn: '2027-02-28',
        costCategories: ['api_usage'],
      },
    );
    await admin('POST', `/applications/${apps[1]}/select`, { amountKrw: '20000000' });
    const third = await t.admin('POST', `/applications/${apps[2]}/select`, { amountKrw: '1000' });
    assert.equal(third.status, 409, JSON.stringify(third.body));
    assert.equal(third.body.error.fields[0].field, 'capacity');
    assert.match(third.body.error.message, /정원.*\/.*at most 2/);
    assert.equal(await programmeBalance(p.id), unissued - parseKrwAmount('35000000'));

    // a rejection gives its reason
    const noReason = await t.admin('POST', `/applications/${apps[2]}/reject`, {});
    assert.equal(noReason.status, 400);
    assert.equal(noReason.body.error.fields[0].field, 'reason');
    const blank = await t.admin('POST', `/applications/${apps[2]}/reject`, { reason: '  ' });
    assert.equal(blank.body.error.fields[0].field, 'reason');
    const rejected = await admin('POST', `/applications/${apps[2]}/reject`, { reason: '정원 초과' });
    assert.equal(rejected.status, 'rejected');
    assert.equal((await orgs[2]!.admin('GET', `/applications/${apps[2]}`)).body.decisionReason, '정원 초과');
    // decided is decided
    assert.equal((await t.admin('POST', `/applications/${apps[0]}/reject`, { reason: 'x' })).status, 409);

    // the voucher selection issued pays for the organisation's calls (prepaid: it must hold funds)
    const funds = await orgs[0]!.admin('GET', `/organizations/${orgs[0]!.id}/funds`);
    assert.equal(funds.status, 200);
    assert.equal(funds.body.vouchers.length, 1);
    const voucher = funds.body.vouchers[0];
    assert.equal(voucher.id, selected.agreement.voucherId);
    assert.equal(voucher.amountKrw, '15000000');
    assert.equal(voucher.validFrom, '2026-03-01');
    assert.equal(voucher.validUntil, '2027-02-28');
    assert.equal(voucher.copayPercent, 20);
    await admin('POST', `/organizations/${orgs[0]!.id}/deposits`, { amountKrw: '1000' });
    const key = await orgs[0]!.admin('POST', `/organizations/${orgs[0]!.id}/keys`, { name: 'k' });
    const client = new OpenAI({ apiKey: key.body.key, baseURL: `${t.url}/v1`, maxRetries: 0 });
    const { response } = await client.chat.completions
      .create({ model: 'hcx-test', messages: [{ role: 'user', content: '안녕하세요' }], max_tokens: 20 })
      .withResponse();
    const event = await usageEvent(t, response.headers.get('x-request-id')!, 5000);
    const cost = BigInt(event.costMicroKrw);
    assert.ok(cost > 0n);
    const ledger = await orgs[0]!.admin('GET', `/organizations/${orgs[0]!.id}/ledger`);
    const charge = ledger.body.data.filter((l: any) => l.requestId === event.requestId);
    assert.deepEqual(
      charge.map((l: any) => [l.accountId, l.amountKrw]).sort(),
      [
        [`voucher:${voucher.id}`, formatKrw(-voucherShare(cost, 2000))],
        [`wallet:${orgs[0]!.id}`, formatKrw(-(cost - voucherShare(cost, 2000)))],
      ].sort(),
      'the voucher paid its share, the wallet the co-payment',
    );

    // every decision is in the audit log; a selection also records its voucher, in the same request
    const audit = await admin('GET', `/audit?entityId=${apps[0]}`);
    assert.deepEqual(
      audit.data.map((e: any) => e.action).sort(),
      ['create', 'score', 'score', 'select', 'submit', 'update'].sort(),
    );
    const select = audit.data.find((e: any) => e.action === 'select');
    const sameRequest = await admin('GET', `/audit?requestId=${select.requestId}`);
    assert.deepEqual(sameRequest.data.map((e: any) => `${e.entityType} ${e.action}`).sort(), [
      'application select',
      'voucher issue',
    ]);
  });

  test('two operators selecting at the same moment never exceed the capacity', async () => {
    const p = await programme({ capacity: 3 });
    const entry = await poolEntry(p.id);
    const apps = [];
    for (let i = 0; i < 8; i++) apps.push(await submitted(p.id, entry, '1000000'));
    const operator = await person('operator');
    const answers = await Promise.all(
      apps.map((a, i) =>
        i % 2 === 0
          ? t.admin('POST', `/applications/${a.id}/select`, { amountKrw: '1000000' })
          : operator('POST', `/applications/${a.id}/select`, { amountKrw: '1000000' }),
      ),
    );
    const statuses = answers.map((a) => a.status).sort();
    assert.deepEqual(
      statuses,
      [200, 200, 200, 409, 409, 409, 409, 409],
      JSON.stringify(answers.map((a) => a.body)),
    );
    for (const a of answers.filter((x) => x.status === 409))
      assert.equal(a.body.error.fields[0].field, 'capacity', JSON.stringify(a.body));
    const listed = (await admin('GET', `/programmes/${p.id}/applications`)).data;
    assert.equal(listed.filter((a: any) => a.status === 'selected').length, 3);
    assert.equal(listed.filter((a: any) => a.status === 'submitted').length, 5, 'the refused stay submitted');
    assert.equal(await programmeBalance(p.id), parseKrwAmount('97000000'));
    assert.equal((await admin('GET', `/programmes/${p.id}/vouchers`)).data.length, 3);
    await assertLedger();
  });

  test('two operators selecting at the same moment never exceed the budget', async () => {
    const p = await programme({ budgetKrw: '10000', capacity: null });
    const entry = await poolEntry(p.id);
    const apps = [];
    for (let i = 0; i < 6; i++) apps.push(await submitted(p.id, entry, '3000'));
    const operator = await person('operator');
    const answers = await Promise.all(
      apps.map((a, i) =>
        (i % 2 === 0 ? (m: string, path: string, b: unknown) => t.admin(m, path, b) : operator)(
          'POST',
          `/applications/${a.id}/select`,
          { amountKrw: '3000' },
        ),
      ),
    );
    assert.deepEqual(
      answers.map((a) => a.status).sort(),
      [200, 200, 200, 409, 409, 409],
      JSON.stringify(answers.map((a) => a.body)),
    );
    for (const a of answers.filter((x) => x.status === 409)) {
      assert.equal(a.body.error.fields[0].field, 'amountKrw');
      assert.match(a.body.error.message, /예산.*1000 KRW left/);
    }
    assert.equal(await programmeBalance(p.id), parseKrwAmount('1000'));
    const vouchers = (await admin('GET', `/programmes/${p.id}/vouchers`)).data;
    assert.equal(vouchers.length, 3);
    const agreements = (await admin('GET', `/programmes/${p.id}/applications`)).data
      .filter((a: any) => a.agreement)
      .map((a: any) => a.agreement.voucherId)
      .sort();
    assert.deepEqual(
      agreements,
      vouchers.map((v: any) => v.id).sort(),
      'one voucher per agreement, no other',
    );
    assert.equal((await admin('GET', `/programmes/${p.id}`)).unissuedKrw, formatKrw(parseKrwAmount('1000')));
    await assertLedger();
  });

  test('field-named validation and conflicts', async () => {
    const weights = await t.admin('POST', '/programmes', {
      name: `기준 오류 ${unique()}`,
      startsOn: '2026-01-01',
      endsOn: '2030-12-31',
      budgetKrw: '1000',
      copayPercent: { sme: 20 },
      onExhausted: 'block',
      reviewCriteria: [{ id: 'a', name: 'A', weight: 50 }],
    });
    assert.equal(weights.status, 400);
    assert.equal(weights.body.error.fields[0].field, 'reviewCriteria');
    assert.match(weights.body.error.fields[0].message, /sum to 100/);
    const capacity = await t.admin('POST', '/programmes', {
      name: `정원 오류 ${unique()}`,
      startsOn: '2026-01-01',
      endsOn: '2030-12-31',
      budgetKrw: '1000',
      copayPercent: { sme: 20 },
      onExhausted: 'block',
      capacity: 0,
    });
    assert.equal(capacity.body.error.fields[0].field, 'capacity');

    const p = await programme({ copayPercent: { sme: 20 }, perOrganizationCapKrw: '5000000' });
    const s = await supplier();
    const notOwn = await t.admin('POST', `/programmes/${p.id}/pool`, {
      supplierId: s.id,
      productIds: [catalog.productId],
    });
    assert.equal(notOwn.body.error.fields[0].field, 'productIds.0');
    const category = await t.admin('POST', `/programmes/${p.id}/pool`, {
      supplierId: s.id,
      services: [{ name: '컨설팅', costCategories: ['travel'] }],
    });
    assert.equal(category.body.error.fields[0].field, 'services.0.costCategories.0');
    const entry = await admin('POST', `/programmes/${p.id}/pool`, {
      supplierId: s.id,
      productIds: [s.productId],
    });
    assert.equal(
      (await t.admin('POST', `/programmes/${p.id}/pool`, { supplierId: s.id, productIds: [s.productId] }))
        .status,
      409,
    );

    const org = await organization();
    const apply = (body: Record<string, unknown>) =>
      t.admin('POST', `/programmes/${p.id}/applications`, {
        organizationId: org.id,
        poolEntryId: entry.id,
        requestedKrw: '1000',
        costCategories: ['api_usage'],
        ...body,
      });
    assert.equal(
      (await apply({ costCategories: ['api_usage', 'lunch'] })).body.error.fields[0].field,
      'costCategories.1',
    );
    assert.equal((await apply({ poolEntryId: 'pool_nothing' })).body.error.fields[0].field, 'poolEntryId');
    assert.equal((await apply({ requestedKrw: '5000001' })).body.error.fields[0].field, 'requestedKrw');
    assert.equal((await apply({ requestedKrw: '-1' })).body.error.fields[0].field, 'requestedKrw');
    const midsize = await organization('midsize');
    const ineligible = await apply({ organizationId: midsize.id });
    assert.equal(ineligible.status, 400);
    assert.equal(ineligible.body.error.fields[0].field, 'organizationId');
    assert.match(ineligible.body.error.message, /midsize/);
    const first = await apply({});
    assert.equal(first.status, 201);
    const second = await apply({});
    assert.equal(second.status, 409, 'one active application per organisation and programme');
    assert.equal(second.body.error.fields[0].field, 'organizationId');
    const empty = await t.admin('POST', `/applications/${first.body.id}/submit`);
    assert.equal(empty.status, 400);
    assert.equal(empty.body.error.fields[0].field, 'plan');
    await admin('PATCH', `/applications/${first.body.id}`, { plan: '계획' });
    await admin('POST', `/applications/${first.body.id}/submit`);

    const frozen = await t.admin('PATCH', `/programmes/${p.id}`, { reviewCriteria: CRITERIA });
    assert.equal(frozen.status, 409);
    assert.equal(frozen.body.error.fields[0].field, 'reviewCriteria');
    const notEvaluator = await t.admin('PATCH', `/programmes/${p.id}`, { evaluatorIds: [org.admin.userId] });
    assert.equal(notEvaluator.body.error.fields[0].field, 'evaluatorIds.0');
    const missing = await t.admin('POST', `/applications/${first.body.id}/reviews`, {
      scores: { feasibility: 50 },
    });
    assert.equal(missing.body.error.fields[0].field, 'scores.impact');
    const outOfRange = await t.admin('POST', `/applications/${first.body.id}/reviews`, {
      scores: { feasibility: 101, impact: 1 },
    });
    assert.equal(outOfRange.body.error.fields[0].field, 'scores.feasibility');

    const tooMuch = await t.admin('POST', `/applications/${first.body.id}/select`, { amountKrw: '1001' });
    assert.equal(tooMuch.body.error.fields[0].field, 'amountKrw');
    const late = await t.admin('POST', `/applications/${first.body.id}/select`, {
      amountKrw: '1000',
      endsOn: '2031-01-01',
    });
    assert.equal(late.body.error.fields[0].field, 'endsOn');
    const early = await t.admin('POST', `/applications/${first.body.id}/select`, {
      amountKrw: '1000',
      startsOn: '2025-12-31',
    });
    assert.equal(early.body.error.fields[0].field, 'startsOn');
    assert.equal(
      (await admin('GET', `/applications/${first.body.id}`)).status,
      'submitted',
      'nothing was decided',
    );
    await admin('POST', `/applications/${first.body.id}/select`, { amountKrw: '1000' });
    const lower = await t.admin('PATCH', `/programmes/${p.id}`, { capacity: 1 });
    assert.equal(lower.status, 200, 'one selected: a capacity of one is fine');
    // a rejected application is no longer active: the organisation may apply again
    const other = await organization();
    const again = {
      organizationId: other.id,
      poolEntryId: entry.id,
      requestedKrw: '1000',
      costCategories: ['poc'],
      plan: '계획',
    };
    const once = await admin('POST', `/programmes/${p.id}/applications`, again);
    await admin('POST', `/applications/${once.id}/submit`);
    await admin('POST', `/applications/${once.id}/reject`, { reason: '보완 필요' });
    assert.equal((await t.admin('POST', `/programmes/${p.id}/applications`, again)).status, 201);
    await assertLedger();
  });

  test('who sees which application: no tenant sees another’s', async () => {
    const p = await programme();
    const e1 = await person('evaluator');
    const unassigned = await person('evaluator');
    await admin('PATCH', `/programmes/${p.id}`, { evaluatorIds: [e1.userId] });
    const s1 = await supplier();
    const s2 = await supplier();
    const entry1 = await admin('POST', `/programmes/${p.id}/pool`, {
      supplierId: s1.id,
      productIds: [s1.productId],
    });
    await admin('POST', `/programmes/${p.id}/pool`, { supplierId: s2.id, productIds: [s2.productId] });
    const a = await organization();
    const b = await organization();
    const member = await person('org_member', { organizationId: a.id });
    const draft = await a.admin('POST', `/programmes/${p.id}/applications`, {
      organizationId: a.id,
      poolEntryId: entry1.id,
      requestedKrw: '1000',
      costCategories: ['consulting'],
      plan: '계획',
    });
    assert.equal(draft.status, 201);
    const id = draft.body.id;
    // an organisation applies for itself only
    const forB = await a.admin('POST', `/programmes/${p.id}/applications`, {
      organizationId: b.id,
      poolEntryId: entry1.id,
      requestedKrw: '1000',
      costCategories: ['consulting'],
    });
    assert.equal(forB.status, 404);
    const nothing = await b.admin('GET', '/applications/apl_00000000000nothinghere');
    for (const as of [b.admin, s2.admin, e1, unassigned]) {
      const r = await as('GET', `/applications/${id}`);
      assert.equal(r.status, 404);
      assert.equal(
        r.body.error.message.replace(/apl_\S+/, '<id>'),
        nothing.body.error.message.replace(/apl_\S+/, '<id>'),
        'indistinguishable from an id that names nothing',
      );
      assert.deepEqual((await as('GET', `/programmes/${p.id}/applications`)).body.data, []);
      assert.equal((await as('PATCH', `/applications/${id}`, { plan: '침입' })).status, 404);
    }
    assert.equal((await member('GET', `/applications/${id}`)).status, 200, 'members read');
    assert.equal(
      (await member('PATCH', `/applications/${id}`, { plan: 'x' })).status,
      403,
      'members do not edit',
    );
    assert.equal((await member('POST', `/applications/${id}/submit`)).status, 403);
    assert.equal(
      (await s1.admin('POST', `/applications/${id}/submit`)).status,
      403,
      'the organisation submits',
    );
    assert.equal((await a.admin('POST', `/applications/${id}/submit`)).status, 200);
    // submitted: its assigned evaluator sees it, the unassigned one still does not
    assert.equal((await e1('GET', `/applications/${id}`)).status, 200);
    assert.deepEqual(
      (await e1('GET', `/programmes/${p.id}/applications`)).body.data.map((x: any) => x.id),
      [id],
    );
    assert.equal((await unassigned('GET', `/applications/${id}`)).status, 404);
    assert.equal((await unassigned('POST', `/applications/${id}/reviews`, { scores: {} })).status, 404);
    assert.equal((await e1('PATCH', `/applications/${id}`, { plan: 'x' })).status, 403);
    assert.equal((await s1.admin('POST', `/applications/${id}/reviews`, { scores: {} })).status, 403);
    // decisions are the operator's
    for (const as of [a.admin, s1.admin, e1])
      assert.equal((await as('POST', `/applications/${id}/select`, { amountKrw: '1000' })).status, 403);
    assert.equal((await a.admin('PATCH', `/programmes/${p.id}`, { capacity: 5 })).status, 403);
    // the evaluators of a programme are not public
    assert.equal((await a.admin('GET', `/programmes/${p.id}`)).body.evaluatorIds, undefined);

    // across programmes: each sees what concerns them, filters narrow it, never widen it
    assert.deepEqual(
      (await a.admin('GET', '/applications')).body.data.map((x: any) => x.id),
      [id],
    );
    assert.deepEqual(
      (await s1.admin('GET', '/applications?status=submitted')).body.data.map((x: any) => x.id),
      [id],
    );
    assert.deepEqual((await s1.admin('GET', '/applications?status=draft')).body.data, []);
    assert.deepEqual((await b.admin('GET', `/applications?organizationId=${a.id}`)).body.data, []);
    assert.deepEqual(
      (await e1('GET', '/applications')).body.data.map((x: any) => x.id),
      [id],
    );
    assert.deepEqual((await unassigned('GET', '/applications')).body.data, []);
    const badStatus = await a.admin('GET', '/applications?status=won');
    assert.equal(badStatus.status, 400);
    assert.equal(badStatus.body.error.fields[0].field, 'status');

    // an evaluator who is also the matched supplier's admin does not score the application
    const conflicted = await person('evaluator');
    await admin('POST', `/users/${conflicted.userId}/memberships`, {
      role: 'supplier_admin',
      supplierId: s1.id,
    });
    await admin('PATCH', `/programmes/${p.id}`, { evaluatorIds: [e1.userId, conflicted.userId] });
    const own = await conflicted('POST', `/applications/${id}/reviews`, {
      scores: { feasibility: 100, impact: 100 },
    });
    assert.equal(own.status, 403, JSON.stringify(own.body));

    // a supplier changes what it offers in the pool all year; only its own entry
    const changed = await s1.admin('PATCH', `/pool-entries/${entry1.id}`, {
      services: [{ name: '파인튜닝', costCategories: ['fine_tuning'] }],
    });
    assert.equal(changed.status, 200, JSON.stringify(changed.body));
    assert.deepEqual(changed.body.productIds, [s1.productId], 'what was not named stays');
    assert.equal(changed.body.services[0].name, '파인튜닝');
    assert.equal(
      (await s2.admin('PATCH', `/pool-entries/${entry1.id}`, { summary: '가로채기' })).status,
      403,
    );
    const notTheirs = await s1.admin('PATCH', `/pool-entries/${entry1.id}`, { productIds: [s2.productId] });
    assert.equal(notTheirs.body.error.fields[0].field, 'productIds.0');
    const nothingLeft = await s1.admin('PATCH', `/pool-entries/${entry1.id}`, {
      productIds: [],
      services: [],
    });
    assert.equal(nothingLeft.status, 400);
    assert.equal(nothingLeft.body.error.fields[0].field, 'productIds');
  });

  test('the CLI: pool, application, submit, review, select and reject', async () => {
    const run = async (...args: string[]) => {
      const r = await runAdminInProcess(args, { KAIHUB_URL: t.url, KAIHUB_ADMIN_TOKEN: ADMIN_TOKEN });
      return { code: r.code, out: r.stdout, err: r.stderr };
    };
    const json = async (...args: string[]) => {
      const r = await run(...args, '--json');
      assert.equal(r.code, 0, r.err);
      return JSON.parse(r.out);
    };
    const p = await programme();
    const evaluator = await person('evaluator');
    const updated = await json(
      'programmes',
      'update',
      p.id,
      '--capacity',
      '1',
      '--evaluator-ids',
      evaluator.userId,
    );
    assert.equal(updated.capacity, 1);
    const s = await supplier();
    const entry = await json(
      'pool',
      'join',
      p.id,
      '--supplier-id',
      s.id,
      '--product-ids',
      s.productId,
      '--data',
      '{"services": [{"name": "PoC", "costCategories": ["poc"]}]}',
    );
    assert.deepEqual(entry.services, [{ name: 'PoC', description: null, costCategories: ['poc'] }]);
    const summary = await json('pool', 'update', entry.id, '--summary', '연중 상시 모집');
    assert.equal(summary.summary, '연중 상시 모집');
    const listed = await run('pool', 'list', p.id);
    assert.match(listed.out, new RegExp(entry.id));
    const orgs = [await organization(), await organization()];
    const apps = [];
    for (const org of orgs) {
      const a = await json(
        'applications',
        'create',
        p.id,
        '--organization-id',
        org.id,
        '--pool-entry-id',
        entry.id,
        '--requested-krw',
        '5000',
        '--cost-categories',
        'api_usage,poc',
      );
      await json('applications', 'update', a.id, '--plan', 'CLI로 쓴 계획');
      assert.equal((await json('applications', 'submit', a.id)).status, 'submitted');
      apps.push(a.id);
    }
    const review = await json(
      'reviews',
      'score',
      apps[0],
      '--data',
      '{"scores": {"feasibility": 90, "impact": 50}}',
    );
    assert.equal(review.weightedScore, 74);
    assert.match((await run('reviews', 'list', apps[0])).out, /74/);
    const selected = await json(
      'applications',
      'select',
      apps[0],
      '--amount-krw',
      '4000',
      '--reason',
      '적합',
    );
    assert.equal(selected.agreement.amountKrw, '4000');
    const full = await run('applications', 'select', apps[1], '--amount-krw', '4000');
    assert.notEqual(full.code, 0);
    assert.match(full.err, /capacity/);
    const noReason = await run('applications', 'reject', apps[1]);
    assert.notEqual(noReason.code, 0);
    assert.match(noReason.err, /reason \(--reason\)/);
    assert.equal((await json('applications', 'reject', apps[1], '--reason', '정원 초과')).status, 'rejected');
    const table = await run('applications', 'list', p.id);
    assert.match(table.out, /selected/);
    assert.match(table.out, /rejected/);
  });

  async function assertLedger(): Promise<void> {
    const unbalanced = await db.all(
      `SELECT transaction_id FROM ledger_entries GROUP BY transaction_id HAVING SUM(amount_micro_krw) <> 0`,
    );
    assert.deepEqual(unbalanced, [], 'every transaction sums to zero');
    const drift = await db.all(
      `SELECT a.id FROM ledger_accounts a LEFT JOIN ledger_entries e ON e.account_id = a.id
       GROUP BY a.id, a.balance_micro_krw HAVING a.balance_micro_krw <> COALESCE(SUM(e.amount_micro_krw), 0)`,
    );
    assert.deepEqual(drift, [], 'every balance is the sum of its entries');
    const orphans = await db.all(
      `SELECT v.id FROM vouchers v JOIN programmes p ON p.id = v.programme_id
       WHERE p.capacity IS NOT NULL AND NOT EXISTS (SELECT 1 FROM agreements g WHERE g.voucher_id = v.id)`,
    );
    assert.deepEqual(orphans, [], 'a selection never leaves a voucher without its agreement');
  }
});
