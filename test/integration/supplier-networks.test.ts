import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { createLogger } from '../../src/observability/logger.ts';
import { type FakeOpenAI, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import { type Catalog, seedCatalog, startTestHub, type TestHub } from '../helpers/hub.ts';

/**
 * A supplier admin sets their deployments' URLs, and the hub then connects there with every call: it
 * must not become their way into the hub's own network. Their URLs reach public addresses and the
 * networks the operator allows (KAIHUB_SUPPLIER_NETWORKS), checked by the admin API and again at every
 * connection; the operator's URLs are trusted as they are.
 */
describe("a supplier admin's deployment reaches only public addresses and the networks the operator allows", () => {
  let fake: FakeOpenAI;
  let a: TestHub;
  let b: TestHub | undefined;
  let catalog: Catalog;
  let supplierAdmin: string;
  let productId: string;
  let bLog = '';

  const as = async (t: TestHub, token: string, method: string, path: string, body?: unknown) => {
    const res = await fetch(`${t.url}/admin/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  const must = async (method: string, path: string, body?: unknown) => {
    const r = await a.admin(method, path, body);
    assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  const chat = (t: TestHub, model: string) =>
    new OpenAI({ apiKey: catalog.key, baseURL: `${t.url}/v1`, maxRetries: 0 }).chat.completions.create({
      model,
      messages: [{ role: 'user', content: '안녕하세요' }],
    });

  before(async () => {
    fake = await startFakeOpenAI({ apiKey: 'upstream-secret' });
    // The fake listens on 127.0.0.1: on hub a the operator allows that one address to suppliers.
    a = await startTestHub({ KAIHUB_SUPPLIER_NETWORKS: '127.0.0.1/32' });
    catalog = await seedCatalog(a, fake.url);
    const user = await must('POST', '/users', { name: '공급 관리자', email: 'supplier-net@example.kr' });
    await must('POST', `/users/${user.id}/memberships`, {
      role: 'supplier_admin',
      supplierId: catalog.supplierId,
    });
    supplierAdmin = (await must('POST', `/users/${user.id}/tokens`, {})).token;
    productId = (
      await must('POST', '/products', {
        supplierId: catalog.supplierId,
        model: 'net-test',
        displayName: 'Network test',
        purposes: ['chat'],
        modality: 'text',
        contextWindow: 8192,
        priceInputPer1M: '1000',
        priceOutputPer1M: '3000',
        residency: 'domestic',
      })
    ).id;
  });
  after(async () => {
    await b?.close();
    await a?.close();
    await fake?.close();
  });

  test('the admin API refuses a URL that is not public, naming the field; the operator may set any', async () => {
    const count = async () => (await must('GET', `/deployments?productId=${productId}`)).data.length;
    const before = await count();
    for (const baseUrl of [
      'http://127.0.0.2:1/v1', // loopback, outside the one allowed address
      'https://10.0.0.5/v1',
      'https://169.254.169.254/latest',
      'https://[::1]:8443/v1',
      'https://localhost/v1',
      'http://api.supplier.example/v1', // public, but the credential would travel in clear
    ]) {
      const r = await as(a, supplierAdmin, 'POST', '/deployments', {
        productId,
        adapter: 'openai-compatible',
        baseUrl,
        apiKey: 'upstream-secret',
      });
      assert.equal(r.status, 400, baseUrl);
      assert.equal(r.body.error.fields[0].field, 'baseUrl', baseUrl);
    }
    const moved = await as(a, supplierAdmin, 'PATCH', `/deployments/${catalog.deploymentId}`, {
      baseUrl: 'https://10.0.0.5/v1',
    });
    assert.equal(moved.status, 400, 'nor moved there');
    assert.equal(await count(), before);

    const operators = await must('POST', '/deployments', {
      productId,
      adapter: 'openai-compatible',
      baseUrl: 'http://127.0.0.2:1/v1',
      status: 'disabled',
    });
    assert.equal(operators.baseUrlSetBy, 'operator');
    const touched = await as(a, supplierAdmin, 'PATCH', `/deployments/${operators.id}`, { weight: 3 });
    assert.equal(touched.status, 200);
    assert.equal(
      touched.body.baseUrlSetBy,
      'operator',
      'changing the weight does not change whose URL it is',
    );
    await must('DELETE', `/deployments/${operators.id}`);
  });

  test('an allowed network is reached; once withdrawn, the hub refuses to connect there', async () => {
    const created = await as(a, supplierAdmin, 'POST', '/deployments', {
      productId,
      adapter: 'openai-compatible',
      baseUrl: fake.url,
      apiKey: 'upstream-secret',
      upstreamModel: 'fake-chat',
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.baseUrlSetBy, 'supplier_admin');
    const answered = await chat(a, 'net-test');
    assert.equal(answered.model, 'net-test');

    // A replica whose operator does not allow 127.0.0.1 to suppliers: the same catalogue, no allowance.
    b = await startTestHub(
      { KAIHUB_UPSTREAM_RETRIES: '0' },
      {
        replicaOf: a,
        logger: createLogger(
          'debug',
          new Writable({
            write(chunk, _encoding, done) {
              bLog += String(chunk);
              done();
            },
          }),
        ),
      },
    );
    const seen = fake.requests.length;
    const refused = await chat(b, 'net-test').then(
      () => assert.fail('the call must not be answered'),
      (error: unknown) => error,
    );
    assert.ok(refused instanceof OpenAI.APIError);
    assert.equal(refused.status, 502);
    assert.doesNotMatch(refused.message, /127\.0\.0\.1/, 'the address stays out of the client’s answer');
    assert.equal(fake.requests.length, seen, 'nothing reached the address');
    assert.match(bLog, /kaihub refused to connect: 127\.0\.0\.1 is not a public address/);
    assert.match(bLog, /KAIHUB_SUPPLIER_NETWORKS/);

    // The operator's deployment at the same address is trusted as it is.
    const trusted = await chat(b, 'hcx-test');
    assert.equal(trusted.model, 'hcx-test');
    assert.equal(fake.requests.length, seen + 1);

    // The operator takes the URL over (through b, so b reloads at once): now it is the operator's.
    const adopted = await b.admin('PATCH', `/deployments/${created.body.id}`, { baseUrl: fake.url });
    assert.equal(adopted.body.baseUrlSetBy, 'operator');
    assert.equal((await chat(b, 'net-test')).model, 'net-test');
  });
});
