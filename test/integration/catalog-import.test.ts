import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { startTestHub, type TestHub } from '../helpers/hub.ts';

/**
 * The catalogue's first start and its files: a new database starts with the shipped catalogue (or
 * KAIHUB_CATALOG_SEED), listed but not callable until deployed; `POST /catalog/import` is idempotent
 * and keeps what the operator changed; `GET /catalog/export` round-trips.
 */

const FIXTURE = fileURLToPath(new URL('../fixtures/catalog-small.json', import.meta.url));
const fixture = () => JSON.parse(readFileSync(FIXTURE, 'utf8')) as Record<string, any>;

async function must(t: TestHub, method: string, path: string, body?: unknown) {
  const r = await t.admin(method, path, body);
  assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

async function modelsOf(t: TestHub): Promise<string[]> {
  const org = await must(t, 'POST', '/organizations', { name: `기관 ${Math.random()}`, class: 'sme' });
  const key = await must(t, 'POST', `/organizations/${org.id}/keys`, {});
  const client = new OpenAI({ apiKey: key.key, baseURL: `${t.url}/v1`, maxRetries: 0 });
  return (await client.models.list()).data.map((m) => m.id);
}

const byModel = async (t: TestHub) =>
  new Map(((await must(t, 'GET', '/products')).data as any[]).map((p) => [p.model, p]));

describe('catalogue seed, import and export', () => {
  test('the shipped catalogue: a new database starts with it, listed but not callable', async () => {
    const t = await startTestHub({ KAIHUB_CATALOG_SEED: '' });
    try {
      const products = await byModel(t);
      assert.ok(products.size >= 15, `${products.size} products`);
      const hcx = products.get('hcx-005');
      assert.ok(hcx, 'HyperCLOVA X is there');
      assert.equal(hcx.status, 'active');
      assert.match(hcx.priceReference.source, /^https:\/\//);
      assert.match(hcx.priceReference.retrieved, /^\d{4}-\d{2}-\d{2}$/);
      assert.equal(hcx.suggestedDeployment.adapter, 'clova-studio');
      assert.deepEqual((await must(t, 'GET', '/deployments')).data, [], 'nothing deployed');
      assert.deepEqual(await modelsOf(t), [], 'nothing callable before the operator adds a deployment');
      const seeded = await must(t, 'GET', '/audit?action=seed&entityType=product&limit=1000');
      assert.equal(seeded.data.length, products.size);
      assert.ok(seeded.data.every((e: any) => e.actorId === 'system' && e.source === 'system'));
    } finally {
      await t.close();
    }
  });

  describe('KAIHUB_CATALOG_SEED and import', () => {
    let t: TestHub;
    before(async () => {
      t = await startTestHub({ KAIHUB_CATALOG_SEED: FIXTURE });
    });
    after(async () => {
      await t?.close();
    });

    test('seeded once: a deployment makes a product callable; a restart seeds nothing again', async () => {
      const products = await byModel(t);
      assert.deepEqual([...products.keys()].sort(), ['fixture-gpt', 'fixture-hcx', 'fixture-seed']);
      const hcx = products.get('fixture-hcx');
      assert.equal(hcx.priceInputPer1M, '1250');
      assert.deepEqual(hcx.purposes, ['chat', 'summarization']);
      assert.deepEqual(hcx.priceReference, fixture().suppliers[0].products[0].price);
      assert.equal(products.get('fixture-seed').parameters, 14_740_000_000);
      const suppliers = (await must(t, 'GET', '/suppliers')).data as any[];
      assert.deepEqual(
        suppliers.map((s) => [s.name, s.nameEn, s.website]),
        [
          ['테스트 네이버', 'Test NAVER', 'https://naver.example'],
          ['테스트 글로벌', 'Test Global', null],
        ],
      );

      await must(t, 'POST', '/deployments', {
        productId: products.get('fixture-seed').id,
        adapter: 'openai-compatible',
        baseUrl: 'http://127.0.0.1:9/v1',
      });
      assert.deepEqual(await modelsOf(t), ['fixture-seed']);

      await must(t, 'PATCH', `/suppliers/${suppliers[1].id}`, { name: '테스트 글로벌 (개명)' });
      const restarted = await startTestHub({ KAIHUB_CATALOG_SEED: FIXTURE }, { replicaOf: t });
      try {
        assert.equal((await must(restarted, 'GET', '/suppliers')).data.length, 2, 'not seeded twice');
      } finally {
        await restarted.close();
        await must(t, 'PATCH', `/suppliers/${suppliers[1].id}`, { name: '테스트 글로벌' });
      }
    });

    test('import: idempotent; the file updates what it set, keeps what the operator changed, unless overwrite', async () => {
      const same = await must(t, 'POST', '/catalog/import', fixture());
      assert.deepEqual(same.products.created, []);
      assert.deepEqual(same.products.updated, []);
      assert.equal(same.products.unchanged, 3);
      assert.deepEqual(same.products.kept, []);
      assert.equal(same.suppliers.unchanged, 2);

      const products = await byModel(t);
      // The operator sets their own price on fixture-gpt.
      await must(t, 'PATCH', `/products/${products.get('fixture-gpt').id}`, { priceInputPer1M: '1800' });

      const next = fixture();
      next.generatedAt = '2026-12-15';
      next.suppliers[0].products[0].priceInputPer1M = '1300'; // list price went up: nobody touched it here
      next.suppliers[1].products[0].priceInputPer1M = '1900'; // the operator's 1800 must stay
      next.suppliers[1].products[0].description = 'updated reference model';
      next.suppliers[1].products.push({
        ...next.suppliers[1].products[0],
        model: 'fixture-new',
        displayName: 'New',
      });

      const dry = await t.admin('POST', '/catalog/import?dryRun=true', next);
      assert.equal(dry.status, 200);
      assert.equal(dry.body.dryRun, true);
      assert.deepEqual(dry.body.products.created, ['fixture-new']);
      assert.ok(!(await byModel(t)).has('fixture-new'), 'a dry run changes nothing');

      const report = await must(t, 'POST', '/catalog/import', next);
      assert.deepEqual(report.products.created, ['fixture-new']);
      assert.deepEqual(report.products.updated, [
        { model: 'fixture-hcx', fields: ['priceInputPer1M'] },
        { model: 'fixture-gpt', fields: ['description'] },
      ]);
      assert.deepEqual(report.products.kept, [
        { model: 'fixture-gpt', field: 'priceInputPer1M', current: '1800', file: '1900' },
      ]);
      const after = await byModel(t);
      assert.equal(after.get('fixture-hcx').priceInputPer1M, '1300');
      assert.equal(after.get('fixture-gpt').priceInputPer1M, '1800', 'the operator’s price stays');
      assert.equal(after.get('fixture-gpt').description, 'updated reference model');

      const again = await must(t, 'POST', '/catalog/import', next);
      assert.deepEqual(again.products.updated, []);
      assert.deepEqual(again.products.kept, report.products.kept, 'reported again, never silently dropped');

      const overwritten = await must(t, 'POST', '/catalog/import?overwrite=true', next);
      assert.deepEqual(overwritten.products.updated, [{ model: 'fixture-gpt', fields: ['priceInputPer1M'] }]);
      assert.equal((await byModel(t)).get('fixture-gpt').priceInputPer1M, '1900');

      const audit = await must(t, 'GET', `/audit?action=import&entityId=${after.get('fixture-gpt').id}`);
      const prices = audit.data.map((e: any) => [e.before?.priceInputPer1M, e.after.priceInputPer1M]);
      assert.deepEqual(prices, [
        ['1800', '1900'],
        ['1800', '1800'],
      ]);
      const runs = await must(t, 'GET', '/audit?action=import&entityType=catalog');
      assert.equal(runs.data.length, 4, 'every run, dry runs not');
    });

    test('a product the file lists under another supplier is not moved; bad files name the field', async () => {
      const moved = fixture();
      moved.suppliers[1].products.push(moved.suppliers[0].products.pop());
      const report = await must(t, 'POST', '/catalog/import', moved);
      assert.deepEqual(report.products.otherSupplier, [{ model: 'fixture-seed', file: '테스트 글로벌' }]);

      const bad = fixture();
      bad.suppliers[0].products[0].modality = 'smell';
      const r = await t.admin('POST', '/catalog/import', bad);
      assert.equal(r.status, 400);
      assert.deepEqual(
        r.body.error.fields.map((f: any) => f.field),
        ['suppliers.0.products.0.modality'],
      );
      const flag = await t.admin('POST', '/catalog/import?dryRun=yes', fixture());
      assert.equal(flag.status, 400);
      assert.equal(flag.body.error.fields[0].field, 'dryRun');
    });

    test('export round-trips into a new hub', async () => {
      const exported = await must(t, 'GET', '/catalog/export');
      assert.equal(exported.version, 1);
      assert.deepEqual(exported.exchangeRates, fixture().exchangeRates);
      const fresh = await startTestHub();
      try {
        const report = await must(fresh, 'POST', '/catalog/import', exported);
        assert.equal(report.products.created.length, 4);
        const again = await must(fresh, 'GET', '/catalog/export');
        assert.deepEqual(again.suppliers, exported.suppliers);
      } finally {
        await fresh.close();
      }
    });
  });

  test('a catalogue is not seeded into a database that already has one', async () => {
    const t = await startTestHub();
    try {
      await must(t, 'POST', '/suppliers', { name: '운영자가 만든 공급기업' });
      const later = await startTestHub({ KAIHUB_CATALOG_SEED: FIXTURE }, { replicaOf: t });
      try {
        assert.deepEqual(
          ((await must(later, 'GET', '/products')).data as any[]).map((p) => p.model),
          [],
          'an upgraded hub keeps its catalogue as it is',
        );
      } finally {
        await later.close();
      }
    } finally {
      await t.close();
    }
  });
});
