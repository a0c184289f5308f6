import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import OpenAI from 'openai';
import { type FakeOpenAI, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import { ADMIN_TOKEN, startTestHub, type TestHub } from '../helpers/hub.ts';

/**
 * /admin/v1 over real HTTP, on the engine KAIHUB_TEST_DATABASE names. Secrets are checked where a
 * leak would show: in the raw response text and in the stored rows, not just in parsed fields.
 */

interface RawResponse {
  status: number;
  text: string;
  body: any;
}

/** A request with full control over the token and the body text. */
async function call(
  t: TestHub,
  method: string,
  path: string,
  options: { token?: string | null; authorization?: string; body?: string } = {},
): Promise<RawResponse> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (options.authorization !== undefined) headers.authorization = options.authorization;
  else if (options.token !== null) headers.authorization = `Bearer ${options.token ?? ADMIN_TOKEN}`;
  const res = await fetch(`${t.url}/admin/v1${path}`, {
    method,
    headers,
    ...(options.body !== undefined && { body: options.body }),
  });
  const text = await res.text();
  return { status: res.status, text, body: text ? JSON.parse(text) : undefined };
}

/** Asserts a 400 that names exactly these fields (in any order), and returns the problems. */
function assertInvalid(r: { status: number; body: any }, fields: string[]) {
  assert.equal(r.status, 400, JSON.stringify(r.body));
  assert.equal(r.body.error.code, 'validation_failed');
  assert.match(r.body.error.message, /입력값이 올바르지 않습니다/);
  const named = (r.body.error.fields as { field: string; message: string }[]).map((f) => f.field);
  assert.deepEqual([...new Set(named)].sort(), [...fields].sort());
  for (const f of r.body.error.fields) assert.ok(f.message.length > 0, `a message for ${f.field}`);
  return r.body.error.fields as { field: string; message: string }[];
}

function assertNotFound(r: { status: number; body: any }) {
  assert.equal(r.status, 404, JSON.stringify(r.body));
  assert.equal(r.body.error.code, 'not_found');
}

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

function productInput(supplierId: string, model: string, extra: Record<string, unknown> = {}) {
  return {
    supplierId,
    model,
    displayName: `${model} 상품`,
    purposes: ['chat'],
    modality: 'text',
    contextWindow: 8192,
    priceInputPer1M: '1000',
    priceOutputPer1M: '2000',
    residency: 'domestic',
    ...extra,
  };
}

describe('admin API /admin/v1', () => {
  let t: TestHub;
  let supplierId: string;

  before(async () => {
    t = await startTestHub();
    const r = await t.admin('POST', '/suppliers', { name: '기본 공급기업' });
    assert.equal(r.status, 201);
    supplierId = r.body.id;
  });
  after(async () => {
    await t?.close();
  });

  describe('operator token', () => {
    test('every route answers 401 without a token, with a wrong one, or with another scheme', async () => {
      const cases: { token?: string | null; authorization?: string }[] = [
        { token: null },
        { token: 'wrong-token-0123456789' },
        { token: `${ADMIN_TOKEN}x` },
        { authorization: `Basic ${Buffer.from(`admin:${ADMIN_TOKEN}`).toString('base64')}` },
        { authorization: ADMIN_TOKEN },
        { authorization: 'Bearer ' },
      ];
      for (const auth of cases) {
        for (const [method, path] of [
          ['GET', '/suppliers'],
          ['GET', '/usage'],
          ['GET', '/no-such-route'],
          ['DELETE', '/keys/key_x'],
        ] as const) {
          const r = await call(t, method, path, auth);
          assert.equal(r.status, 401, `${method} ${path} with ${JSON.stringify(auth)}`);
          assert.equal(r.body.error.code, 'unauthorized');
          assert.match(r.body.error.message, /운영자 토큰/);
        }
      }
    });

    test('a refused write changes nothing', async () => {
      const r = await call(t, 'POST', '/suppliers', {
        token: 'nope',
        body: JSON.stringify({ name: '몰래' }),
      });
      assert.equal(r.status, 401);
      const list = await t.admin('GET', '/suppliers');
      assert.ok(!list.body.data.some((s: any) => s.name === '몰래'));
    });

    test('the token is accepted with a lower-case scheme', async () => {
      const r = await call(t, 'GET', '/suppliers', { authorization: `bearer ${ADMIN_TOKEN}` });
      assert.equal(r.status, 200);
    });
  });

  describe('suppliers', () => {
    test('POST, GET, GET one and PATCH round-trip every field', async () => {
      const input = {
        name: 'LG AI연구원',
        nameEn: 'LG AI Research',
        contactName: '김담당',
        contactEmail: 'contact@lgresearch.ai',
        website: 'https://www.lgresearch.ai',
        status: 'active',
      };
      const created = await t.admin('POST', '/suppliers', input);
      assert.equal(created.status, 201);
      assert.match(created.body.id, /^sup_/);
      assert.match(created.body.createdAt, ISO);
      assert.equal(created.body.updatedAt, created.body.createdAt);
      for (const [k, v] of Object.entries(input)) assert.equal(created.body[k], v, k);

      const one = await t.admin('GET', `/suppliers/${created.body.id}`);
      assert.equal(one.status, 200);
      assert.deepEqual(one.body, created.body);
      const list = await t.admin('GET', '/suppliers');
      assert.equal(list.status, 200);
      assert.deepEqual(
        list.body.data.find((s: any) => s.id === created.body.id),
        created.body,
      );

      const patched = await t.admin('PATCH', `/suppliers/${created.body.id}`, {
        status: 'suspended',
        website: null,
      });
      assert.equal(patched.status, 200);
      assert.equal(patched.body.status, 'suspended');
      assert.equal(patched.body.website, null);
      assert.equal(patched.body.nameEn, 'LG AI Research', 'fields left out keep their value');

      // A PATCH that does not mention status must not reset it to the default.
      const renamed = await t.admin('PATCH', `/suppliers/${created.body.id}`, { nameEn: 'LG AI' });
      assert.equal(renamed.body.status, 'suspended');
      assert.equal(renamed.body.nameEn, 'LG AI');
      const empty = await t.admin('PATCH', `/suppliers/${created.body.id}`, {});
      assert.equal(empty.status, 200);
      assert.deepEqual(empty.body, renamed.body, 'an empty PATCH changes nothing, not even updatedAt');
    });

    test('the name is unique: 409 naming the field, on create and on rename', async () => {
      const a = await t.admin('POST', '/suppliers', { name: 'KT' });
      assert.equal(a.status, 201);
      const dup = await t.admin('POST', '/suppliers', { name: 'KT' });
      assert.equal(dup.status, 409);
      assert.equal(dup.body.error.code, 'conflict');
      assert.deepEqual(
        dup.body.error.fields.map((f: any) => f.field),
        ['name'],
      );
      const b = await t.admin('POST', '/suppliers', { name: 'Upstage' });
      const rename = await t.admin('PATCH', `/suppliers/${b.body.id}`, { name: 'KT' });
      assert.equal(rename.status, 409);
      assert.equal(rename.body.error.fields[0].field, 'name');
    });

    test('invalid input names each field', async () => {
      assertInvalid(await t.admin('POST', '/suppliers', {}), ['name']);
      assertInvalid(await t.admin('POST', '/suppliers', { name: '   ' }), ['name']);
      assertInvalid(
        await t.admin('POST', '/suppliers', {
          name: 'X',
          contactEmail: 'not-an-email',
          website: 'not a url',
          status: 'closed',
          phone: '010',
        }),
        ['contactEmail', 'website', 'status', 'phone'],
      );
      assertInvalid(await t.admin('PATCH', `/suppliers/${supplierId}`, { name: '' }), ['name']);
    });
  });

  describe('products', () => {
    test('every field round-trips exactly, prices as text and as numbers', async () => {
      const input = {
        supplierId,
        model: 'exaone-4.0-32b',
        displayName: 'EXAONE 4.0 32B',
        description: 'LG AI연구원의 추론 모델 / reasoning model',
        parameters: 32_000_000_000,
        purposes: ['chat', 'reasoning', 'code'],
        modality: 'text',
        contextWindow: 131_072,
        priceInputPer1M: '1250.5',
        priceOutputPer1M: '0.000001',
        residency: 'domestic',
        status: 'inactive',
      };
      const created = await t.admin('POST', '/products', input);
      assert.equal(created.status, 201, JSON.stringify(created.body));
      assert.match(created.body.id, /^prd_/);
      assert.match(created.body.createdAt, ISO);
      for (const [k, v] of Object.entries(input)) assert.deepEqual(created.body[k], v, k);

      const one = await t.admin('GET', `/products/${created.body.id}`);
      assert.deepEqual(one.body, created.body);
      const list = await t.admin('GET', '/products');
      assert.deepEqual(
        list.body.data.find((p: any) => p.id === created.body.id),
        created.body,
      );
      const stored = await t.hub.db.get<{ pin: string; pout: string; parameters: unknown }>(
        `SELECT CAST(price_input_micro_per_1m AS TEXT) AS pin, CAST(price_output_micro_per_1m AS TEXT) AS pout,
                parameters FROM products WHERE id = ?`,
        [created.body.id],
      );
      assert.equal(stored?.pin, '1250500000', 'stored as exact micro-won');
      assert.equal(stored?.pout, '1');
      assert.equal(Number(stored?.parameters), 32_000_000_000);

      const asNumbers = await t.admin(
        'POST',
        '/products',
        productInput(supplierId, 'exaone-numbers', { priceInputPer1M: 1250.5, priceOutputPer1M: 0.000001 }),
      );
      assert.equal(asNumbers.status, 201);
      assert.equal(asNumbers.body.priceInputPer1M, '1250.5');
      assert.equal(asNumbers.body.priceOutputPer1M, '0.000001');
      assert.equal(asNumbers.body.status, 'active', 'status defaults to active');
      assert.equal(asNumbers.body.parameters, null);
      assert.equal(asNumbers.body.description, null);
    });

    test('prices: every accepted form is stored exactly and read back canonically', async () => {
      const p = await t.admin('POST', '/products', productInput(supplierId, 'price-cases'));
      const cases: [unknown, string, string][] = [
        ['1250.5', '1250.5', '1250500000'],
        [1250.5, '1250.5', '1250500000'],
        ['0.000001', '0.000001', '1'],
        [0.000001, '0.000001', '1'],
        ['0', '0', '0'],
        [3000, '3000', '3000000000'],
        ['0.10', '0.1', '100000'],
        [' 12 ', '12', '12000000'],
        ['999999999.999999', '999999999.999999', '999999999999999'],
      ];
      for (const [given, text, micro] of cases) {
        const r = await t.admin('PATCH', `/products/${p.body.id}`, { priceInputPer1M: given });
        assert.equal(r.status, 200, `${JSON.stringify(given)}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.priceInputPer1M, text, JSON.stringify(given));
        assert.equal((await t.admin('GET', `/products/${p.body.id}`)).body.priceInputPer1M, text);
        const row = await t.hub.db.get<{ v: string }>(
          'SELECT CAST(price_input_micro_per_1m AS TEXT) AS v FROM products WHERE id = ?',
          [p.body.id],
        );
        assert.equal(row?.v, micro, JSON.stringify(given));
      }
      const bad: unknown[] = [
        '-1',
        -5,
        '1.1234567',
        1e-7,
        '1e3',
        '',
        'abc',
        '1,000',
        '.5',
        true,
        null,
        '1000000000',
      ];
      for (const given of bad) {
        const [problem] = assertInvalid(
          await t.admin('PATCH', `/products/${p.body.id}`, { priceInputPer1M: given }),
          ['priceInputPer1M'],
        );
        if (given === '-1') assert.match(problem!.message, /negative/);
        if (given === '1.1234567') assert.match(problem!.message, /6 decimal/);
      }
      assert.equal((await t.admin('GET', `/products/${p.body.id}`)).body.priceInputPer1M, '999999999.999999');
    });

    test('parameters is an integer up to 2^53-1; null clears it', async () => {
      const p = await t.admin(
        'POST',
        '/products',
        productInput(supplierId, 'solar-pro', { parameters: 2_100_000_000 }),
      );
      assert.equal(p.body.parameters, 2_100_000_000);
      const max = await t.admin('PATCH', `/products/${p.body.id}`, { parameters: Number.MAX_SAFE_INTEGER });
      assert.equal(max.body.parameters, Number.MAX_SAFE_INTEGER);
      const cleared = await t.admin('PATCH', `/products/${p.body.id}`, { parameters: null });
      assert.equal(cleared.body.parameters, null);
      for (const bad of [1.5, 0, -1, '7B', '2100000000', Number.MAX_SAFE_INTEGER + 2]) {
        assertInvalid(await t.admin('PATCH', `/products/${p.body.id}`, { parameters: bad }), ['parameters']);
      }
    });

    test('purposes are tags from a fixed list, de-duplicated', async () => {
      const p = await t.admin(
        'POST',
        '/products',
        productInput(supplierId, 'kanana', { purposes: ['summarization', 'chat', 'summarization'] }),
      );
      assert.deepEqual(p.body.purposes, ['summarization', 'chat']);
      const all = ['translation', 'embedding', 'legal', 'medical', 'finance', 'public'];
      assert.deepEqual(
        (await t.admin('PATCH', `/products/${p.body.id}`, { purposes: all })).body.purposes,
        all,
      );
      assertInvalid(await t.admin('PATCH', `/products/${p.body.id}`, { purposes: [] }), ['purposes']);
      assertInvalid(await t.admin('PATCH', `/products/${p.body.id}`, { purposes: 'chat' }), ['purposes']);
      assertInvalid(await t.admin('PATCH', `/products/${p.body.id}`, { purposes: ['chat', 'poetry'] }), [
        'purposes.1',
      ]);
    });

    test('PATCH changes only what it names and keeps status', async () => {
      const p = await t.admin(
        'POST',
        '/products',
        productInput(supplierId, 'midm-base', { status: 'retired', residency: 'foreign' }),
      );
      const r = await t.admin('PATCH', `/products/${p.body.id}`, {
        displayName: '믿:음 Base',
        modality: 'multimodal',
        contextWindow: 32_768,
        priceOutputPer1M: 4500.75,
      });
      assert.equal(r.status, 200);
      assert.deepEqual(
        { ...r.body, updatedAt: p.body.updatedAt },
        {
          ...p.body,
          displayName: '믿:음 Base',
          modality: 'multimodal',
          contextWindow: 32_768,
          priceOutputPer1M: '4500.75',
        },
      );
      assert.equal(r.body.status, 'retired');
      const moved = await t.admin('POST', '/suppliers', { name: '이전 공급기업' });
      const m = await t.admin('PATCH', `/products/${p.body.id}`, { supplierId: moved.body.id });
      assert.equal(m.body.supplierId, moved.body.id);
      const filtered = await t.admin('GET', `/products?supplierId=${moved.body.id}`);
      assert.deepEqual(
        filtered.body.data.map((x: any) => x.id),
        [p.body.id],
      );
    });

    test('model is unique: 409 naming the field, on create and on PATCH', async () => {
      const a = await t.admin('POST', '/products', productInput(supplierId, 'hcx-dash'));
      assert.equal(a.status, 201);
      const dup = await t.admin('POST', '/products', productInput(supplierId, 'hcx-dash'));
      assert.equal(dup.status, 409);
      assert.equal(dup.body.error.code, 'conflict');
      assert.deepEqual(dup.body.error.fields, [
        { field: 'model', message: 'model "hcx-dash" is already a product' },
      ]);
      assert.match(dup.body.error.message, /hcx-dash/);
      const b = await t.admin('POST', '/products', productInput(supplierId, 'hcx-seed'));
      const clash = await t.admin('PATCH', `/products/${b.body.id}`, { model: 'hcx-dash' });
      assert.equal(clash.status, 409);
      assert.equal(clash.body.error.fields[0].field, 'model');
      assert.equal((await t.admin('GET', `/products/${b.body.id}`)).body.model, 'hcx-seed');
    });

    test('invalid input names each field', async () => {
      const base = productInput(supplierId, 'valid-model');
      const without = (k: string) => Object.fromEntries(Object.entries(base).filter(([key]) => key !== k));
      assertInvalid(await t.admin('POST', '/products', without('model')), ['model']);
      for (const required of [
        'supplierId',
        'displayName',
        'purposes',
        'modality',
        'contextWindow',
        'residency',
      ]) {
        assertInvalid(await t.admin('POST', '/products', without(required)), [required]);
      }
      assertInvalid(await t.admin('POST', '/products', { ...base, priceInputPer1M: '-1' }), [
        'priceInputPer1M',
      ]);
      assertInvalid(await t.admin('POST', '/products', { ...base, priceInputPer1M: '1.1234567' }), [
        'priceInputPer1M',
      ]);
      const unknown = assertInvalid(await t.admin('POST', '/products', { ...base, priceInput: '10' }), [
        'priceInput',
      ]);
      assert.equal(unknown[0]!.message, 'unknown field');
      assertInvalid(await t.admin('POST', '/products', { ...base, residency: 'mars' }), ['residency']);
      assertInvalid(await t.admin('POST', '/products', { ...base, modality: 'audio' }), ['modality']);
      assertInvalid(await t.admin('POST', '/products', { ...base, status: 'deleted' }), ['status']);
      for (const model of ['auto', 'has space', '-leading', 'a'.repeat(129), '']) {
        assertInvalid(await t.admin('POST', '/products', { ...base, model }), ['model']);
      }
      for (const contextWindow of [0, 1.5, '4096', 100_000_001]) {
        assertInvalid(await t.admin('POST', '/products', { ...base, contextWindow }), ['contextWindow']);
      }
      assertInvalid(await t.admin('POST', '/products', { ...base, supplierId: 'sup_missing' }), [
        'supplierId',
      ]);
      assertInvalid(
        await t.admin('POST', '/products', {
          ...without('model'),
          priceInputPer1M: '-1',
          priceOutputPer1M: '1.1234567',
          residency: 'mars',
          priceInput: 1,
        }),
        ['model', 'priceInputPer1M', 'priceOutputPer1M', 'residency', 'priceInput'],
      );
      assert.equal(
        (await t.admin('GET', '/products')).body.data.some((p: any) => p.model === 'valid-model'),
        false,
      );
    });
  });

  describe('deployments', () => {
    const SECRET = 'sk-upstream-TOP-SECRET-4f1c2d9e';
    const SECRET2 = 'sk-upstream-ROTATED-77aa01';
    let productId: string;

    before(async () => {
      const p = await t.admin('POST', '/products', productInput(supplierId, 'deploy-target'));
      productId = p.body.id;
    });

    async function storedRow(id: string) {
      return t.hub.db.get<Record<string, unknown>>('SELECT * FROM deployments WHERE id = ?', [id]);
    }

    test('apiKey is write-only: never in any response, sealed in the database, hasApiKey instead', async () => {
      const created = await call(t, 'POST', '/deployments', {
        body: JSON.stringify({
          productId,
          adapter: 'openai-compatible',
          baseUrl: 'https://clovastudio.example.com/v1/',
          apiKey: SECRET,
        }),
      });
      assert.equal(created.status, 201);
      assert.ok(!created.text.includes(SECRET));
      const id = created.body.id;
      assert.match(id, /^dep_/);
      assert.deepEqual(Object.keys(created.body).sort(), [
        'adapter',
        'baseUrl',
        'baseUrlSetBy',
        'createdAt',
        'credential',
        'csapCertified',
        'hasApiKey',
        'health',
        'id',
        'load',
        'maxConcurrent',
        'priority',
        'productId',
        'residency',
        'status',
        'updatedAt',
        'upstreamModel',
        'weight',
      ]);
      assert.equal(created.body.hasApiKey, true);
      assert.equal(created.body.baseUrl, 'https://clovastudio.example.com/v1', 'trailing slash dropped');
      assert.equal(created.body.upstreamModel, 'deploy-target', 'defaults to the product model');
      assert.equal(created.body.weight, 1);
      assert.equal(created.body.priority, 0);
      assert.equal(created.body.status, 'active');

      for (const path of ['/deployments', `/deployments/${id}`, `/deployments?productId=${productId}`]) {
        const r = await call(t, 'GET', path);
        assert.equal(r.status, 200);
        assert.ok(!r.text.includes(SECRET), `${path} leaks the key`);
        assert.ok(!r.text.includes('apiKey'), `${path} names apiKey`);
        assert.ok(!/"v[12]\./.test(r.text), `${path} shows the sealed value`);
      }
      const one = await t.admin('GET', `/deployments/${id}`);
      assert.deepEqual(one.body, created.body);

      const row = await storedRow(id);
      assert.ok(row);
      assert.ok(!JSON.stringify(row).includes(SECRET), 'no column holds the plain key');
      const sealed = row.api_key_sealed as string;
      assert.match(sealed, /^v2\.[0-9a-f]{8}\.[\w-]+\.[\w-]+\.[\w-]+$/, 'sealed naming its key');
      assert.equal(created.body.credential.state, 'current');

      const rotated = await call(t, 'PATCH', `/deployments/${id}`, {
        body: JSON.stringify({ apiKey: SECRET2 }),
      });
      assert.equal(rotated.status, 200);
      assert.ok(!rotated.text.includes(SECRET2));
      assert.equal(rotated.body.hasApiKey, true);
      const resealed = (await storedRow(id))?.api_key_sealed as string;
      assert.notEqual(resealed, sealed);
      assert.ok(!resealed.includes(SECRET2));

      const weighted = await t.admin('PATCH', `/deployments/${id}`, { weight: 7 });
      assert.equal(weighted.body.hasApiKey, true, 'a PATCH without apiKey keeps it');
      assert.equal((await storedRow(id))?.api_key_sealed, resealed);

      const cleared = await t.admin('PATCH', `/deployments/${id}`, { apiKey: null });
      assert.equal(cleared.body.hasApiKey, false);
      assert.equal((await storedRow(id))?.api_key_sealed, null);

      const noKey = await t.admin('POST', '/deployments', {
        productId,
        adapter: 'openai-compatible',
        baseUrl: 'http://10.0.0.5:8000/v1',
      });
      assert.equal(noKey.body.hasApiKey, false);
    });

    test('PATCH changes only what it names; status survives other edits', async () => {
      const d = await t.admin('POST', '/deployments', {
        productId,
        adapter: 'openai-compatible',
        baseUrl: 'https://a.example.com',
        upstreamModel: 'HCX-005',
        weight: 3,
        priority: 2,
        status: 'disabled',
      });
      assert.equal(d.status, 201);
      const r = await t.admin('PATCH', `/deployments/${d.body.id}`, {
        baseUrl: 'https://b.example.com/v1//',
      });
      assert.deepEqual(
        { ...r.body, updatedAt: d.body.updatedAt },
        { ...d.body, baseUrl: 'https://b.example.com/v1' },
      );
      const re = await t.admin('PATCH', `/deployments/${d.body.id}`, { status: 'active', priority: 9 });
      assert.equal(re.body.status, 'active');
      assert.equal(re.body.priority, 9);
      assert.equal(re.body.weight, 3);
    });

    test('DELETE removes it from every read; a second DELETE is 404', async () => {
      const d = await t.admin('POST', '/deployments', {
        productId,
        adapter: 'openai-compatible',
        baseUrl: 'https://gone.example.com',
      });
      const del = await call(t, 'DELETE', `/deployments/${d.body.id}`);
      assert.equal(del.status, 204);
      assert.equal(del.text, '');
      assertNotFound(await t.admin('GET', `/deployments/${d.body.id}`));
      assertNotFound(await t.admin('PATCH', `/deployments/${d.body.id}`, { weight: 2 }));
      assertNotFound(await t.admin('DELETE', `/deployments/${d.body.id}`));
      const list = await t.admin('GET', '/deployments');
      assert.ok(!list.body.data.some((x: any) => x.id === d.body.id));
    });

    test('invalid input names each field', async () => {
      const base = { productId, adapter: 'openai-compatible', baseUrl: 'https://ok.example.com' };
      for (const baseUrl of ['not a url', 'ftp://files.example.com', 'example.com/v1', '']) {
        assertInvalid(await t.admin('POST', '/deployments', { ...base, baseUrl }), ['baseUrl']);
      }
      assertInvalid(await t.admin('POST', '/deployments', { productId, adapter: 'openai-compatible' }), [
        'baseUrl',
      ]);
      assertInvalid(await t.admin('POST', '/deployments', { ...base, adapter: 'grpc' }), ['adapter']);
      assertInvalid(await t.admin('POST', '/deployments', { ...base, productId: 'prd_missing' }), [
        'productId',
      ]);
      assertInvalid(await t.admin('POST', '/deployments', { ...base, apiKey: '' }), ['apiKey']);
      assertInvalid(await t.admin('POST', '/deployments', { ...base, weight: -1, priority: 1.5 }), [
        'weight',
        'priority',
      ]);
      assertInvalid(await t.admin('POST', '/deployments', { ...base, status: 'deleted' }), ['status']);
      const d = await t.admin('POST', '/deployments', base);
      assertInvalid(await t.admin('PATCH', `/deployments/${d.body.id}`, { productId }), ['productId']);
      assertInvalid(await t.admin('PATCH', `/deployments/${d.body.id}`, { baseUrl: 'nope' }), ['baseUrl']);
    });
  });

  describe('organizations', () => {
    test('every class is accepted; anything else names the field', async () => {
      for (const cls of ['sme', 'midsize', 'large', 'public', 'university', 'research']) {
        const r = await t.admin('POST', '/organizations', { name: `기관-${cls}`, class: cls });
        assert.equal(r.status, 201);
        assert.equal(r.body.class, cls);
        assert.equal(r.body.status, 'active');
        assert.equal(r.body.businessNumber, null);
        assert.match(r.body.id, /^org_/);
      }
      assertInvalid(await t.admin('POST', '/organizations', { name: '정부', class: 'government' }), [
        'class',
      ]);
      assertInvalid(await t.admin('POST', '/organizations', { name: '정부' }), ['class']);
      assertInvalid(await t.admin('POST', '/organizations', { class: 'sme' }), ['name']);
      assertInvalid(
        await t.admin('POST', '/organizations', { name: 'x', class: 'sme', businessNumber: '12-34' }),
        ['businessNumber'],
      );
    });

    test('POST, GET, GET one, PATCH; status survives other edits; name is unique', async () => {
      const created = await t.admin('POST', '/organizations', {
        name: '한국지능정보사회진흥원',
        class: 'public',
        businessNumber: '123-45-67890',
      });
      assert.equal(created.status, 201);
      assert.equal(created.body.businessNumber, '123-45-67890');
      assert.deepEqual((await t.admin('GET', `/organizations/${created.body.id}`)).body, created.body);
      const list = await t.admin('GET', '/organizations');
      assert.deepEqual(
        list.body.data.find((o: any) => o.id === created.body.id),
        created.body,
      );

      const suspended = await t.admin('PATCH', `/organizations/${created.body.id}`, { status: 'suspended' });
      assert.equal(suspended.body.status, 'suspended');
      const reclassed = await t.admin('PATCH', `/organizations/${created.body.id}`, {
        class: 'research',
        businessNumber: null,
      });
      assert.equal(reclassed.body.status, 'suspended', 'a PATCH without status keeps the suspension');
      assert.equal(reclassed.body.class, 'research');
      assert.equal(reclassed.body.businessNumber, null);
      assert.equal(reclassed.body.name, '한국지능정보사회진흥원');

      const dup = await t.admin('POST', '/organizations', { name: '한국지능정보사회진흥원', class: 'sme' });
      assert.equal(dup.status, 409);
      assert.equal(dup.body.error.fields[0].field, 'name');
      const other = await t.admin('POST', '/organizations', { name: '다른 기관', class: 'sme' });
      const rename = await t.admin('PATCH', `/organizations/${other.body.id}`, {
        name: '한국지능정보사회진흥원',
      });
      assert.equal(rename.status, 409);
      assert.equal(rename.body.error.fields[0].field, 'name');
      assertInvalid(await t.admin('PATCH', `/organizations/${other.body.id}`, { class: 'gov' }), ['class']);
    });
  });

  describe('keys', () => {
    test('POST shows the secret once; lists never; DELETE revokes and the key stops working', async () => {
      const org = await t.admin('POST', '/organizations', { name: '키 테스트 기관', class: 'sme' });
      const orgId = org.body.id;
      const first = await call(t, 'POST', `/organizations/${orgId}/keys`, {
        body: JSON.stringify({ name: 'ci' }),
      });
      assert.equal(first.status, 201);
      const { id, key, prefix } = first.body;
      assert.match(id, /^key_/);
      assert.match(key, /^sk-kai-[\w-]{32}$/);
      assert.match(prefix, /^sk-kai-[\w-]{6}$/);
      assert.ok(key.startsWith(prefix));
      assert.equal(first.body.organizationId, orgId);
      assert.equal(first.body.name, 'ci');
      assert.equal(first.body.allowedModels, null);
      assert.equal(first.body.revokedAt, null);

      const second = await t.admin('POST', `/organizations/${orgId}/keys`, { allowedModels: ['hcx-dash'] });
      assert.equal(second.status, 201);
      assert.equal(second.body.name, 'default');
      assert.deepEqual(second.body.allowedModels, ['hcx-dash']);

      const listed = await call(t, 'GET', `/organizations/${orgId}/keys`);
      assert.equal(listed.status, 200);
      assert.ok(
        !listed.text.includes(key) && !listed.text.includes(second.body.key),
        'no secret in the list',
      );
      assert.deepEqual(
        listed.body.data.map((k: any) => k.id),
        [id, second.body.id],
      );
      for (const k of listed.body.data) assert.equal('key' in k, false);
      const { key: _secret, ...publicPart } = first.body;
      assert.deepEqual(listed.body.data[0], publicPart);

      const rows = await t.hub.db.all<Record<string, unknown>>(
        'SELECT * FROM api_keys WHERE organization_id = ? ORDER BY created_at, id',
        [orgId],
      );
      assert.ok(!JSON.stringify(rows).includes(key), 'only the hash is stored');
      assert.equal(rows[0]?.key_hash, createHash('sha256').update(key).digest('hex'));

      const client = new OpenAI({ apiKey: key, baseURL: `${t.url}/v1`, maxRetries: 0 });
      await client.models.list();

      const revoked = await t.admin('DELETE', `/keys/${id}`);
      assert.equal(revoked.status, 200);
      assert.match(revoked.body.revokedAt, ISO);
      assert.equal('key' in revoked.body, false);
      await assert.rejects(client.models.list(), (e: unknown) => e instanceof OpenAI.AuthenticationError);
      const again = await t.admin('DELETE', `/keys/${id}`);
      assert.equal(again.status, 200);
      assert.equal(again.body.revokedAt, revoked.body.revokedAt, 'revoking twice keeps the first time');
      const afterRevoke = await t.admin('GET', `/organizations/${orgId}/keys`);
      assert.equal(afterRevoke.body.data[0].revokedAt, revoked.body.revokedAt);
      assert.equal(afterRevoke.body.data[1].revokedAt, null);
    });

    test('unknown organisations and keys are 404; bad input names the field', async () => {
      assertNotFound(await t.admin('POST', '/organizations/org_missing/keys', {}));
      assertNotFound(await t.admin('GET', '/organizations/org_missing/keys'));
      assertNotFound(await t.admin('DELETE', '/keys/key_missing'));
      const org = await t.admin('POST', '/organizations', { name: '키 검증 기관', class: 'university' });
      const path = `/organizations/${org.body.id}/keys`;
      assertInvalid(await t.admin('POST', path, { name: '' }), ['name']);
      assertInvalid(await t.admin('POST', path, { allowedModels: [] }), ['allowedModels']);
      assertInvalid(await t.admin('POST', path, { secret: 'mine' }), ['secret']);
      assert.deepEqual((await t.admin('GET', path)).body.data, []);
    });
  });

  describe('errors', () => {
    test('malformed JSON and non-object bodies are 400 on every write', async () => {
      for (const [method, path] of [
        ['POST', '/suppliers'],
        ['PATCH', `/suppliers/${supplierId}`],
        ['POST', '/products'],
        ['POST', '/deployments'],
        ['POST', '/organizations'],
      ] as const) {
        for (const body of ['{"name": ', '{name: 1}', '[1, 2]', '"text"', '42', 'null']) {
          const r = await call(t, method, path, { body });
          assert.equal(r.status, 400, `${method} ${path} ${body}`);
          assert.equal(r.body.error.code, 'invalid_json');
          assert.equal(r.body.error.fields[0].field, '(body)');
        }
      }
    });

    test('an empty body is an empty object: required fields are named', async () => {
      const r = await call(t, 'POST', '/organizations', { body: '' });
      assertInvalid(r, ['name', 'class']);
    });

    test('a body over 1 MiB is 413', async () => {
      const r = await call(t, 'POST', '/suppliers', {
        body: JSON.stringify({ name: 'x'.repeat(1024 * 1024) }),
      });
      assert.equal(r.status, 413);
      assert.equal(r.body.error.code, 'body_too_large');
    });

    test('unknown ids are 404 on every resource', async () => {
      for (const [method, path] of [
        ['GET', '/suppliers/sup_missing'],
        ['PATCH', '/suppliers/sup_missing'],
        ['GET', '/products/prd_missing'],
        ['PATCH', '/products/prd_missing'],
        ['GET', '/deployments/dep_missing'],
        ['PATCH', '/deployments/dep_missing'],
        ['DELETE', '/deployments/dep_missing'],
        ['GET', '/organizations/org_missing'],
        ['PATCH', '/organizations/org_missing'],
        ['GET', '/no-such-thing'],
        ['GET', '/suppliers/a/b'],
        ['GET', '/suppliers/%E0%A4%A'],
      ] as const) {
        const r = await call(t, method, path, method === 'PATCH' ? { body: '{}' } : {});
        assertNotFound(r);
      }
      const r = await t.admin('GET', '/products/prd_missing');
      assert.match(r.body.error.message, /prd_missing/);
    });

    test('a method a path does not take is 405', async () => {
      for (const [method, path] of [
        ['PUT', '/suppliers'],
        ['DELETE', '/suppliers'],
        ['DELETE', `/suppliers/${supplierId}`],
        ['PUT', `/suppliers/${supplierId}`],
        ['DELETE', '/products/prd_x'],
        ['POST', '/usage'],
        ['GET', '/keys/key_x'],
        ['PATCH', '/keys/key_x'],
        ['DELETE', '/organizations/org_x'],
      ] as const) {
        const r = await call(t, method, path, method === 'GET' || method === 'DELETE' ? {} : { body: '{}' });
        assert.equal(r.status, 405, `${method} ${path}`);
        assert.equal(r.body.error.code, 'method_not_allowed');
      }
      assert.equal(
        (await t.admin('GET', `/suppliers/${supplierId}`)).status,
        200,
        'the supplier is still there',
      );
    });
  });
});

/** µ₩ → KRW text, as the API writes it: exact, no trailing zeros. */
function krw(micro: bigint): string {
  const whole = micro / 1_000_000n;
  const fraction = (micro % 1_000_000n).toString().padStart(6, '0').replace(/0+$/, '');
  return fraction ? `${whole}.${fraction}` : `${whole}`;
}

/** A KST calendar day, as the API's `day` groups and date-only filters read it. */
function kstDay(ms: number): string {
  return new Date(ms + 9 * 3600_000).toISOString().slice(0, 10);
}

describe('admin API /admin/v1/usage', () => {
  let fake: FakeOpenAI;
  let t: TestHub;
  const ids: Record<string, string> = {};
  const keys: Record<string, string> = {};
  const PRICES = {
    // Chosen so that every request's cost has a fraction of a won and needs the half-up rounding.
    a: { in: 1_250_500_000n, out: 3_000_250_000n },
    b: { in: 1n, out: 500_000n },
  };
  interface Call {
    key: string;
    org: string;
    product: 'a' | 'b';
    prompt: number;
    completion: number;
    cost: bigint;
    batch: 1 | 2;
  }
  const calls: Call[] = [];
  let t0 = 0;
  let tMid = 0;
  let t1 = 0;

  before(async () => {
    fake = await startFakeOpenAI({ apiKey: 'upstream-secret' });
    t = await startTestHub();
    const must = async (path: string, body: unknown) => {
      const r = await t.admin('POST', path, body);
      assert.equal(r.status, 201, `${path}: ${JSON.stringify(r.body)}`);
      return r.body;
    };
    const supplier = await must('/suppliers', { name: '사용량 공급기업' });
    for (const [name, prices] of [
      ['a', { priceInputPer1M: '1250.5', priceOutputPer1M: '3000.25' }],
      ['b', { priceInputPer1M: '0.000001', priceOutputPer1M: 0.5 }],
    ] as const) {
      const product = await must('/products', productInput(supplier.id, `usage-${name}`, prices));
      ids[name] = product.id;
      await must('/deployments', {
        productId: product.id,
        adapter: 'openai-compatible',
        baseUrl: fake.url,
        apiKey: 'upstream-secret',
        upstreamModel: 'fake-chat',
      });
    }
    for (const org of ['org1', 'org2'])
      ids[org] = (await must('/organizations', { name: org, class: 'sme' })).id;
    for (const [key, org] of [
      ['k1', 'org1'],
      ['k2', 'org1'],
      ['k3', 'org2'],
    ] as const) {
      const k = await must(`/organizations/${ids[org]}/keys`, { name: key });
      ids[key] = k.id;
      keys[key] = k.key;
    }

    // Routing must see both products before the calls (a snapshot rebuilt after each edit).
    const probe = new OpenAI({ apiKey: keys.k1!, baseURL: `${t.url}/v1`, maxRetries: 0 });
    for (let i = 0; ; i++) {
      const models = (await probe.models.list()).data.map((m) => m.id);
      if (models.includes('usage-a') && models.includes('usage-b')) break;
      if (i > 100) throw new Error(`catalog never showed the products: ${models}`);
      await sleep(20);
    }

    const run = async (key: 'k1' | 'k2' | 'k3', product: 'a' | 'b', text: string, batch: 1 | 2) => {
      const client = new OpenAI({ apiKey: keys[key]!, baseURL: `${t.url}/v1`, maxRetries: 0 });
      const r = await client.chat.completions.create({
        model: `usage-${product}`,
        messages: [{ role: 'user', content: text }],
      });
      const prompt = r.usage!.prompt_tokens;
      const completion = r.usage!.completion_tokens;
      const scaled = BigInt(prompt) * PRICES[product].in + BigInt(completion) * PRICES[product].out;
      const cost = (scaled + 500_000n) / 1_000_000n;
      calls.push({ key, org: key === 'k3' ? 'org2' : 'org1', product, prompt, completion, cost, batch });
    };
    t0 = Date.now();
    await run('k1', 'a', '안녕하세요 오늘 날씨 어때요', 1);
    await run('k1', 'a', 'one two three four five six seven', 1);
    await run('k2', 'b', '요약해 주세요', 1);
    await run('k3', 'a', 'x', 1);
    await sleep(5);
    tMid = Date.now();
    await sleep(5);
    await run('k1', 'b', '번역 부탁드립니다 영어로', 2);
    await run('k2', 'a', 'a b c d e f g h i j k l m n o p', 2);
    await run('k3', 'b', '코드 리뷰', 2);
    await run('k3', 'b', '하나 둘', 2);
    t1 = Date.now();
  });
  after(async () => {
    await t?.close();
    await fake?.close();
  });

  function expected(filter: (c: Call) => boolean) {
    const chosen = calls.filter(filter);
    const micro = chosen.reduce((sum, c) => sum + c.cost, 0n);
    return {
      requests: chosen.length,
      promptTokens: chosen.reduce((sum, c) => sum + c.prompt, 0),
      completionTokens: chosen.reduce((sum, c) => sum + c.completion, 0),
      costKrw: krw(micro),
      costMicroKrw: micro.toString(),
    };
  }

  async function usage(query: string) {
    const r = await t.admin('GET', `/usage${query}`);
    assert.equal(r.status, 200, `${query}: ${JSON.stringify(r.body)}`);
    return r.body as { rows: any[]; totals: ReturnType<typeof expected> };
  }

  test('the setup produced costs with fractions of a won', () => {
    assert.equal(calls.length, 8);
    assert.ok(calls.every((c) => c.prompt > 0 && c.completion > 0));
    assert.match(expected(() => true).costKrw, /\.\d+$/);
  });

  test('totals are exact sums over every request', async () => {
    const r = await usage('');
    assert.deepEqual(r.rows, []);
    assert.deepEqual(
      r.totals,
      expected(() => true),
    );
  });

  test('filters by organisation, product and key, alone and together', async () => {
    const q = (params: Record<string, string>) => `?${new URLSearchParams(params)}`;
    assert.deepEqual(
      (await usage(q({ organizationId: ids.org1! }))).totals,
      expected((c) => c.org === 'org1'),
    );
    assert.deepEqual(
      (await usage(q({ productId: ids.a! }))).totals,
      expected((c) => c.product === 'a'),
    );
    assert.deepEqual(
      (await usage(q({ keyId: ids.k2! }))).totals,
      expected((c) => c.key === 'k2'),
    );
    assert.deepEqual(
      (await usage(q({ organizationId: ids.org1!, productId: ids.b! }))).totals,
      expected((c) => c.org === 'org1' && c.product === 'b'),
    );
    assert.deepEqual(
      (await usage(q({ organizationId: ids.org2!, keyId: ids.k1! }))).totals,
      expected(() => false),
    );
    assert.deepEqual((await usage(q({ organizationId: 'org_unknown' }))).totals, {
      requests: 0,
      promptTokens: 0,
      completionTokens: 0,
      costKrw: '0',
      costMicroKrw: '0',
    });
  });

  test('groupBy product, key and organization: one row per group, summing to the totals', async () => {
    const byProduct = await usage('?groupBy=product');
    assert.equal(byProduct.rows.length, 2);
    for (const name of ['a', 'b'] as const) {
      const row = byProduct.rows.find((r) => r.productId === ids[name]);
      assert.deepEqual(row, {
        ...expected((c) => c.product === name),
        productId: ids[name],
        model: `usage-${name}`,
      });
    }
    assert.deepEqual(
      byProduct.totals,
      expected(() => true),
    );

    const byKey = await usage(`?groupBy=key&organizationId=${ids.org1}`);
    assert.deepEqual(byKey.rows.map((r) => r.keyId).sort(), [ids.k1, ids.k2].sort());
    for (const key of ['k1', 'k2'] as const) {
      assert.deepEqual(
        byKey.rows.find((r) => r.keyId === ids[key]),
        { ...expected((c) => c.key === key), keyId: ids[key] },
      );
    }
    assert.deepEqual(
      byKey.totals,
      expected((c) => c.org === 'org1'),
    );

    const byOrg = await usage(`?groupBy=organization&productId=${ids.b}`);
    for (const org of ['org1', 'org2'] as const) {
      assert.deepEqual(
        byOrg.rows.find((r) => r.organizationId === ids[org]),
        { ...expected((c) => c.org === org && c.product === 'b'), organizationId: ids[org] },
      );
    }
  });

  test('groupBy day uses KST days', async () => {
    const byDay = await usage('?groupBy=day');
    const days = [...new Set([kstDay(t0), kstDay(t1)])];
    if (days.length === 1) {
      assert.deepEqual(byDay.rows, [{ ...expected(() => true), day: days[0] }]);
      return;
    }
    // the calls straddled midnight KST: each lands on one of the two days, none is lost
    for (const row of byDay.rows) assert.ok(days.includes(row.day), `unexpected day ${row.day}`);
    const requests = byDay.rows.reduce((sum: number, row: { requests: number }) => sum + row.requests, 0);
    assert.equal(requests, expected(() => true).requests);
  });

  test('from is inclusive, to exclusive; ISO instants and KST dates', async () => {
    const iso = (ms: number) => new Date(ms).toISOString();
    const q = (params: Record<string, string>) => `?${new URLSearchParams(params)}`;
    assert.deepEqual(
      (await usage(q({ to: iso(tMid) }))).totals,
      expected((c) => c.batch === 1),
    );
    assert.deepEqual(
      (await usage(q({ from: iso(tMid) }))).totals,
      expected((c) => c.batch === 2),
    );
    assert.deepEqual(
      (await usage(q({ from: iso(tMid), keyId: ids.k3! }))).totals,
      expected((c) => c.batch === 2 && c.key === 'k3'),
    );
    assert.deepEqual(
      (await usage(q({ from: iso(t0), to: iso(t1 + 1) }))).totals,
      expected(() => true),
    );
    assert.equal((await usage(q({ to: iso(t0) }))).totals.requests, 0);
    assert.equal((await usage(q({ from: iso(t1 + 1000) }))).totals.requests, 0);
    // A date is the start of that day in Seoul.
    assert.deepEqual(
      (await usage(q({ from: kstDay(t0) }))).totals,
      expected(() => true),
    );
    assert.equal((await usage(q({ to: kstDay(t0) }))).totals.requests, 0);
    const withOffset = iso(tMid).replace('Z', '+00:00');
    assert.deepEqual(
      (await usage(q({ to: withOffset }))).totals,
      expected((c) => c.batch === 1),
    );
  });

  test('bad parameters name the field', async () => {
    assertInvalid(await t.admin('GET', '/usage?groupBy=week'), ['groupBy']);
    assertInvalid(await t.admin('GET', '/usage?from=yesterday'), ['from']);
    assertInvalid(await t.admin('GET', '/usage?to=2026-13-45'), ['to']);
    // not a day of February, a bare month (UTC midnight), a time in the server's own zone: refused
    assertInvalid(await t.admin('GET', '/usage?from=2026-02-30'), ['from']);
    assertInvalid(await t.admin('GET', '/usage?from=2026-11'), ['from']);
    assertInvalid(await t.admin('GET', '/usage?to=2026-11-01T09:00:00'), ['to']);
    assertInvalid(await t.admin('GET', '/usage?organizationId='), ['organizationId']);
    assertInvalid(await t.admin('GET', '/usage?org=x'), ['org']);
  });

  test('a revoked key is refused and adds no usage', async () => {
    const prior = (await usage('')).totals;
    assert.equal((await t.admin('DELETE', `/keys/${ids.k3}`)).status, 200);
    const client = new OpenAI({ apiKey: keys.k3!, baseURL: `${t.url}/v1`, maxRetries: 0 });
    await assert.rejects(
      client.chat.completions.create({ model: 'usage-a', messages: [{ role: 'user', content: 'x' }] }),
      (e: unknown) => e instanceof OpenAI.AuthenticationError,
    );
    assert.deepEqual((await usage('')).totals, prior);
  });
});
