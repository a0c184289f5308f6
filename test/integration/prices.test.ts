import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import OpenAI from 'openai';
import { CATALOG_REVISION_SETTING } from '../../src/catalog/catalog-service.ts';
import { CatalogSnapshot } from '../../src/catalog/catalog-snapshot.ts';
import { CredentialBox } from '../../src/catalog/credentials.ts';
import { openDatabase } from '../../src/storage/database.ts';
import { migrate, migrations } from '../../src/storage/migrator.ts';
import { type FakeOpenAI, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import { createTestDatabase } from '../helpers/databases.ts';
import { type Catalog, seedCatalog, startTestHub, type TestHub } from '../helpers/hub.ts';
import { usageEvent } from '../helpers/v1.ts';

/**
 * Prices in force (docs/billing.md): a change scheduled ahead takes effect at its time on every
 * replica without a catalog write, never re-prices a call admitted before it, and the schedule is
 * append-only history. On the engine KAIHUB_TEST_DATABASE names.
 */

let fake: FakeOpenAI;
let a: TestHub;
let b: TestHub;
let catalog: Catalog;

before(async () => {
  fake = await startFakeOpenAI({ apiKey: 'upstream-secret', reply: 'one two three four' });
  a = await startTestHub();
  b = await startTestHub({}, { replicaOf: a });
  catalog = await seedCatalog(a, fake.url);
});
after(async () => {
  await b?.close();
  await a?.close();
  await fake?.close();
});

const revision = async () =>
  (
    await a.hub.db.get<{ value: string }>('SELECT value FROM settings WHERE key = ?', [
      CATALOG_REVISION_SETTING,
    ])
  )?.value;

/** One chat call; its usage record. */
async function call(hub: TestHub, model = 'hcx-test'): Promise<any> {
  const client = new OpenAI({ apiKey: catalog.key, baseURL: `${hub.url}/v1`, maxRetries: 0 });
  const { response } = await client.chat.completions
    .create({ model, messages: [{ role: 'user', content: '가격' }] })
    .withResponse();
  return usageEvent(hub, response.headers.get('x-request-id')!, 5000);
}

/** µ₩ of a record at the given KRW-per-1M prices: prompt × in + completion × out (whole µ₩ here). */
const cost = (event: any, input: bigint, output: bigint) =>
  (BigInt(event.promptTokens) * input + BigInt(event.completionTokens) * output).toString();

test('a change scheduled ahead is not used before its time, is used after it on both replicas, and spares a call admitted before it', async () => {
  const effectiveAt = Date.now() + 3000;
  const effectiveFrom = new Date(effectiveAt).toISOString();
  const patched = await a.admin('PATCH', `/products/${catalog.productId}`, {
    priceInputPer1M: '2000',
    priceOutputPer1M: '5000',
    pricesEffectiveFrom: effectiveFrom,
  });
  assert.equal(patched.status, 200, JSON.stringify(patched.body));
  assert.equal(patched.body.priceInputPer1M, '1000', 'still the price in force');
  assert.deepEqual(patched.body.nextPriceChange, {
    effectiveFrom,
    priceInputPer1M: '2000',
    priceOutputPer1M: '5000',
  });
  const revisionAfterPatch = await revision();
  // Replica b learns the schedule from the revision, as it learns any catalog change (≤ 1 s).
  await sleep(1300);

  const beforeA = await call(a);
  const beforeB = await call(b);
  for (const event of [beforeA, beforeB]) {
    assert.ok(Date.parse(event.createdAt) < effectiveAt);
    assert.equal(event.priceInputPer1M, '1000');
    assert.equal(event.priceOutputPer1M, '3000');
    assert.equal(event.costMicroKrw, cost(event, 1000n, 3000n));
  }

  // Admitted before the change, answered after it: the upstream waits until well past the switch.
  const seen = fake.requests.length;
  fake.queueBehaviors(`slow:${effectiveAt - Date.now() + 800}`);
  const client = new OpenAI({ apiKey: catalog.key, baseURL: `${a.url}/v1`, maxRetries: 0 });
  const straddling = client.chat.completions
    .create({ model: 'hcx-test', messages: [{ role: 'user', content: '느린 호출' }] })
    .withResponse();
  await fake.waitForRequests(seen + 1);

  await sleep(Math.max(0, effectiveAt - Date.now()));
  const afterA = await call(a);
  const afterB = await call(b);
  for (const event of [afterA, afterB]) {
    assert.ok(Date.parse(event.createdAt) >= effectiveAt);
    assert.equal(event.priceInputPer1M, '2000');
    assert.equal(event.priceOutputPer1M, '5000');
    assert.equal(event.costMicroKrw, cost(event, 2000n, 5000n));
  }

  const { response } = await straddling;
  const old = await usageEvent(a, response.headers.get('x-request-id')!, 5000);
  assert.ok(Date.parse(old.createdAt) < effectiveAt, 'admitted before the change');
  assert.equal(old.priceInputPer1M, '1000');
  assert.equal(old.priceOutputPer1M, '3000');
  assert.equal(old.costMicroKrw, cost(old, 1000n, 3000n));

  assert.equal(await revision(), revisionAfterPatch, 'no catalog write made the switch');
  for (const hub of [a, b]) {
    const product = (await hub.admin('GET', `/products/${catalog.productId}`)).body;
    assert.equal(product.priceInputPer1M, '2000');
    assert.equal(product.priceOutputPer1M, '5000');
    assert.equal(product.nextPriceChange, null);
  }
  const history = (await a.admin('GET', `/products/${catalog.productId}/prices`)).body.data;
  assert.deepEqual(
    history.map((p: any) => [p.priceInputPer1M, p.priceOutputPer1M, p.setBy]),
    [
      ['1000', '3000', 'operator-token'],
      ['2000', '5000', 'operator-token'],
    ],
  );
  assert.equal(history[1].effectiveFrom, effectiveFrom);
});

/** A chat product of the seeded supplier at 10 / 20 KRW per 1M tokens; its id. */
async function createProduct(model: string, displayName: string): Promise<string> {
  const r = await a.admin('POST', '/products', {
    supplierId: catalog.supplierId,
    model,
    displayName,
    purposes: ['chat'],
    modality: 'text',
    contextWindow: 4096,
    priceInputPer1M: '10',
    priceOutputPer1M: '20',
    residency: 'domestic',
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.id;
}

test('a change that has come due is in force for the next lookup, before its timer has had a turn', async () => {
  const id = await createProduct('due-test', 'Due');
  const effectiveAt = Date.now() + 400;
  const patched = await a.admin('PATCH', `/products/${id}`, {
    priceInputPer1M: '30',
    pricesEffectiveFrom: new Date(effectiveAt).toISOString(),
  });
  assert.equal(patched.status, 200, JSON.stringify(patched.body));
  // A snapshot of its own over the hub's database: its timer is armed for the change.
  const snapshot = new CatalogSnapshot(a.hub.db, new CredentialBox(randomBytes(32)), {
    featuresOf: () => 0,
    defaultMaxConcurrent: 1,
  });
  await snapshot.reload();
  try {
    assert.equal(snapshot.byModel('due-test')?.prices.inputMicroPer1M, 10_000_000n);
    // A busy event loop: the time passes while no timer can fire. A call admitted now (its
    // start time at or after the change) must not be priced at the old row.
    while (Date.now() <= effectiveAt) {}
    assert.equal(snapshot.byModel('due-test')?.prices.inputMicroPer1M, 30_000_000n);
    assert.equal(
      [...snapshot.all()].find((p) => p.model === 'due-test')?.prices.inputMicroPer1M,
      30_000_000n,
    );
  } finally {
    snapshot.stop();
  }
});

describe('scheduling prices over /admin/v1', () => {
  let productId: string;
  before(async () => {
    productId = await createProduct('schedule-test', 'Schedule');
  });

  const patch = (body: unknown) => a.admin('PATCH', `/products/${productId}`, body);
  const fieldsOf = (r: { body: any }) => r.body.error.fields.map((f: { field: string }) => f.field);

  test('a time in the past, a bad time, or a time without a price is a 400 naming pricesEffectiveFrom', async () => {
    for (const when of [
      new Date(Date.now() - 60_000).toISOString(),
      '2020-01-01',
      '2026-02-30',
      'tomorrow',
      '2030-01-01T00:00:00',
    ]) {
      const r = await patch({ priceInputPer1M: '11', pricesEffectiveFrom: when });
      assert.equal(r.status, 400, `${when}: ${JSON.stringify(r.body)}`);
      assert.deepEqual(fieldsOf(r), ['pricesEffectiveFrom'], when);
    }
    const alone = await patch({ pricesEffectiveFrom: '2030-01-01' });
    assert.equal(alone.status, 400);
    assert.deepEqual(fieldsOf(alone), ['pricesEffectiveFrom']);
    const past = await patch({ priceInputPer1M: '11', pricesEffectiveFrom: '2020-01-01' });
    assert.match(past.body.error.fields[0].message, /re-priced/);
    // Nothing was written by any of them.
    assert.equal((await a.admin('GET', `/products/${productId}/prices`)).body.data.length, 1);
  });

  test('a KST date means midnight in Seoul; the price left out is the one in force then; a second change for the same time is a 409', async () => {
    const first = await patch({ priceOutputPer1M: '25', pricesEffectiveFrom: '2031-03-01' });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.deepEqual(first.body.nextPriceChange, {
      effectiveFrom: '2031-02-28T15:00:00.000Z',
      priceInputPer1M: '10',
      priceOutputPer1M: '25',
    });
    const later = await patch({ priceInputPer1M: '12', pricesEffectiveFrom: '2032-01-01T00:00:00+09:00' });
    assert.equal(later.status, 200, JSON.stringify(later.body));
    assert.equal(later.body.nextPriceChange.effectiveFrom, '2031-02-28T15:00:00.000Z', 'the soonest is next');

    const again = await patch({ priceInputPer1M: '99', pricesEffectiveFrom: '2031-03-01T00:00:00+09:00' });
    assert.equal(again.status, 409, JSON.stringify(again.body));
    assert.equal(again.body.error.code, 'conflict');
    assert.deepEqual(fieldsOf(again), ['pricesEffectiveFrom']);

    // A change now leaves the scheduled ones alone.
    const now = await patch({ priceInputPer1M: '11' });
    assert.equal(now.status, 200);
    assert.equal(now.body.priceInputPer1M, '11');
    assert.equal(now.body.nextPriceChange.effectiveFrom, '2031-02-28T15:00:00.000Z');

    const history = (await a.admin('GET', `/products/${productId}/prices`)).body.data;
    assert.deepEqual(
      history.map((p: any) => [p.priceInputPer1M, p.priceOutputPer1M]),
      [
        ['10', '20'],
        ['11', '20'],
        ['10', '25'],
        ['12', '25'],
      ],
    );
    assert.equal(history[3].effectiveFrom, '2031-12-31T15:00:00.000Z');
    for (const p of history) assert.equal(p.setBy, 'operator-token');

    const audit = (await a.admin('GET', `/audit?entityType=product&entityId=${productId}&action=update`)).body
      .data;
    assert.equal(audit.length, 3, 'every price change is audited');
    assert.equal(audit.at(-1).request.pricesEffectiveFrom, '2031-03-01');
  });

  test('the schedule of an unknown product is a 404', async () => {
    const r = await a.admin('GET', '/products/prd_nope/prices');
    assert.equal(r.status, 404);
  });

  test('the price history is append-only in the database itself', async () => {
    await assert.rejects(
      a.hub.db.run('UPDATE product_prices SET price_input_micro_per_1m = 0'),
      /append-only/,
    );
    await assert.rejects(a.hub.db.run('DELETE FROM product_prices'), /append-only/);
  });
});

test('migration 016 gives every existing product its price, in force from its creation', async () => {
  const database = await createTestDatabase();
  const db = await openDatabase(database.location);
  try {
    await migrate(
      db,
      migrations.filter((m) => m.id < '016'),
    );
    const created = Date.now() - 86_400_000;
    await db.run(
      `INSERT INTO suppliers (id, name, status, created_at, updated_at) VALUES ('sup_old', '기존', 'active', ?, ?)`,
      [created, created],
    );
    await db.run(
      `INSERT INTO products (id, supplier_id, model, display_name, purposes, modality, context_window,
         price_input_micro_per_1m, price_output_micro_per_1m, residency, status, created_at, updated_at)
       VALUES ('prd_old', 'sup_old', 'old-model', 'Old', '["chat"]', 'text', 4096, 1500000, 2500000, 'domestic', 'active', ?, ?)`,
      [created, created + 5],
    );
    assert.deepEqual(await migrate(db), [
      '016-product-prices',
      ...migrations.filter((m) => m.id > '016-product-prices').map((m) => m.id),
    ]);
    const rows = await db.all<Record<string, unknown>>(
      `SELECT product_id, effective_from, CAST(price_input_micro_per_1m AS TEXT) AS pin,
              CAST(price_output_micro_per_1m AS TEXT) AS pout, set_by, set_at FROM product_prices`,
    );
    assert.deepEqual(
      rows.map((r) => [r.product_id, Number(r.effective_from), r.pin, r.pout, r.set_by, Number(r.set_at)]),
      [['prd_old', created, '1500000', '2500000', 'migration:016', created + 5]],
    );
  } finally {
    await db.close();
    await database.drop();
  }
});
