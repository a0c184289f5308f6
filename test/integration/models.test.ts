import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import OpenAI from 'openai';
import { type FakeOpenAI, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import { type Catalog, seedCatalog, startTestHub, type TestHub } from '../helpers/hub.ts';
import { assertMatchesSchema, ERROR_RESPONSE, MODEL, MODELS_LIST_RESPONSE } from '../helpers/openapi.ts';

describe('GET /v1/models', () => {
  let fake: FakeOpenAI;
  let t: TestHub;
  let catalog: Catalog;
  let client: OpenAI;
  let lgSupplierId: string;
  let exaoneProductId: string;
  let exaoneDeploymentId: string;

  async function must(method: string, path: string, body?: unknown, status = method === 'POST' ? 201 : 200) {
    const r = await t.admin(method, path, body);
    assert.equal(r.status, status, `${method} ${path}: ${JSON.stringify(r.body)}`);
    return r.body;
  }

  async function addProduct(supplierId: string, model: string, extra: Record<string, unknown> = {}) {
    return must('POST', '/products', {
      supplierId,
      model,
      displayName: model,
      purposes: ['chat'],
      modality: 'text',
      contextWindow: 8192,
      priceInputPer1M: '500',
      priceOutputPer1M: '1500',
      residency: 'domestic',
      ...extra,
    });
  }

  async function addDeployment(productId: string, extra: Record<string, unknown> = {}) {
    return must('POST', '/deployments', {
      productId,
      adapter: 'openai-compatible',
      baseUrl: fake.url,
      apiKey: 'upstream-secret',
      upstreamModel: 'fake-chat',
      ...extra,
    });
  }

  /** What a raw GET /v1/models answers, checked against OpenAI's schema. */
  async function listed(key = catalog.key): Promise<string[]> {
    const res = await fetch(`${t.url}/v1/models`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { data: { id: string }[] };
    assertMatchesSchema(MODELS_LIST_RESPONSE, body);
    return body.data.map((m) => m.id);
  }

  async function chatStatus(model: string): Promise<number> {
    const res = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${catalog.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
    });
    const body = await res.json();
    if (res.status !== 200) assertMatchesSchema(ERROR_RESPONSE, body);
    return res.status;
  }

  before(async () => {
    fake = await startFakeOpenAI({ apiKey: 'upstream-secret' });
    t = await startTestHub();
    catalog = await seedCatalog(t, fake.url);
    client = new OpenAI({ apiKey: catalog.key, baseURL: `${t.url}/v1`, maxRetries: 0 });

    // A second supplier with a deployed product
    const lg = await must('POST', '/suppliers', { name: 'LG AI연구원', nameEn: 'LG AI Research' });
    lgSupplierId = lg.id;
    const exaone = await addProduct(lg.id, 'exaone-test');
    exaoneProductId = exaone.id;
    exaoneDeploymentId = (await addDeployment(exaone.id)).id;

    // Products that must not be listed: no deployment, inactive, only a disabled deployment,
    // retired, and one of a suspended supplier
    await addProduct(catalog.supplierId, 'nodep-test');
    await addDeployment((await addProduct(catalog.supplierId, 'draft-test', { status: 'inactive' })).id);
    await addDeployment((await addProduct(catalog.supplierId, 'disabled-dep-test')).id, {
      status: 'disabled',
    });
    await addDeployment((await addProduct(catalog.supplierId, 'retired-test', { status: 'retired' })).id);
    const kt = await must('POST', '/suppliers', { name: 'KT', status: 'suspended' });
    await addDeployment((await addProduct(kt.id, 'midm-test')).id);
  });
  after(async () => {
    await t?.close();
    await fake?.close();
  });
  beforeEach(() => fake.reset());

  test('lists only active products with an active deployment, in OpenAI shape', async () => {
    assert.deepEqual(await listed(), ['embed-test', 'exaone-test', 'hcx-test']);
    const page = await client.models.list();
    assert.deepEqual(
      page.data.map((m) => m.id),
      ['embed-test', 'exaone-test', 'hcx-test'],
    );
    const now = Date.now() / 1000;
    for (const m of page.data) {
      assertMatchesSchema(MODEL, m);
      assert.equal(m.object, 'model');
      assert.ok(Number.isInteger(m.created) && Math.abs(m.created - now) < 600, `created ${m.created}`);
    }
    assert.equal(fake.requests.length, 0, 'the list comes from the catalog, not from upstreams');
  });

  test("owned_by is the supplier's name", async () => {
    const page = await client.models.list();
    const owners = Object.fromEntries(page.data.map((m) => [m.id, m.owned_by]));
    assert.deepEqual(owners, {
      'embed-test': '네이버클라우드',
      'exaone-test': 'LG AI연구원',
      'hcx-test': '네이버클라우드',
    });
  });

  test('retrieve answers one model, and 404 for products that are not served', async () => {
    const model = await client.models.retrieve('hcx-test');
    assertMatchesSchema(MODEL, model);
    assert.equal(model.id, 'hcx-test');
    assert.equal(model.object, 'model');
    assert.equal(model.owned_by, '네이버클라우드');
    for (const id of ['nodep-test', 'draft-test', 'disabled-dep-test', 'retired-test', 'midm-test', 'nope']) {
      await assert.rejects(
        client.models.retrieve(id),
        (e: unknown) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found',
        id,
      );
      assert.equal(await chatStatus(id), 404, `chat with ${id}`);
    }
  });

  test('a key with allowedModels sees only those models', async () => {
    const key = await must('POST', `/organizations/${catalog.organizationId}/keys`, {
      name: 'two models',
      allowedModels: ['hcx-test', 'exaone-test', 'nodep-test'],
    });
    assert.deepEqual(await listed(key.key), ['exaone-test', 'hcx-test']);
    const limited = new OpenAI({ apiKey: key.key, baseURL: `${t.url}/v1`, maxRetries: 0 });
    await assert.rejects(
      limited.models.retrieve('embed-test'),
      (e: unknown) => e instanceof OpenAI.NotFoundError,
    );
    assert.equal((await limited.models.retrieve('exaone-test')).id, 'exaone-test');
  });

  test('without a key, the list is a 401', async () => {
    const res = await fetch(`${t.url}/v1/models`);
    assert.equal(res.status, 401);
    assertMatchesSchema(ERROR_RESPONSE, await res.json());
  });

  test('a product PATCHed inactive disappears at once and gets 404; active again, it is back', async () => {
    assert.equal(await chatStatus('exaone-test'), 200);
    const inactive = await must('PATCH', `/products/${exaoneProductId}`, { status: 'inactive' });
    assert.equal(inactive.status, 'inactive');
    // the hub reloads its snapshot on a change made through it: no waiting for a poll
    assert.deepEqual(await listed(), ['embed-test', 'hcx-test']);
    await assert.rejects(
      client.models.retrieve('exaone-test'),
      (e: unknown) => e instanceof OpenAI.NotFoundError,
    );
    assert.equal(await chatStatus('exaone-test'), 404);
    await assert.rejects(
      client.chat.completions.create({ model: 'exaone-test', messages: [{ role: 'user', content: 'x' }] }),
      (e: unknown) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found',
    );

    await must('PATCH', `/products/${exaoneProductId}`, { status: 'active' });
    assert.deepEqual(await listed(), ['embed-test', 'exaone-test', 'hcx-test']);
    assert.equal(await chatStatus('exaone-test'), 200);
  });

  test('a PATCH that does not name status leaves the product listed', async () => {
    await must('PATCH', `/products/${exaoneProductId}`, { status: 'inactive' });
    await must('PATCH', `/products/${exaoneProductId}`, { displayName: 'EXAONE Test' });
    assert.deepEqual(await listed(), ['embed-test', 'hcx-test'], 'the rename must not reactivate it');
    await must('PATCH', `/products/${exaoneProductId}`, { status: 'active' });
    assert.deepEqual(await listed(), ['embed-test', 'exaone-test', 'hcx-test']);
  });

  test('deleting the only deployment, or suspending the supplier, removes the model', async () => {
    await must('DELETE', `/deployments/${exaoneDeploymentId}`, undefined, 204);
    assert.deepEqual(await listed(), ['embed-test', 'hcx-test']);
    assert.equal(await chatStatus('exaone-test'), 404);
    exaoneDeploymentId = (await addDeployment(exaoneProductId)).id;
    assert.deepEqual(await listed(), ['embed-test', 'exaone-test', 'hcx-test']);

    await must('PATCH', `/suppliers/${lgSupplierId}`, { status: 'suspended' });
    assert.deepEqual(await listed(), ['embed-test', 'hcx-test']);
    assert.equal(await chatStatus('exaone-test'), 404);
    await must('PATCH', `/suppliers/${lgSupplierId}`, { status: 'active' });
    assert.deepEqual(await listed(), ['embed-test', 'exaone-test', 'hcx-test']);
    assert.equal(await chatStatus('exaone-test'), 200);
  });
});
