import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type DeadlineEntry, Deadlines } from './deadlines.ts';

interface Entry extends DeadlineEntry {
  name: string;
}
const entry = (name: string): Entry => ({ name, deadlineAt: 0, deadlinePrev: null, deadlineNext: null });

test('each expires once, in order, no earlier than its length; removed ones never', async () => {
  const expired: string[] = [];
  const times = new Map<string, number>();
  const deadlines = new Deadlines<Entry>(60, (e) => {
    expired.push(e.name);
    times.set(e.name, performance.now());
  });
  const started = new Map<string, number>();
  const a = entry('a');
  const b = entry('b');
  const c = entry('c');
  started.set('a', performance.now());
  deadlines.add(a);
  await sleep(20);
  started.set('b', performance.now());
  deadlines.add(b);
  started.set('c', performance.now());
  deadlines.add(c);
  deadlines.remove(b);
  deadlines.remove(b);
  await sleep(150);
  assert.deepEqual(expired, ['a', 'c']);
  for (const name of ['a', 'c']) assert.ok(times.get(name)! - started.get(name)! >= 59);
  assert.equal(a.deadlineAt, 0);
  assert.equal(b.deadlineAt, 0);
  // expired or removed: removing again is nothing
  deadlines.remove(a);
});

test('an entry set again after it expired, and one set while others expire, both expire', async () => {
  const expired: string[] = [];
  const later = entry('later');
  const deadlines: Deadlines<Entry> = new Deadlines<Entry>(30, (e) => {
    expired.push(e.name);
    if (e.name === 'first') deadlines.add(later);
  });
  deadlines.add(entry('first'));
  await sleep(100);
  assert.deepEqual(expired, ['first', 'later']);
});

test('an empty list keeps no timer: the process may exit', async () => {
  const deadlines = new Deadlines<Entry>(60_000, () => assert.fail('never due'));
  const e = entry('e');
  deadlines.add(e);
  deadlines.remove(e);
  const handles = (process as unknown as { getActiveResourcesInfo(): string[] }).getActiveResourcesInfo();
  assert.equal(handles.filter((h) => h === 'Timeout').length, 0);
});
