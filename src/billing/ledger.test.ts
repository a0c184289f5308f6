import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  accountId,
  balancedEntries,
  describeAccount,
  LedgerError,
  splitCharge,
  voucherShare,
} from './ledger.ts';

test('the voucher pays C·(1−r) rounded down to the µ₩; the organisation pays the rest, and the two add up to C', () => {
  assert.equal(voucherShare(10n, 2000), 8n); // 20 % co-payment: exact
  assert.equal(voucherShare(1n, 2000), 0n); // 0.8 µ₩ → 0: the organisation pays the whole µ₩
  assert.equal(voucherShare(7n, 3333), 4n); // 7 × 0.6667 = 4.6669 → 4
  assert.equal(voucherShare(999_999n, 5000), 499_999n); // 499,999.5 → 499,999
  assert.equal(voucherShare(123n, 0), 123n); // no co-payment
  assert.equal(voucherShare(123n, 10_000), 0n); // all co-payment
  for (const cost of [0n, 1n, 2n, 3n, 99n, 1_000_001n, 9_007_199_254_740_993n]) {
    for (const bp of [0, 1, 2000, 3333, 5000, 9999, 10_000]) {
      const share = voucherShare(cost, bp);
      assert.ok(share >= 0n && share <= cost);
      // never more than the programme's ratio: share ≤ C·(1−r) < share + 1
      assert.ok(share * 10_000n <= cost * BigInt(10_000 - bp));
      assert.ok((share + 1n) * 10_000n > cost * BigInt(10_000 - bp));
    }
  }
});

test('a voucher short of its share pays what it has; the wallet pays everything else', () => {
  assert.deepEqual(splitCharge(1000n, 2000, 5000n), { voucher: 800n, wallet: 200n });
  assert.deepEqual(splitCharge(1000n, 2000, 300n), { voucher: 300n, wallet: 700n });
  assert.deepEqual(splitCharge(1000n, 2000, 0n), { voucher: 0n, wallet: 1000n });
  assert.deepEqual(splitCharge(1000n, 2000, -5n), { voucher: 0n, wallet: 1000n });
});

test('a transaction must sum to zero; entries on one account are merged', () => {
  assert.throws(
    () =>
      balancedEntries([
        { accountId: accountId.wallet('o'), amount: -5n },
        { accountId: accountId.payable('s'), amount: 4n },
      ]),
    LedgerError,
  );
  assert.deepEqual(
    balancedEntries([
      { accountId: 'wallet:o', amount: -5n },
      { accountId: 'wallet:o', amount: -1n },
      { accountId: 'payable:s', amount: 6n },
    ]),
    [
      { accountId: 'wallet:o', amount: -6n },
      { accountId: 'payable:s', amount: 6n },
    ],
  );
});

test('account ids say their kind, owner and floor', () => {
  assert.deepEqual(describeAccount('voucher:vch_1'), {
    kind: 'voucher',
    ownerId: 'vch_1',
    neverNegative: true,
  });
  assert.deepEqual(describeAccount('wallet:org_1'), {
    kind: 'wallet',
    ownerId: 'org_1',
    neverNegative: false,
  });
  assert.deepEqual(describeAccount(accountId.funding), {
    kind: 'external',
    ownerId: null,
    neverNegative: false,
  });
  assert.throws(() => describeAccount('nonsense'));
});
