import assert from 'node:assert/strict';
import { test } from 'node:test';
import { costOf, formatKrw, PriceFormatError, parseKrwPrice } from './money.ts';

test('prices parse exactly from strings and numbers', () => {
  assert.equal(parseKrwPrice('1250.5'), 1_250_500_000n);
  assert.equal(parseKrwPrice(1250.5), 1_250_500_000n);
  assert.equal(parseKrwPrice('0.000001'), 1n);
  assert.equal(parseKrwPrice(0), 0n);
  assert.equal(parseKrwPrice(' 3000 '), 3_000_000_000n);
  // 0.1 + 0.2 style float noise never enters: the decimal text is what counts
  assert.equal(parseKrwPrice('0.3'), 300_000n);
});

test('bad prices are refused with a reason', () => {
  for (const bad of ['-1', '1.0000001', 'abc', '', '1e3', 1e-7, Number.NaN, null, {}, '1000000000']) {
    assert.throws(() => parseKrwPrice(bad), PriceFormatError, String(bad));
  }
});

test('cost is integer micro-won, rounded half up once', () => {
  const prices = { inputMicroPer1M: parseKrwPrice('1000'), outputMicroPer1M: parseKrwPrice('3000') };
  // 10 prompt tokens at 1000 KRW/1M = 0.01 KRW = 10,000 µ₩; 20 completion at 3000 = 60,000 µ₩
  assert.equal(costOf(10, 20, prices), 70_000n);
  const odd = { inputMicroPer1M: 1n, outputMicroPer1M: 0n };
  assert.equal(costOf(499_999, 0, odd), 0n);
  assert.equal(costOf(500_000, 0, odd), 1n);
  assert.equal(costOf(1_500_000, 0, odd), 2n);
  // large volumes stay exact beyond 2^53
  const big = costOf(2 ** 40, 2 ** 40, { inputMicroPer1M: 10n ** 12n, outputMicroPer1M: 10n ** 12n });
  assert.equal(big, 2n * 2n ** 40n * 10n ** 6n);
});

test('formatKrw prints exact decimals', () => {
  assert.equal(formatKrw(70_000n), '0.07');
  assert.equal(formatKrw(1_250_500_000n), '1250.5');
  assert.equal(formatKrw(0n), '0');
  assert.equal(formatKrw(-1n), '-0.000001');
});
