import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Database, openDatabase } from '../../src/storage/database.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';

/**
 * People on /admin/v1: personal access tokens (shown once, stored hashed, expiring, revocable),
 * memberships and what each role may change of its own tenant's things. The tenant matrix covers
 * who may reach which route; this covers the rules inside them.
 */

async function as(t: TestHub, token: string, method: string, path: string, body?: unknown) {
  const res = await fetch(`${t.url}/admin/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, text };
}

describe('people, memberships and personal access tokens', () => {
  let t: TestHub;
  let db: Database;
  let supplierId: string;
  let organizationId: string;
  let productId: string;

  const must = async (method: string, path: string, body?: unknown) => {
    const r = await t.admin(method, path, body);
    assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  let n = 0;
  const person = async (membership?: Record<string, unknown>) => {
    const user = await must('POST', '/users', { name: '홍길동', email: `Hong.${n++}@Example.KR` });
    if (membership) await must('POST', `/users/${user.id}/memberships`, membership);
    const token = await must('POST', `/users/${user.id}/tokens`, { name: 'cli' });
    return { user, token };
  };

  before(async () => {
    t = await startTestHub();
    db = await openDatabase(t.database.location);
    supplierId = (await must('POST', '/suppliers', { name: '업스테이지' })).id;
    organizationId = (await must('POST', '/organizations', { name: '가나다 주식회사', class: 'sme' })).id;
    productId = (
      await must('POST', '/products', {
        supplierId,
        model: 'solar-people',
        displayName: 'Solar',
        purposes: ['chat'],
        modality: 'text',
        contextWindow: 32768,
        priceInputPer1M: '150',
        priceOutputPer1M: '600',
        residency: 'domestic',
      })
    ).id;
  });
  after(async () => {
    await db?.close();
    await t?.close();
  });

  test('a token is shown once, stored only as a hash, and works until revoked', async () => {
    const { user, token } = await person({ role: 'evaluator' });
    assert.match(token.token, /^kaihub-pat-[A-Za-z0-9_-]{32}$/);
    assert.equal(token.prefix, token.token.slice(0, 17));
    assert.equal(token.userId, user.id);
    assert.equal(user.email, `hong.${n - 1}@example.kr`, 'e-mail is stored in lower case');
    const expires = Date.parse(token.expiresAt) - Date.parse(token.createdAt);
    assert.equal(expires, 90 * 86_400_000, 'ninety days unless asked otherwise');

    const listed = await must('GET', `/users/${user.id}/tokens`);
    assert.ok(!JSON.stringify(listed).includes(token.token), 'the list never shows the secret');
    const stored = JSON.stringify(await db.all('SELECT * FROM personal_access_tokens'));
    assert.ok(!stored.includes(token.token), 'only the hash is stored');

    const me = await as(t, token.token, 'GET', '/me');
    assert.equal(me.status, 200);
    assert.equal(me.body.userId, user.id);
    assert.deepEqual(me.body.roles, ['evaluator']);
    assert.equal(me.body.user.email, user.email);
    const used = await must('GET', `/users/${user.id}/tokens`);
    assert.ok(used.data[0].lastUsedAt, 'last use is recorded');

    const revoked = await as(t, token.token, 'DELETE', `/tokens/${token.id}`);
    assert.equal(revoked.status, 200, 'a user revokes their own token');
    assert.ok(revoked.body.revokedAt);
    const after = await as(t, token.token, 'GET', '/me');
    assert.equal(after.status, 401);
    assert.equal(after.body.error.code, 'unauthorized');
  });

  test('each surface takes its own credentials: no API key on /admin/v1, no personal token on /v1', async () => {
    const org = await must('POST', '/organizations', { name: `키 기관 ${n++}`, class: 'sme' });
    const key = await must('POST', `/organizations/${org.id}/keys`, {});
    assert.equal((await as(t, key.key, 'GET', '/me')).status, 401);
    const { token } = await person({ role: 'operator' });
    const v1 = await fetch(`${t.url}/v1/models`, { headers: { authorization: `Bearer ${token.token}` } });
    assert.equal(v1.status, 401);
  });

  test('an expired token, a suspended user, and an unknown token are refused', async () => {
    const a = await person({ role: 'evaluator' });
    assert.equal((await as(t, a.token.token, 'GET', '/me')).status, 200);
    await db.run('UPDATE personal_access_tokens SET expires_at = ? WHERE id = ?', [
      Date.now() - 1,
      a.token.id,
    ]);
    assert.equal((await as(t, a.token.token, 'GET', '/me')).status, 401, 'expired');

    const b = await person({ role: 'evaluator' });
    await must('PATCH', `/users/${b.user.id}`, { status: 'suspended' });
    assert.equal((await as(t, b.token.token, 'GET', '/me')).status, 401, 'suspended');
    await must('PATCH', `/users/${b.user.id}`, { status: 'active' });
    assert.equal((await as(t, b.token.token, 'GET', '/me')).status, 200, 'reinstated');

    assert.equal((await as(t, `${b.token.token}x`, 'GET', '/me')).status, 401, 'unknown');
    const expiry = await t.admin('POST', `/users/${b.user.id}/tokens`, { expiresInDays: 0 });
    assert.equal(expiry.status, 400);
    assert.equal(expiry.body.error.fields[0].field, 'expiresInDays');
  });

  test('roles follow memberships from the next request on', async () => {
    const { user, token } = await person();
    assert.deepEqual((await as(t, token.token, 'GET', '/me')).body.roles, [], 'no membership: no role');
    assert.equal((await as(t, token.token, 'GET', `/organizations/${organizationId}`)).status, 404);
    const membership = await must('POST', `/users/${user.id}/memberships`, {
      role: 'org_admin',
      organizationId,
    });
    assert.equal((await as(t, token.token, 'GET', `/organizations/${organizationId}`)).status, 200);
    await must('DELETE', `/memberships/${membership.id}`);
    assert.equal((await as(t, token.token, 'GET', `/organizations/${organizationId}`)).status, 404);

    const operator = await must('POST', `/users/${user.id}/memberships`, { role: 'operator' });
    assert.equal(operator.supplierId, null);
    assert.equal(
      (await as(t, token.token, 'POST', '/organizations', { name: '새 기관', class: 'public' })).status,
      201,
    );
  });

  test('a membership names its tenant exactly when its role has one', async () => {
    const user = await must('POST', '/users', { name: '김', email: `kim.${n++}@example.kr` });
    const cases: [Record<string, unknown>, string[]][] = [
      [{ role: 'supplier_admin' }, ['supplierId']],
      [{ role: 'org_member' }, ['organizationId']],
      [{ role: 'org_admin', organizationId, supplierId }, ['supplierId']],
      [{ role: 'evaluator', organizationId }, ['organizationId']],
      [{ role: 'supplier_admin', supplierId: 'sup_nothing' }, ['supplierId']],
      [{ role: 'root' }, ['role']],
    ];
    for (const [body, fields] of cases) {
      const r = await t.admin('POST', `/users/${user.id}/memberships`, body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.deepEqual(
        r.body.error.fields.map((f: any) => f.field),
        fields,
        JSON.stringify(body),
      );
    }
    await must('POST', `/users/${user.id}/memberships`, { role: 'supplier_admin', supplierId });
    const twice = await t.admin('POST', `/users/${user.id}/memberships`, {
      role: 'supplier_admin',
      supplierId,
    });
    assert.equal(twice.status, 409);
    const email = await t.admin('POST', '/users', { name: '김', email: user.email.toUpperCase() });
    assert.equal(email.status, 409, 'e-mail is unique whatever its case');
    assert.equal(email.body.error.fields[0].field, 'email');
  });

  test('what a supplier admin and an organisation admin may change of their own tenant', async () => {
    const supplierAdmin = (await person({ role: 'supplier_admin', supplierId })).token.token;
    const orgAdmin = (await person({ role: 'org_admin', organizationId })).token.token;

    const contact = await as(t, supplierAdmin, 'PATCH', `/suppliers/${supplierId}`, {
      contactEmail: 'api@upstage.example',
    });
    assert.equal(contact.status, 200);
    const status = await as(t, supplierAdmin, 'PATCH', `/suppliers/${supplierId}`, { status: 'suspended' });
    assert.equal(status.status, 403);
    assert.match(status.body.error.message, /status/);
    assert.equal(
      (await must('GET', `/suppliers/${supplierId}`)).status,
      'active',
      'a refused change changes nothing',
    );

    const price = await as(t, supplierAdmin, 'PATCH', `/products/${productId}`, { priceInputPer1M: '200' });
    assert.equal(price.status, 200, 'a supplier sets its own prices');
    const other = await must('POST', '/suppliers', { name: `다른 공급기업 ${n++}` });
    const move = await as(t, supplierAdmin, 'PATCH', `/products/${productId}`, { supplierId: other.id });
    assert.equal(move.status, 403);
    const fallback = await as(t, supplierAdmin, 'PATCH', `/products/${productId}`, { fallbackModels: [] });
    assert.equal(fallback.status, 403, 'fallback chains send callers to other suppliers: the operator’s');
    const local = await as(t, supplierAdmin, 'POST', '/deployments', {
      productId,
      adapter: 'local',
      baseUrl: 'local:',
      upstreamModel: 'model.gguf',
    });
    assert.equal(local.status, 403, 'a local deployment runs on the hub’s machine: the operator’s');
    const operatorsLocal = await must('POST', '/deployments', {
      productId,
      adapter: 'local',
      baseUrl: 'local:',
      upstreamModel: 'model.gguf',
      status: 'disabled',
    });
    const seen = await as(t, supplierAdmin, 'GET', `/deployments/${operatorsLocal.id}`);
    assert.equal(seen.status, 200, 'the supplier sees it');
    const touched = await as(t, supplierAdmin, 'PATCH', `/deployments/${operatorsLocal.id}`, { weight: 5 });
    assert.equal(touched.status, 403, 'but does not change it');
    const remote = await as(t, supplierAdmin, 'POST', '/deployments', {
      productId,
      adapter: 'openai-compatible',
      baseUrl: 'https://api.upstage.example/v1',
      apiKey: 'up-secret',
    });
    assert.equal(remote.status, 201, 'its own remote deployment, with its key');
    const byCustomer = await as(t, supplierAdmin, 'GET', '/usage?groupBy=organization');
    assert.equal(byCustomer.status, 403, 'who calls a supplier is not the supplier’s to see');
    assert.equal((await as(t, supplierAdmin, 'GET', '/usage?groupBy=day')).status, 200);

    const fallbacks = await as(t, orgAdmin, 'PATCH', `/organizations/${organizationId}`, {
      fallbackModels: { 'solar-people': [] },
    });
    assert.equal(fallbacks.status, 200);
    const cls = await as(t, orgAdmin, 'PATCH', `/organizations/${organizationId}`, { class: 'large' });
    assert.equal(cls.status, 403);
    assert.match(cls.body.error.message, /class/);
    const key = await as(t, orgAdmin, 'POST', `/organizations/${organizationId}/keys`, { name: 'app' });
    assert.equal(key.status, 201);
    assert.match(key.body.key, /^sk-kai-/);
  });
});
