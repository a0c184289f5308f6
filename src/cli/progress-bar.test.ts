import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { formatDuration, ProgressBar, progressLine } from './progress-bar.ts';

test('a progress line: the bar, done of total, the rate of this process and the ETA', () => {
  // 250 of 1,000 done, 200 of them answered here in 4 s: 50 items/s, 750 left → 15 s
  assert.equal(
    progressLine({ total: 1000, done: 240, failed: 10, answeredHere: 200 }, 4000, 8),
    '[##------] 250/1000 25% · 50.0 items/s · ETA 0:15 · 실패 failed 10',
  );
  assert.equal(
    progressLine({ total: 10, done: 0, failed: 0, answeredHere: 0 }, 0, 4),
    '[----] 0/10 0% · 0.0 items/s · ETA --:--',
  );
  assert.equal(formatDuration(3725), '1:02:05');
});

test('off a terminal it writes whole lines (a log, a test), and always the last one', () => {
  const lines: string[] = [];
  const out = new Writable({
    write(chunk, _e, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  const bar = new ProgressBar(out, 'suite', 60_000);
  bar.update({ total: 2, done: 1, failed: 0, answeredHere: 1 });
  bar.update({ total: 2, done: 2, failed: 0, answeredHere: 2 });
  bar.end();
  assert.equal(lines.length, 2);
  assert.match(lines[0]!, /^suite \[#+-*\] 1\/2 50%/);
  assert.match(lines[1]!, /^suite \[#+\] 2\/2 100% .*\n$/);
});
