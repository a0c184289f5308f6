import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rowBatches } from './row-batches.ts';

test('batches keep every row once, in order, in at most log2(max) + 2 sizes whatever the count', () => {
  const sizes = new Set<number>();
  for (let n = 0; n <= 1_000; n++) {
    const rows = Array.from({ length: n }, (_, i) => i);
    const batches = rowBatches(rows, 200);
    assert.deepEqual(batches.flat(), rows);
    for (const b of batches) {
      assert.ok(
        b.length === 200 || (b.length < 200 && (b.length & (b.length - 1)) === 0),
        `${n}: ${b.length}`,
      );
      sizes.add(b.length);
    }
    // largest first: a remainder below max takes one batch of each of its binary digits
    assert.deepEqual(
      batches.map((b) => b.length),
      batches.map((b) => b.length).sort((a, b) => b - a),
    );
    assert.equal(
      batches.filter((b) => b.length < 200).length,
      (n % 200).toString(2).replaceAll('0', '').length,
    );
  }
  assert.deepEqual(
    [...sizes].sort((a, b) => a - b),
    [1, 2, 4, 8, 16, 32, 64, 128, 200],
  );
});

test('a max of one row a batch, or a power of two, and a refused max', () => {
  assert.deepEqual(rowBatches(['a', 'b', 'c'], 1), [['a'], ['b'], ['c']]);
  assert.deepEqual(
    rowBatches(
      Array.from({ length: 11 }, (_, i) => i),
      4,
    ).map((b) => b.length),
    [4, 4, 2, 1],
  );
  assert.deepEqual(rowBatches([], 8), []);
  assert.throws(() => rowBatches([1], 0), RangeError);
  assert.throws(() => rowBatches([1], 2.5), RangeError);
});
