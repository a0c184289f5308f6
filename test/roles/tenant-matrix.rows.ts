import assert from 'node:assert/strict';
import { COMPUTE_MATRIX } from './compute-matrix.rows.ts';
import { EVALUATION_ROWS } from './evaluation-rows.ts';
import type { Caller, Side, World } from './world.ts';

/**
 * The tenant matrix: one row per /admin/v1 route. Each row says, for every role but the operator
 * (who may do everything), what happens on its own tenant's things and on a foreign tenant's, and
 * how to make the request for either. A later issue adds its endpoints by adding rows here; the
 * test fails while any route of the hub has no row.
 *
 * Outcomes: `ok` (2xx), `403` (may see it, may not do this), `404` (may not see it: answered exactly
 * like a nonexistent id). Every 2xx answer to a non-operator is also scanned for ids it must not
 * contain, and every change is looked up in the audit log.
 */
export type Outcome = 'ok' | 403 | 404;
export type Pair = 'ok/ok' | 'ok/403' | 'ok/404' | '403/403' | '403/404' | '404/404';
export type MatrixRole = 'supplier_admin' | 'org_admin' | 'org_member' | 'evaluator' | 'nobody';

export interface MatrixRequest {
  path: string;
  body?: unknown;
  /** Undoes what `request` set up, once the cell is checked. */
  cleanup?: () => Promise<void>;
}

export interface MatrixRow {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** The path template exactly as in the hub's route table. */
  route: string;
  expect: Record<MatrixRole, Pair>;
  /** `s` is A (own) or B (foreign); `caller` for routes about the caller's own user. */
  request(w: World, s: Side, side: 'own' | 'foreign', caller: Caller): Promise<MatrixRequest>;
  /** What an allowed answer must say beyond its status (counts, filtered lists). */
  check?(body: any, w: World, side: 'own' | 'foreign', caller: Caller): void;
  /** Private ids this route may show the caller beyond `forbiddenIds`' own (an applicant to its supplier). */
  visible?(w: World, caller: Caller): string[];
}

const all = (pair: Pair): Record<MatrixRole, Pair> => ({
  supplier_admin: pair,
  org_admin: pair,
  org_member: pair,
  evaluator: pair,
  nobody: pair,
});

const programmeBody = (w: World) => ({
  name: `매트릭스 바우처 ${w.nonce()}`,
  startsOn: '2026-01-01',
  endsOn: '2030-12-31',
  budgetKrw: '1000000000',
  copayPercent: { sme: 20 },
  onExhausted: 'block',
});

/** One programme per world, made by the operator the first time a row needs it. */
const programmes = new WeakMap<World, Promise<string>>();
function sharedProgramme(w: World): Promise<string> {
  let id = programmes.get(w);
  if (id === undefined) {
    id = w.must('POST', '/programmes', programmeBody(w)).then((p) => p.id as string);
    programmes.set(w, id);
  }
  return id;
}

/** Past months, each closed at most once: every operator call to close one takes the next. */
const pastMonths = new WeakMap<World, string[]>();
function freshPastMonth(w: World): Promise<string> {
  let months = pastMonths.get(w);
  if (months === undefined) {
    months = Array.from({ length: 60 }, (_, i) => {
      const d = new Date(Date.UTC(2020, i, 1));
      return d.toISOString().slice(0, 7);
    });
    pastMonths.set(w, months);
  }
  return Promise.resolve(months.shift()!);
}

/** One closed month per world (with no charges: every tenant's statement of it is empty but theirs). */
const closedMonths = new WeakMap<World, Promise<string>>();
function closedMonth(w: World): Promise<string> {
  let month = closedMonths.get(w);
  if (month === undefined) {
    month = w.must('POST', '/settlements', { month: '2019-12' }).then((m) => m.month as string);
    closedMonths.set(w, month);
  }
  return month;
}

const CRITERIA = [
  { id: 'feasibility', name: '실현 가능성', weight: 60 },
  { id: 'impact', name: '기대 효과', weight: 40 },
];

/**
 * A new programme with side s's supplier in its pool; the world's evaluator reviews A's programmes,
 * not B's. With `status`, also an application of s's organisation through that pool entry.
 */
async function applicationFor(w: World, s: Side, status: 'draft' | 'submitted'): Promise<string> {
  const { programmeId, poolEntryId } = await poolProgramme(w, s);
  const application = await w.must('POST', `/programmes/${programmeId}/applications`, {
    organizationId: s.organizationId,
    poolEntryId,
    requestedKrw: '1000',
    costCategories: ['api_usage'],
    plan: '사업 계획',
  });
  if (status === 'submitted') await w.must('POST', `/applications/${application.id}/submit`);
  return application.id;
}

async function poolProgramme(w: World, s: Side): Promise<{ programmeId: string; poolEntryId: string }> {
  const programme = await w.must('POST', '/programmes', { ...programmeBody(w), reviewCriteria: CRITERIA });
  if (s === w.A)
    await w.must('PATCH', `/programmes/${programme.id}`, { evaluatorIds: [w.callers.evaluator.userId] });
  const entry = await w.must('POST', `/programmes/${programme.id}/pool`, {
    supplierId: s.supplierId,
    productIds: [s.productId],
  });
  return { programmeId: programme.id, poolEntryId: entry.id };
}

/** One submitted and one draft application per side and world, for the rows that only read or edit. */
const applications = new WeakMap<
  Side,
  Promise<{ programmeId: string; poolEntryId: string; submitted: string; draft: string }>
>();
/** The submitted one once made, for checks (which are not async). */
const submittedOf = new WeakMap<Side, string>();
function sharedApplications(w: World, s: Side) {
  let shared = applications.get(s);
  if (shared === undefined) {
    shared = (async () => {
      const submitted = await applicationFor(w, s, 'submitted');
      const application = await w.must('GET', `/applications/${submitted}`);
      const programmeId = application.programmeId as string;
      const poolEntryId = application.poolEntryId as string;
      submittedOf.set(s, submitted);
      return { programmeId, poolEntryId, submitted, draft: await applicationFor(w, s, 'draft') };
    })();
    applications.set(s, shared);
  }
  return shared;
}

/** A matched supplier and an assigned evaluator know which organisation applied. */
const applicantVisible = (w: World, caller: Caller): string[] =>
  caller.who === 'supplier_admin' || caller.who === 'evaluator' ? [w.A.organizationId] : [];

/** The user a user-route addresses: oneself (own), or someone of tenant B (foreign). */
async function targetUser(w: World, side: 'own' | 'foreign', caller: Caller, fresh = false): Promise<string> {
  // The operator acts on a new user each time, so repeated changes cannot collide.
  if (caller.isOperator && fresh) return w.freshUser();
  if (side === 'foreign') return w.B.userId;
  return caller.userId ?? w.callers.operator.userId!;
}

const product = (w: World, supplierId: string) => ({
  supplierId,
  model: `matrix-new-${w.nonce()}`,
  displayName: 'Matrix new',
  purposes: ['chat'],
  modality: 'text',
  contextWindow: 4096,
  priceInputPer1M: '1',
  priceOutputPer1M: '2',
  residency: 'domestic',
});

const ids = (body: any) => (body.data as { id: string }[]).map((x) => x.id);

export const MATRIX: MatrixRow[] = [
  // --- the public catalogue: everyone reads; the operator and the supplier's admins change ---------
  {
    method: 'POST',
    route: '/suppliers',
    expect: all('403/403'),
    request: async (w) => ({ path: '/suppliers', body: { name: `새 공급기업 ${w.nonce()}` } }),
  },
  { method: 'GET', route: '/suppliers', expect: all('ok/ok'), request: async () => ({ path: '/suppliers' }) },
  {
    method: 'GET',
    route: '/suppliers/:id',
    expect: all('ok/ok'),
    request: async (_w, s) => ({ path: `/suppliers/${s.supplierId}` }),
  },
  {
    method: 'PATCH',
    route: '/suppliers/:id',
    expect: { ...all('403/403'), supplier_admin: 'ok/403' },
    request: async (w, s) => ({
      path: `/suppliers/${s.supplierId}`,
      body: { website: `https://${w.nonce()}.kr` },
    }),
  },
  {
    method: 'POST',
    route: '/products',
    expect: { ...all('403/403'), supplier_admin: 'ok/403' },
    request: async (w, s) => ({ path: '/products', body: product(w, s.supplierId) }),
  },
  { method: 'GET', route: '/products', expect: all('ok/ok'), request: async () => ({ path: '/products' }) },
  {
    method: 'GET',
    route: '/products/:id',
    expect: all('ok/ok'),
    request: async (_w, s) => ({ path: `/products/${s.productId}` }),
  },
  {
    method: 'PATCH',
    route: '/products/:id',
    expect: { ...all('403/403'), supplier_admin: 'ok/403' },
    request: async (w, s) => ({
      path: `/products/${s.productId}`,
      body: { description: `설명 ${w.nonce()}` },
    }),
  },
  {
    // The price schedule is as public as the price itself.
    method: 'GET',
    route: '/products/:id/prices',
    expect: all('ok/ok'),
    request: async (_w, s) => ({ path: `/products/${s.productId}/prices` }),
    check: (body) => assert.ok(body.data.length >= 1, 'a product has at least its first price'),
  },

  // --- deployments: base URLs, credentials and health are the supplier's own -----------------------
  {
    method: 'POST',
    route: '/deployments',
    expect: { ...all('403/403'), supplier_admin: 'ok/403' },
    request: async (_w, s) => ({
      path: '/deployments',
      body: {
        productId: s.productId,
        adapter: 'openai-compatible',
        baseUrl: 'https://api.supplier.example/v1',
        status: 'disabled',
      },
    }),
  },
  {
    method: 'GET',
    route: '/deployments',
    expect: { ...all('403/403'), supplier_admin: 'ok/ok' },
    request: async (_w, s) => ({ path: `/deployments?productId=${s.productId}` }),
    check(body, w, side, caller) {
      if (caller.isOperator) return;
      assert.deepEqual(ids(body).includes(w.A.deploymentId), side === 'own');
      assert.ok(!ids(body).includes(w.B.deploymentId));
    },
  },
  {
    method: 'GET',
    route: '/deployments/:id',
    expect: { ...all('404/404'), supplier_admin: 'ok/404' },
    request: async (_w, s) => ({ path: `/deployments/${s.deploymentId}` }),
  },
  {
    method: 'PATCH',
    route: '/deployments/:id',
    expect: { ...all('404/404'), supplier_admin: 'ok/404' },
    request: async (_w, s) => ({ path: `/deployments/${s.deploymentId}`, body: { priority: 0 } }),
  },
  {
    method: 'DELETE',
    route: '/deployments/:id',
    expect: { ...all('404/404'), supplier_admin: 'ok/404' },
    request: async (w, s) => ({ path: `/deployments/${await w.freshDeployment(s)}` }),
  },

  // --- organisations and their keys: their admins manage, their members read ----------------------
  {
    method: 'POST',
    route: '/organizations',
    expect: all('403/403'),
    request: async (w) => ({
      path: '/organizations',
      body: { name: `새 기관 ${w.nonce()}`, class: 'public' },
    }),
  },
  {
    method: 'GET',
    route: '/organizations',
    expect: { ...all('403/403'), org_admin: 'ok/ok', org_member: 'ok/ok' },
    request: async () => ({ path: '/organizations' }),
    check(body, w, _side, caller) {
      if (caller.isOperator) return;
      assert.deepEqual(ids(body), [w.A.organizationId]);
    },
  },
  {
    method: 'GET',
    route: '/organizations/:id',
    expect: { ...all('404/404'), org_admin: 'ok/404', org_member: 'ok/404' },
    request: async (_w, s) => ({ path: `/organizations/${s.organizationId}` }),
  },
  {
    method: 'PATCH',
    route: '/organizations/:id',
    expect: { ...all('404/404'), org_admin: 'ok/404', org_member: '403/404' },
    request: async (_w, s) => ({
      path: `/organizations/${s.organizationId}`,
      body: { fallbackModels: null },
    }),
  },
  {
    method: 'POST',
    route: '/organizations/:id/keys',
    expect: { ...all('404/404'), org_admin: 'ok/404', org_member: '403/404' },
    request: async (_w, s) => ({ path: `/organizations/${s.organizationId}/keys`, body: { name: 'matrix' } }),
  },
  {
    method: 'GET',
    route: '/organizations/:id/keys',
    expect: { ...all('404/404'), org_admin: 'ok/404', org_member: 'ok/404' },
    request: async (_w, s) => ({ path: `/organizations/${s.organizationId}/keys` }),
  },
  {
    method: 'DELETE',
    route: '/keys/:id',
    expect: { ...all('404/404'), org_admin: 'ok/404', org_member: '403/404' },
    request: async (w, s) => ({ path: `/keys/${await w.freshKey(s)}` }),
  },

  // --- usage: an organisation's own calls; a supplier's products' calls, never who made them ------
  {
    method: 'GET',
    route: '/usage',
    expect: { ...all('403/403'), supplier_admin: 'ok/ok', org_admin: 'ok/ok', org_member: 'ok/ok' },
    request: async (_w, s, _side, caller) =>
      caller.who === 'supplier_admin'
        ? { path: `/usage?productId=${s.productId}&groupBy=product` }
        : { path: `/usage?organizationId=${s.organizationId}&groupBy=product` },
    check(body, w, side, caller) {
      if (caller.isOperator) return;
      assert.equal(body.totals.requests, side === 'own' ? 1 : 0, JSON.stringify(body));
      // A's organisation called B's product; A's supplier served B's organisation.
      const expected =
        side === 'own' ? [caller.who === 'supplier_admin' ? w.A.productId : w.B.productId] : [];
      assert.deepEqual(
        body.rows.map((r: any) => r.productId),
        expected,
      );
    },
  },
  {
    // records the database refused: every organisation's, the operator's alone to examine
    method: 'GET',
    route: '/usage/rejected',
    expect: all('403/403'),
    request: async () => ({ path: '/usage/rejected' }),
  },
  {
    method: 'GET',
    route: '/usage/events',
    expect: { ...all('403/403'), org_admin: 'ok/ok', org_member: 'ok/ok' },
    request: async (_w, s) => ({ path: `/usage/events?organizationId=${s.organizationId}` }),
    check(body, w, side, caller) {
      if (caller.isOperator) return;
      const requestIds = body.data.map((e: any) => e.requestId);
      assert.deepEqual(requestIds, side === 'own' ? [w.A.requestId] : []);
      for (const e of body.data) assert.equal(e.deploymentId, null, 'the serving deployment is not shown');
    },
  },

  // --- people: the operator manages; everyone reads themselves and manages their own tokens -------
  {
    method: 'GET',
    route: '/me',
    expect: all('ok/ok'),
    request: async () => ({ path: '/me' }),
    check(body, _w, _side, caller) {
      assert.equal(body.actorId, caller.actorId);
    },
  },
  {
    method: 'POST',
    route: '/users',
    expect: all('403/403'),
    request: async (w) => ({ path: '/users', body: { name: '새 사람', email: `m-${w.nonce()}@example.kr` } }),
  },
  { method: 'GET', route: '/users', expect: all('403/403'), request: async () => ({ path: '/users' }) },
  {
    method: 'GET',
    route: '/users/:id',
    expect: all('ok/404'),
    request: async (w, _s, side, caller) => ({ path: `/users/${await targetUser(w, side, caller)}` }),
  },
  {
    method: 'PATCH',
    route: '/users/:id',
    expect: all('403/404'),
    request: async (w, _s, side, caller) => ({
      path: `/users/${await targetUser(w, side, caller, true)}`,
      body: { name: `이름 ${w.nonce()}` },
    }),
  },
  {
    method: 'POST',
    route: '/users/:id/memberships',
    expect: all('403/404'),
    request: async (w, _s, side, caller) => ({
      path: `/users/${await targetUser(w, side, caller, true)}/memberships`,
      body: { role: 'evaluator' },
    }),
  },
  {
    method: 'GET',
    route: '/users/:id/memberships',
    expect: all('ok/404'),
    request: async (w, _s, side, caller) => ({
      path: `/users/${await targetUser(w, side, caller)}/memberships`,
    }),
  },
  {
    method: 'DELETE',
    route: '/memberships/:id',
    expect: all('403/404'),
    request: async (w, _s, side, caller) => {
      const membership = await w.membershipOf(await targetUser(w, side, caller, true));
      return {
        path: `/memberships/${membership.id}`,
        // A role-less caller's own membership exists only for this cell.
        cleanup: async () => {
          if (membership.created && !caller.isOperator)
            await w.must('DELETE', `/memberships/${membership.id}`);
        },
      };
    },
  },
  {
    method: 'POST',
    route: '/users/:id/tokens',
    expect: all('ok/404'),
    request: async (w, _s, side, caller) => ({
      path: `/users/${await targetUser(w, side, caller)}/tokens`,
      body: { name: 'matrix', expiresInDays: 1 },
    }),
  },
  {
    method: 'GET',
    route: '/users/:id/tokens',
    expect: all('ok/404'),
    request: async (w, _s, side, caller) => ({ path: `/users/${await targetUser(w, side, caller)}/tokens` }),
  },
  {
    method: 'DELETE',
    route: '/tokens/:id',
    expect: all('ok/404'),
    request: async (w, _s, side, caller) => ({
      path: `/tokens/${await w.freshToken(await targetUser(w, side, caller, true))}`,
    }),
  },

  // --- the operator's tools --------------------------------------------------------------------
  { method: 'GET', route: '/audit', expect: all('403/403'), request: async () => ({ path: '/audit' }) },
  {
    method: 'POST',
    route: '/catalog/import',
    expect: all('403/403'),
    request: async (w, s) => ({
      path: '/catalog/import',
      body: {
        version: 1,
        generatedAt: '2026-11-29',
        suppliers: [
          {
            name: `가져온 공급기업 ${w.nonce()}`,
            products: [{ ...product(w, s.supplierId), supplierId: undefined }],
          },
        ],
      },
    }),
  },
  {
    method: 'GET',
    route: '/catalog/export',
    expect: all('403/403'),
    request: async () => ({ path: '/catalog/export' }),
  },
  {
    method: 'POST',
    route: '/credentials/reseal',
    expect: all('403/403'),
    request: async () => ({ path: '/credentials/reseal' }),
  },
  // --- programmes and vouchers: public programmes; vouchers and deposits are the operator's ---------
  {
    method: 'POST',
    route: '/programmes',
    expect: all('403/403'),
    request: async (w) => ({ path: '/programmes', body: programmeBody(w) }),
  },
  {
    method: 'GET',
    route: '/programmes',
    expect: all('ok/ok'),
    request: async () => ({ path: '/programmes' }),
  },
  {
    method: 'GET',
    route: '/programmes/:id',
    expect: all('ok/ok'),
    request: async (w) => ({ path: `/programmes/${await sharedProgramme(w)}` }),
  },
  {
    method: 'POST',
    route: '/programmes/:id/vouchers',
    expect: all('403/403'),
    request: async (w, s) => ({
      path: `/programmes/${await sharedProgramme(w)}/vouchers`,
      body: { organizationId: s.organizationId, amountKrw: '1' },
    }),
  },
  {
    method: 'GET',
    route: '/programmes/:id/vouchers',
    expect: all('403/403'),
    request: async (w) => ({ path: `/programmes/${await sharedProgramme(w)}/vouchers` }),
  },
  {
    method: 'POST',
    route: '/organizations/:id/deposits',
    expect: { ...all('404/404'), org_admin: '403/404', org_member: '403/404' },
    request: async (_w, s) => ({
      path: `/organizations/${s.organizationId}/deposits`,
      body: { amountKrw: '1' },
    }),
  },
  {
    method: 'POST',
    route: '/organizations/:id/corrections',
    expect: { ...all('404/404'), org_admin: '403/404', org_member: '403/404' },
    request: async (_w, s) => ({
      path: `/organizations/${s.organizationId}/corrections`,
      body: { account: 'wallet', amountKrw: '1', reason: '매트릭스 정정' },
    }),
  },
  {
    method: 'GET',
    route: '/organizations/:id/funds',
    expect: { ...all('404/404'), org_admin: 'ok/404', org_member: 'ok/404' },
    request: async (_w, s) => ({ path: `/organizations/${s.organizationId}/funds` }),
    check(body, w, side, caller) {
      if (!caller.isOperator || side === 'own') assert.equal(body.organizationId, w.A.organizationId);
    },
  },
  {
    method: 'GET',
    route: '/organizations/:id/ledger',
    expect: { ...all('404/404'), org_admin: 'ok/404', org_member: 'ok/404' },
    request: async (_w, s) => ({ path: `/organizations/${s.organizationId}/ledger` }),
    check(body, w, _side, caller) {
      if (caller.isOperator) return;
      for (const line of body.data) assert.ok(!String(line.accountId).includes(w.B.organizationId));
    },
  },
  // --- settlement: the operator closes months; each tenant reads its own statements ------------------
  {
    method: 'POST',
    route: '/settlements',
    expect: all('403/403'),
    // each time the operator closes another past month, so no cell finds it closed already
    request: async (w) => ({ path: '/settlements', body: { month: await freshPastMonth(w) } }),
  },
  {
    method: 'GET',
    route: '/settlements',
    expect: all('403/403'),
    request: async () => ({ path: '/settlements' }),
  },
  {
    method: 'GET',
    route: '/settlements/:month',
    expect: all('403/403'),
    request: async (w) => ({ path: `/settlements/${await closedMonth(w)}` }),
  },
  {
    method: 'GET',
    route: '/settlements/:month/suppliers/:id',
    expect: { ...all('404/404'), supplier_admin: 'ok/404' },
    request: async (w, s) => ({ path: `/settlements/${await closedMonth(w)}/suppliers/${s.supplierId}` }),
  },
  {
    method: 'GET',
    route: '/settlements/:month/organizations/:id',
    expect: { ...all('404/404'), org_admin: 'ok/404', org_member: 'ok/404' },
    request: async (w, s) => ({
      path: `/settlements/${await closedMonth(w)}/organizations/${s.organizationId}`,
    }),
  },
  // --- alerts: an organisation's webhooks and events -------------------------------------------------
  {
    method: 'POST',
    route: '/organizations/:id/webhooks',
    expect: { ...all('404/404'), org_admin: 'ok/404', org_member: '403/404' },
    request: async (_w, s) => ({
      path: `/organizations/${s.organizationId}/webhooks`,
      body: { url: 'https://hooks.example.kr/kaihub' },
    }),
  },
  {
    method: 'GET',
    route: '/organizations/:id/webhooks',
    expect: { ...all('404/404'), org_admin: 'ok/404', org_member: 'ok/404' },
    request: async (_w, s) => ({ path: `/organizations/${s.organizationId}/webhooks` }),
  },
  {
    method: 'DELETE',
    route: '/webhooks/:id',
    expect: { ...all('404/404'), org_admin: 'ok/404', org_member: '403/404' },
    request: async (w, s) => ({
      path: `/webhooks/${(await w.must('POST', `/organizations/${s.organizationId}/webhooks`, { url: 'https://hooks.example.kr/x' })).id}`,
    }),
  },
  {
    method: 'GET',
    route: '/organizations/:id/events',
    expect: { ...all('404/404'), org_admin: 'ok/404', org_member: 'ok/404' },
    request: async (_w, s) => ({ path: `/organizations/${s.organizationId}/events` }),
  },

  // --- the supplier pool and applications: the pool is public; an application is its organisation's,
  // its matched supplier's and (once submitted) its programme's evaluators'; decisions the operator's
  {
    method: 'PATCH',
    route: '/programmes/:id',
    expect: all('403/403'),
    request: async (w) => ({ path: `/programmes/${await sharedProgramme(w)}`, body: { capacity: null } }),
  },
  {
    method: 'POST',
    route: '/programmes/:id/pool',
    expect: { ...all('403/403'), supplier_admin: 'ok/403' },
    request: async (w, s) => ({
      path: `/programmes/${(await w.must('POST', '/programmes', programmeBody(w))).id}/pool`,
      body: { supplierId: s.supplierId, productIds: [s.productId] },
    }),
  },
  {
    method: 'PATCH',
    route: '/pool-entries/:id',
    expect: { ...all('403/403'), supplier_admin: 'ok/403' },
    request: async (w, s) => ({
      path: `/pool-entries/${(await sharedApplications(w, s)).poolEntryId}`,
      body: { summary: `요약 ${w.nonce()}` },
    }),
  },
  {
    method: 'GET',
    route: '/programmes/:id/pool',
    expect: all('ok/ok'),
    request: async (w, s) => ({ path: `/programmes/${(await sharedApplications(w, s)).programmeId}/pool` }),
    check(body, w, side) {
      assert.deepEqual(
        body.data.map((e: any) => e.supplierId),
        [side === 'own' ? w.A.supplierId : w.B.supplierId],
      );
    },
  },
  {
    method: 'POST',
    route: '/programmes/:id/applications',
    expect: { ...all('403/403'), org_admin: 'ok/404', org_member: '403/404' },
    request: async (w, s) => {
      const { programmeId, poolEntryId } = await poolProgramme(w, s);
      return {
        path: `/programmes/${programmeId}/applications`,
        body: {
          organizationId: s.organizationId,
          poolEntryId,
          requestedKrw: '1000',
          costCategories: ['api_usage'],
          plan: '계획',
        },
      };
    },
  },
  {
    method: 'GET',
    route: '/programmes/:id/applications',
    expect: { ...all('ok/ok'), nobody: '403/403' },
    request: async (w, s) => ({
      path: `/programmes/${(await sharedApplications(w, s)).programmeId}/applications`,
    }),
    check(body, w, side, caller) {
      if (caller.isOperator) return;
      const own = submittedOf.get(w.A);
      assert.deepEqual(ids(body), side === 'own' ? [own] : [], 'only what concerns the caller');
    },
    visible: applicantVisible,
  },
  {
    method: 'GET',
    route: '/applications',
    expect: { ...all('ok/ok'), nobody: '403/403' },
    request: async (w, s) => ({
      path: `/applications?programmeId=${(await sharedApplications(w, s)).programmeId}`,
    }),
    check(body, w, side, caller) {
      if (caller.isOperator) return;
      assert.deepEqual(ids(body), side === 'own' ? [submittedOf.get(w.A)] : []);
    },
    visible: applicantVisible,
  },
  {
    method: 'GET',
    route: '/applications/:id',
    expect: { ...all('ok/404'), nobody: '404/404' },
    request: async (w, s) => ({ path: `/applications/${(await sharedApplications(w, s)).submitted}` }),
    check(body, w, side, caller) {
      if (!caller.isOperator || side === 'own') assert.equal(body.organizationId, w.A.organizationId);
    },
    visible: applicantVisible,
  },
  {
    method: 'PATCH',
    route: '/applications/:id',
    expect: {
      ...all('404/404'),
      supplier_admin: 'ok/404',
      org_admin: 'ok/404',
      org_member: '403/404',
    },
    request: async (w, s) => ({
      path: `/applications/${(await sharedApplications(w, s)).draft}`,
      body: { plan: `계획 ${w.nonce()}` },
    }),
    visible: applicantVisible,
  },
  {
    method: 'POST',
    route: '/applications/:id/submit',
    expect: {
      ...all('404/404'),
      supplier_admin: '403/404',
      org_admin: 'ok/404',
      org_member: '403/404',
    },
    request: async (w, s) => ({ path: `/applications/${await applicationFor(w, s, 'draft')}/submit` }),
  },
  {
    method: 'POST',
    route: '/applications/:id/reviews',
    expect: {
      ...all('403/404'),
      evaluator: 'ok/404',
      nobody: '404/404',
    },
    request: async (w, s) => ({
      path: `/applications/${(await sharedApplications(w, s)).submitted}/reviews`,
      body: { scores: { feasibility: 70, impact: 80 } },
    }),
  },
  {
    method: 'GET',
    route: '/applications/:id/reviews',
    expect: {
      ...all('403/404'),
      evaluator: 'ok/404',
      nobody: '404/404',
    },
    request: async (w, s) => ({
      path: `/applications/${(await sharedApplications(w, s)).submitted}/reviews`,
    }),
    check(body, _w, _side, caller) {
      // the evaluator scored it (the row above): they see every review, only their own named
      if (caller.isOperator) return;
      assert.ok(body.data.length >= 1);
      for (const review of body.data) if (!review.mine) assert.equal(review.reviewerId, undefined);
    },
  },
  {
    method: 'POST',
    route: '/applications/:id/select',
    expect: all('403/403'),
    request: async (w, s) => ({
      path: `/applications/${await applicationFor(w, s, 'submitted')}/select`,
      body: { amountKrw: '1000', reason: '선정' },
    }),
  },
  {
    method: 'POST',
    route: '/applications/:id/reject',
    expect: all('403/403'),
    request: async (w, s) => ({
      path: `/applications/${await applicationFor(w, s, 'submitted')}/reject`,
      body: { reason: '탈락 사유' },
    }),
  },
  // --- closing a programme: the operator's ------------------------------------------------------------
  {
    method: 'POST',
    route: '/programmes/:id/close',
    expect: all('403/403'),
    request: async (w) => ({
      path: `/programmes/${(await w.must('POST', '/programmes', programmeBody(w))).id}/close`,
      body: { early: true, reason: '매트릭스' },
    }),
  },
  {
    method: 'GET',
    route: '/programmes/:id/final-report',
    expect: all('403/403'),
    request: async (w) => {
      const id = (await w.must('POST', '/programmes', programmeBody(w))).id;
      await w.must('POST', `/programmes/${id}/close`, { early: true, reason: '매트릭스' });
      return { path: `/programmes/${id}/final-report` };
    },
  },
  // --- data policies: the operator's; an organisation's people read what applies to them ------------
  {
    method: 'POST',
    route: '/data-policies',
    expect: all('403/403'),
    request: async (w, s) => ({
      path: '/data-policies',
      body: { scope: 'product', scopeId: s.productId, piiMode: 'mask' },
      cleanup: () => removeDataPolicies(w, 'product', s.productId),
    }),
  },
  {
    method: 'GET',
    route: '/data-policies',
    expect: all('403/403'),
    request: async () => ({ path: '/data-policies' }),
  },
  {
    method: 'GET',
    route: '/data-policies/:id',
    expect: all('403/403'),
    request: async () => ({ path: '/data-policies/dpol_public_default' }),
  },
  {
    method: 'PATCH',
    route: '/data-policies/:id',
    expect: all('403/403'),
    request: async () => ({ path: '/data-policies/dpol_public_default', body: { residency: 'domestic' } }),
  },
  {
    method: 'DELETE',
    route: '/data-policies/:id',
    expect: all('403/403'),
    request: async (w, s) => {
      await removeDataPolicies(w, 'organization', s.organizationId);
      const policy = await w.must('POST', '/data-policies', {
        scope: 'organization',
        scopeId: s.organizationId,
        piiMode: 'detect',
      });
      return {
        path: `/data-policies/${policy.id}`,
        cleanup: () => removeDataPolicies(w, 'organization', s.organizationId),
      };
    },
  },
  {
    method: 'GET',
    route: '/organizations/:id/data-policy',
    expect: { ...all('404/404'), org_admin: 'ok/404', org_member: 'ok/404' },
    request: async (_w, s) => ({ path: `/organizations/${s.organizationId}/data-policy` }),
  },
  ...EVALUATION_ROWS,
  // --- GPU compute (test/roles/compute-matrix.rows.ts) -------------------------------------------------
  ...COMPUTE_MATRIX,

  // --- evaluation runs: the operator's and evaluators'; runs belong to no tenant ----------------------
  {
    method: 'POST',
    route: '/evaluation/runs',
    expect: { ...all('403/403'), evaluator: 'ok/ok' },
    request: async (w, s) => ({ path: '/evaluation/runs', body: evaluationRunBody(w, s) }),
  },
  {
    method: 'GET',
    route: '/evaluation/runs',
    expect: { ...all('403/403'), evaluator: 'ok/ok' },
    request: async (w, s) => {
      await sharedRun(w, s);
      return { path: '/evaluation/runs' };
    },
    check: (body) => assert.ok(body.data.length >= 1),
  },
  {
    method: 'GET',
    route: '/evaluation/runs/:id',
    expect: { ...all('403/403'), evaluator: 'ok/ok' },
    request: async (w, s) => ({ path: `/evaluation/runs/${await sharedRun(w, s)}` }),
  },
  {
    method: 'GET',
    route: '/evaluation/runs/:id/items',
    expect: { ...all('403/403'), evaluator: 'ok/ok' },
    request: async (w, s) => ({ path: `/evaluation/runs/${await sharedRun(w, s)}/items` }),
    check: (body) => assert.equal(body.data.length, 1),
  },
];

/** A one-item suite on side s's product, under a name of its own (a new run, not a resumed one). */
function evaluationRunBody(w: World, s: Side) {
  return {
    model: s.model,
    suite: {
      name: `matrix-${w.nonce()}`,
      data: {
        format: 'kaihub-mc',
        content: `${JSON.stringify({ question: '1 더하기 1은?', choices: ['1', '2'], answer: 1 })}\n`,
      },
    },
  };
}

/** One run per side and world, made by the operator token. */
const runs = new WeakMap<Side, Promise<string>>();
function sharedRun(w: World, s: Side): Promise<string> {
  let id = runs.get(s);
  if (id === undefined) {
    id = w.must('POST', '/evaluation/runs', evaluationRunBody(w, s)).then((r) => r.id as string);
    runs.set(s, id);
  }
  return id;
}

/**
 * Ids of private things: a 2xx answer to a non-operator must contain none of them except those its
 * role may see (its own user and token; a supplier admin its deployment; organisation people their
 * organisation, its key and its usage record).
 */
export function forbiddenIds(w: World, caller: Caller): string[] {
  const everyone = Object.values(w.callers).flatMap((c) => [c.userId, c.tokenId]);
  const universe = [
    w.A.deploymentId,
    w.B.deploymentId,
    w.A.organizationId,
    w.B.organizationId,
    w.A.keyId,
    w.B.keyId,
    w.A.requestId,
    w.B.requestId,
    w.B.userId,
    w.B.tokenId,
    ...everyone,
  ].filter((id): id is string => typeof id === 'string');
  const visible = new Set<string>([caller.userId ?? '', caller.tokenId ?? '']);
  if (caller.who === 'supplier_admin') visible.add(w.A.deploymentId);
  if (caller.who === 'org_admin' || caller.who === 'org_member') {
    for (const id of [w.A.organizationId, w.A.keyId, w.A.requestId]) visible.add(id);
  }
  return universe.filter((id) => !visible.has(id));
}

/** The operator removes the policies of one scope (a cell's leftovers), so the next cell starts clean. */
async function removeDataPolicies(w: World, scope: string, scopeId: string): Promise<void> {
  const found = await w.must('GET', `/data-policies?scope=${scope}&scopeId=${encodeURIComponent(scopeId)}`);
  for (const p of found.data as { id: string }[]) await w.must('DELETE', `/data-policies/${p.id}`);
}
