import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FairQueue } from './fair-queue.ts';

interface W {
  organizationId: string;
  candidates: string[];
  n: number;
}
const w = (organizationId: string, n: number, candidates = ['d1']): W => ({ organizationId, candidates, n });

test('slots go round robin across organisations, first come first served within one', () => {
  const q = new FairQueue<string, W>();
  for (let i = 0; i < 5; i++) q.push(w('big', i));
  q.push(w('small', 100));
  q.push(w('other', 200));
  const order: string[] = [];
  while (q.size > 0) {
    const next = q.take('d1')!;
    order.push(`${next.organizationId}:${next.n}`);
  }
  assert.deepEqual(order, ['big:0', 'small:100', 'other:200', 'big:1', 'big:2', 'big:3', 'big:4']);
});

test('a waiter is only given a deployment it can use', () => {
  const q = new FairQueue<string, W>();
  q.push(w('a', 1, ['d2']));
  q.push(w('b', 2, ['d1', 'd2']));
  assert.equal(q.take('d1')?.n, 2);
  assert.equal(q.take('d1'), undefined);
  assert.equal(q.take('d2')?.n, 1);
});

test('a waiter that gave up is removed once', () => {
  const q = new FairQueue<string, W>();
  const a = w('a', 1);
  q.push(a);
  q.push(w('a', 2));
  assert.equal(q.remove(a), true);
  assert.equal(q.remove(a), false);
  assert.equal(q.size, 1);
  assert.equal(q.take('d1')?.n, 2);
});
