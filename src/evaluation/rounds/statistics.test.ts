import assert from 'node:assert/strict';
import { test } from 'node:test';
import { meanEstimate, studentCdf, studentQuantile } from './statistics.ts';

test("Student's t quantiles match the tables", () => {
  // two-sided 95%: the values every statistics table prints
  const table: [number, number][] = [
    [1, 12.7062],
    [2, 4.3027],
    [4, 2.7764],
    [9, 2.2622],
    [29, 2.0452],
    [1000, 1.9623],
  ];
  for (const [df, t] of table) assert.ok(Math.abs(studentQuantile(0.975, df) - t) < 1e-4, `df ${df}`);
  assert.ok(Math.abs(studentCdf(0, 5) - 0.5) < 1e-12);
  assert.ok(Math.abs(studentCdf(-2.5706, 5) - 0.025) < 1e-5);
});

test('a mean carries its standard error and t interval; one value has no spread', () => {
  const e = meanEstimate([1, 2, 3, 4]);
  assert.equal(e.value, 2.5);
  const se = Math.sqrt(((1.5 ** 2 + 0.5 ** 2) * 2) / 3 / 4);
  assert.ok(Math.abs(e.stderr - se) < 1e-12);
  assert.ok(Math.abs(e.upper - (2.5 + 3.1824 * se)) < 1e-3);
  assert.deepEqual(meanEstimate([7]), { value: 7, stderr: 0, lower: 7, upper: 7 });
});
