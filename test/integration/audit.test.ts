import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Database, openDatabase } from '../../src/storage/database.ts';
import { ADMIN_TOKEN, startTestHub, type TestHub } from '../helpers/hub.ts';

/**
 * The audit log: every change through /admin/v1 with who, what, before, after, when and the request
 * id; filters; no secret ever written; and the database itself refusing to change or delete entries.
 */
describe('audit log', () => {
  let t: TestHub;
  let db: Database;
  let supplierId: string;
  let productId: string;

  const must = async (method: string, path: string, body?: unknown) => {
    const r = await t.admin(method, path, body);
    assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };

  before(async () => {
    t = await startTestHub();
    db = await openDatabase(t.database.location);
    supplierId = (await must('POST', '/suppliers', { name: 'KT' })).id;
    productId = (
      await must('POST', '/products', {
        supplierId,
        model: 'midm-audit',
        displayName: 'Mi:dm',
        purposes: ['chat'],
        modality: 'text',
        contextWindow: 32768,
        priceInputPer1M: '1000',
        priceOutputPer1M: '3000',
        residency: 'domestic',
      })
    ).id;
  });
  after(async () => {
    await db?.close();
    await t?.close();
  });

  test('a change records actor, action, before, after, the request and its id', async () => {
    const res = await fetch(`${t.url}/admin/v1/products/${productId}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      body: JSON.stringify({ priceInputPer1M: '1500.5' }),
    });
    assert.equal(res.status, 200);
    const requestId = res.headers.get('x-request-id');
    const { data } = await must('GET', `/audit?entityId=${productId}&action=update`);
    assert.equal(data.length, 1);
    const [entry] = data;
    assert.equal(entry.requestId, requestId);
    assert.equal(entry.actorId, 'operator-token');
    assert.equal(entry.actorTokenId, null);
    assert.equal(entry.source, 'admin-api');
    assert.equal(entry.entityType, 'product');
    assert.equal(entry.before.priceInputPer1M, '1000');
    assert.equal(entry.after.priceInputPer1M, '1500.5');
    assert.deepEqual(entry.request, { priceInputPer1M: '1500.5' });
    assert.ok(Math.abs(Date.parse(entry.createdAt) - Date.now()) < 60_000);

    const created = await must('GET', `/audit?entityId=${productId}&action=create`);
    assert.equal(created.data[0].before, null);
    assert.equal(created.data[0].after.model, 'midm-audit');

    const refused = await t.admin('PATCH', `/products/${productId}`, { priceInputPer1M: '-1' });
    assert.equal(refused.status, 400);
    const still = await must('GET', `/audit?entityId=${productId}`);
    assert.equal(still.data.length, 2, 'a refused change is not audited');
  });

  test('secrets never reach the audit log: keys, tokens, supplier credentials', async () => {
    const org = await must('POST', '/organizations', { name: '감사 기관', class: 'public' });
    const key = await must('POST', `/organizations/${org.id}/keys`, { name: 'app' });
    const user = await must('POST', '/users', { name: '감사자', email: 'auditor@example.kr' });
    const token = await must('POST', `/users/${user.id}/tokens`, {});
    const upstreamSecret = 'nv-upstream-SECRET-4f1a9c';
    const deployment = await must('POST', '/deployments', {
      productId,
      adapter: 'clova-studio',
      baseUrl: 'https://clovastudio.stream.ntruss.com',
      apiKey: upstreamSecret,
    });
    const rotated = 'nv-upstream-ROTATED-77e2b0';
    await must('PATCH', `/deployments/${deployment.id}`, { apiKey: rotated });
    await must('DELETE', `/keys/${key.id}`);
    await must('DELETE', `/tokens/${token.id}`);

    const raw = JSON.stringify(await db.all('SELECT * FROM audit_log'));
    for (const secret of [key.key, token.token, upstreamSecret, rotated])
      assert.ok(!raw.includes(secret), `${secret.slice(0, 12)}… must not be in the audit log`);
    assert.ok(!/"v[12]\.[A-Za-z0-9_-]+\./.test(raw), 'nor a sealed credential');

    const patch = (await must('GET', `/audit?entityId=${deployment.id}&action=update`)).data[0];
    assert.equal(patch.request.apiKey, '[redacted]', 'that a key was set is kept, not the key');
    const keyEntry = (await must('GET', `/audit?entityId=${key.id}&action=create`)).data[0];
    assert.equal(keyEntry.after.key, '[redacted]');
    assert.equal(keyEntry.after.prefix, key.prefix);
    const revoke = (await must('GET', `/audit?entityId=${key.id}&action=revoke`)).data[0];
    assert.equal(revoke.before.revokedAt, null);
    assert.ok(revoke.after.revokedAt);
    const deleted = (await must('GET', `/audit?entityType=deployment&action=delete`)).data;
    assert.equal(deleted.length, 0);
  });

  test('filters: actor, entity type and id, action, request id, time range, limit', async () => {
    const user = await must('POST', '/users', { name: '필터', email: 'filter@example.kr' });
    await must('POST', `/users/${user.id}/memberships`, { role: 'operator' });
    const pat = await must('POST', `/users/${user.id}/tokens`, { name: 'filter' });
    const org = await fetch(`${t.url}/admin/v1/organizations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${pat.token}` },
      body: JSON.stringify({ name: '필터 기관', class: 'university' }),
    });
    assert.equal(org.status, 201);
    const orgId = ((await org.json()) as { id: string }).id;

    const byActor = await must('GET', `/audit?actorId=${user.id}`);
    assert.deepEqual(
      byActor.data.map((e: any) => [e.entityType, e.entityId, e.actorTokenId]),
      [['organization', orgId, pat.id]],
    );
    const byType = await must('GET', '/audit?entityType=user');
    assert.ok(byType.data.every((e: any) => e.entityType === 'user'));
    assert.ok(byType.data.some((e: any) => e.entityId === user.id));
    const limited = await must('GET', '/audit?limit=2');
    assert.equal(limited.data.length, 2);
    assert.ok(limited.data[0].createdAt >= limited.data[1].createdAt, 'newest first');
    const future = await must('GET', `/audit?from=${new Date(Date.now() + 3_600_000).toISOString()}`);
    assert.deepEqual(future.data, []);
    const past = await must('GET', '/audit?to=2020-01-01');
    assert.deepEqual(past.data, []);
    const today = await must('GET', `/audit?from=2020-01-01&actorId=${user.id}`);
    assert.equal(today.data.length, 1);
    const bad = await t.admin('GET', '/audit?from=yesterday&to=2026-02-30&limit=0&colour=red');
    assert.equal(bad.status, 400);
    assert.deepEqual(bad.body.error.fields.map((f: any) => f.field).sort(), [
      'colour',
      'from',
      'limit',
      'to',
    ]);
  });

  test('the database refuses to change or delete an entry', async () => {
    const before = await db.all('SELECT id, action FROM audit_log ORDER BY id');
    assert.ok(before.length > 0);
    await assert.rejects(db.run("UPDATE audit_log SET action = 'nothing'"), /append-only/);
    await assert.rejects(db.run('DELETE FROM audit_log'), /append-only/);
    if (db.dialect === 'postgres') await assert.rejects(db.run('TRUNCATE audit_log'), /append-only/);
    assert.deepEqual(await db.all('SELECT id, action FROM audit_log ORDER BY id'), before);
  });

  test('a change and its audit entry are one: when the entry cannot be written, nothing changes', async () => {
    const org = await must('POST', '/organizations', { name: '원자성 주식회사', class: 'sme' });
    const key = await must('POST', `/organizations/${org.id}/keys`, { name: 'kept' });
    const user = await must('POST', '/users', { name: '감사', email: 'atomic@example.kr' });
    const membership = await must('POST', `/users/${user.id}/memberships`, {
      role: 'org_member',
      organizationId: org.id,
    });
    const supplierBefore = await must('GET', `/suppliers/${supplierId}`);
    const deploymentsBefore = (await must('GET', `/deployments?productId=${productId}`)).data.length;
    const entriesBefore = (await db.all('SELECT id FROM audit_log')).length;
    // The audit log "fails" for these entity types: a trigger refuses their entries.
    const refused = "('supplier', 'deployment', 'api_key', 'membership', 'organization')";
    if (db.dialect === 'postgres') {
      await db.exec(`CREATE FUNCTION test_refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'audit log unavailable'; END $$`);
      await db.exec(`CREATE TRIGGER test_refuse_audit BEFORE INSERT ON audit_log FOR EACH ROW
        WHEN (NEW.entity_type IN ${refused}) EXECUTE FUNCTION test_refuse_audit()`);
    } else {
      await db.exec(`CREATE TRIGGER test_refuse_audit BEFORE INSERT ON audit_log
        WHEN NEW.entity_type IN ${refused} BEGIN SELECT RAISE(ABORT, 'audit log unavailable'); END`);
    }
    try {
      const attempts: [string, string, unknown][] = [
        ['PATCH', `/suppliers/${supplierId}`, { name: 'KT (renamed)' }],
        [
          'POST',
          '/deployments',
          { productId, adapter: 'openai-compatible', baseUrl: 'http://127.0.0.1:9/v1' },
        ],
        ['DELETE', `/keys/${key.id}`, undefined],
        ['DELETE', `/memberships/${membership.id}`, undefined],
        ['PATCH', `/organizations/${org.id}`, { status: 'suspended' }],
      ];
      for (const [method, path, body] of attempts) {
        const r = await t.admin(method, path, body);
        assert.equal(r.status, 500, `${method} ${path} answers 500 when its change cannot be audited`);
      }
      assert.deepEqual(await must('GET', `/suppliers/${supplierId}`), supplierBefore, 'supplier unchanged');
      assert.equal((await must('GET', `/deployments?productId=${productId}`)).data.length, deploymentsBefore);
      assert.equal((await must('GET', `/organizations/${org.id}/keys`)).data[0].revokedAt, null);
      assert.equal((await must('GET', `/users/${user.id}/memberships`)).data.length, 1);
      assert.equal((await must('GET', `/organizations/${org.id}`)).status, 'active');
      // The key still works: its revocation did not reach the key cache either.
      const models = await fetch(`${t.url}/v1/models`, { headers: { authorization: `Bearer ${key.key}` } });
      assert.equal(models.status, 200);
      assert.equal((await db.all('SELECT id FROM audit_log')).length, entriesBefore);
    } finally {
      await db.exec(`DROP TRIGGER test_refuse_audit${db.dialect === 'postgres' ? ' ON audit_log' : ''}`);
      if (db.dialect === 'postgres') await db.exec('DROP FUNCTION test_refuse_audit()');
    }
    // With the log back, the same change goes through with its entry.
    await must('PATCH', `/suppliers/${supplierId}`, { name: 'KT (renamed)' });
    const { data } = await must('GET', `/audit?entityId=${supplierId}&action=update`);
    assert.equal(data[0].after.name, 'KT (renamed)');
    assert.equal(data[0].before.name, supplierBefore.name);
  });
});
