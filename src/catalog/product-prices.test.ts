import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ValidationError } from '../errors.ts';
import {
  CLOCK_TOLERANCE_MS,
  effectiveTime,
  inForce,
  nextChange,
  type PriceRow,
  parseEffectiveFrom,
  toPriceView,
} from './product-prices.ts';

const row = (effectiveFrom: number, input: bigint): PriceRow => ({
  productId: 'prd_1',
  effectiveFrom,
  inputMicroPer1M: input,
  outputMicroPer1M: input * 2n,
  setBy: 'operator-token',
  setAt: 0,
});

const fieldOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ValidationError);
    return error.fields.map((f) => f.field);
  }
  assert.fail('expected a ValidationError');
};

test('a KST date is midnight in Seoul; an ISO instant needs its offset', () => {
  assert.equal(parseEffectiveFrom('2026-12-01'), Date.parse('2026-11-30T15:00:00Z'));
  assert.equal(parseEffectiveFrom('2026-12-01T09:00:00+09:00'), Date.parse('2026-12-01T00:00:00Z'));
  assert.equal(parseEffectiveFrom('2026-12-01T00:00:00.123Z'), Date.parse('2026-12-01T00:00:00.123Z'));
  assert.equal(parseEffectiveFrom('2026-12-01T00:00Z'), Date.parse('2026-12-01T00:00:00Z'));
  for (const bad of ['2026-02-30', '2026-13-01', '2026-12-01T00:00:00', 'now', '', 1_800_000_000_000, null])
    assert.deepEqual(
      fieldOf(() => parseEffectiveFrom(bad)),
      ['pricesEffectiveFrom'],
      String(bad),
    );
});

test('a change takes effect no earlier than now; further back than the tolerance is refused', () => {
  const now = 1_000_000;
  assert.equal(effectiveTime(undefined, now), now);
  assert.equal(effectiveTime(now + 5, now), now + 5);
  assert.equal(effectiveTime(now - CLOCK_TOLERANCE_MS, now), now, 'within the tolerance: now');
  assert.deepEqual(
    fieldOf(() => effectiveTime(now - CLOCK_TOLERANCE_MS - 1, now)),
    ['pricesEffectiveFrom'],
  );
});

test('the row in force is the last one at or before the time; the next is the first after it', () => {
  const rows = [row(100, 1n), row(200, 2n), row(300, 3n)];
  assert.equal(inForce(rows, 99), undefined);
  assert.equal(inForce(rows, 100)?.inputMicroPer1M, 1n);
  assert.equal(inForce(rows, 199)?.inputMicroPer1M, 1n);
  assert.equal(inForce(rows, 200)?.inputMicroPer1M, 2n, 'in force from its instant, inclusive');
  assert.equal(inForce(rows, 10_000)?.inputMicroPer1M, 3n);
  assert.equal(nextChange(rows, 99)?.effectiveFrom, 100);
  assert.equal(nextChange(rows, 200)?.effectiveFrom, 300);
  assert.equal(nextChange(rows, 300), undefined);
  assert.equal(inForce([], 0), undefined);
});

test('a schedule row reads back as exact KRW text and ISO times', () => {
  assert.deepEqual(toPriceView({ ...row(Date.parse('2026-11-30T15:00:00Z'), 1_250_500_000n), setAt: 0 }), {
    effectiveFrom: '2026-11-30T15:00:00.000Z',
    priceInputPer1M: '1250.5',
    priceOutputPer1M: '2501',
    setBy: 'operator-token',
    setAt: '1970-01-01T00:00:00.000Z',
  });
});
