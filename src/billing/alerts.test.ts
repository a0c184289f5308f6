import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crossedThresholds } from './alerts.ts';

const m = (amount: bigint, before: bigint, after: bigint) => ({
  voucherId: 'v',
  organizationId: 'o',
  amount,
  balanceBefore: before,
  balanceAfter: after,
});

test('a threshold is crossed by the charge that carries the voucher from below it to at or past it', () => {
  assert.deepEqual(crossedThresholds(m(100n, 100n, 21n)), []); // 79 % used
  assert.deepEqual(crossedThresholds(m(100n, 21n, 20n)), [80]); // exactly 80 %
  assert.deepEqual(crossedThresholds(m(100n, 20n, 5n)), []); // already past 80, not yet 100
  assert.deepEqual(crossedThresholds(m(100n, 5n, 0n)), [100]);
  assert.deepEqual(crossedThresholds(m(100n, 50n, 0n)), [80, 100]); // one charge, both lines
  assert.deepEqual(crossedThresholds(m(3n, 3n, 1n)), []); // 66.7 %: integers, no rounding up
  assert.deepEqual(crossedThresholds(m(3n, 1n, 0n)), [80, 100]);
  assert.deepEqual(crossedThresholds(m(0n, 0n, 0n)), []);
});
