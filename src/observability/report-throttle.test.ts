import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ReportThrottle } from './report-throttle.ts';

test('a report goes through at once, then once per interval with how many it stands for', () => {
  let clock = 1_000;
  const throttle = new ReportThrottle(100, () => clock);
  assert.equal(throttle.take(), 1, 'the first at once');
  clock += 10;
  assert.equal(throttle.take(), 0);
  clock += 50;
  assert.equal(throttle.take(), 0);
  clock += 40;
  assert.equal(throttle.take(), 3, 'an interval later: this one and the two held back');
  clock += 500;
  assert.equal(throttle.take(), 1);
});
