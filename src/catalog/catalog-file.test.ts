import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseKrwPrice } from '../billing/money.ts';
import { ValidationError } from '../errors.ts';
import { parseCatalogFile } from './catalog-file.ts';
import { readCatalogFile, SHIPPED_CATALOG_PATH } from './catalog-seed.ts';

/** `"1.25"` × `"1529.4619"` in micro-won, exact, rounded half up to six decimals as the data says. */
function krwMicro(amount: string, krwPerUnit: string): bigint {
  const scaled = (text: string) => {
    const [whole, fraction = ''] = text.split('.');
    return { units: BigInt(`${whole}${fraction}`), scale: fraction.length };
  };
  const a = scaled(amount);
  const b = scaled(krwPerUnit);
  const scale = a.scale + b.scale;
  const product = a.units * b.units;
  if (scale <= 6) return product * 10n ** BigInt(6 - scale);
  const divisor = 10n ** BigInt(scale - 6);
  return (product + divisor / 2n) / divisor;
}

test('the shipped catalogue validates, and every product says where its price comes from and when', () => {
  const file = readCatalogFile(SHIPPED_CATALOG_PATH);
  const names = file.suppliers.map((s) => s.name);
  for (const supplier of ['네이버클라우드', '업스테이지', 'LG AI연구원', 'KT', 'SK텔레콤', '카카오'])
    assert.ok(names.includes(supplier), `${supplier} is in the catalogue`);
  const products = file.suppliers.flatMap((s) => s.products);
  assert.ok(products.length >= 15, `${products.length} products`);
  for (const p of products) {
    assert.ok(p.price, `${p.model}: a price reference`);
    assert.match(p.price.retrieved, /^\d{4}-\d{2}-\d{2}$/, `${p.model}: the date it was read`);
    assert.ok(p.price.source.length > 0, `${p.model}: its source`);
    // The KRW prices follow from the published ones: as they are in KRW, at the file's rate otherwise.
    const rate =
      p.price.currency === 'KRW'
        ? '1'
        : file.exchangeRates.find((r) => r.currency === p.price!.currency)?.krwPerUnit;
    assert.ok(rate, `${p.model}: an exchange rate for ${p.price.currency}`);
    if (p.price.inputPer1M !== null)
      assert.equal(p.priceInputPer1M, krwMicro(p.price.inputPer1M, rate), `${p.model}: input price`);
    if (p.price.outputPer1M !== null)
      assert.equal(p.priceOutputPer1M, krwMicro(p.price.outputPer1M, rate), `${p.model}: output price`);
  }
  for (const rate of file.exchangeRates) assert.ok(rate.source.length > 0 && rate.date, rate.currency);
});

test('a catalogue file: every problem names its place', () => {
  const fixture = JSON.parse(
    readFileSync(new URL('../../test/fixtures/catalog-small.json', import.meta.url), 'utf8'),
    // biome-ignore lint/suspicious/noExplicitAny: a JSON fixture, broken in place field by field
  ) as Record<string, any>;
  assert.equal(parseCatalogFile(fixture).suppliers.length, 2);
  assert.equal(parseCatalogFile(fixture).suppliers[0]!.products[0]!.priceInputPer1M, parseKrwPrice('1250'));

  const broken = structuredClone(fixture);
  broken.suppliers[0].products[0].purposes = ['chat', 'poetry'];
  broken.suppliers[0].products[1].priceInputPer1M = '-1';
  broken.suppliers[1].products[0].price.retrieved = 'yesterday';
  broken.suppliers[1].products[0].colour = 'red';
  assert.throws(
    () => parseCatalogFile(broken),
    (e: unknown) => {
      assert.ok(e instanceof ValidationError);
      assert.deepEqual(e.fields.map((f) => f.field).sort(), [
        'suppliers.0.products.0.purposes.1',
        'suppliers.0.products.1.priceInputPer1M',
        'suppliers.1.products.0.colour',
        'suppliers.1.products.0.price.retrieved',
      ]);
      return true;
    },
  );

  const twice = structuredClone(fixture);
  twice.suppliers[1].products.push(structuredClone(fixture.suppliers[0].products[0]));
  twice.suppliers[1].name = fixture.suppliers[0].name;
  assert.throws(
    () => parseCatalogFile(twice),
    (e: unknown) => {
      assert.ok(e instanceof ValidationError);
      assert.deepEqual(
        e.fields.map((f) => f.field),
        ['suppliers.1.name', 'suppliers.1.products.1.model'],
      );
      return true;
    },
  );
  assert.throws(() => parseCatalogFile({ ...fixture, version: 2 }), /version/);
});
