import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { newId, newRequestId } from './ids.ts';

test('request ids keep the shape clients know and sort by the time they were made', async () => {
  const earlier = Array.from({ length: 2_000 }, newRequestId);
  await sleep(2);
  const later = Array.from({ length: 2_000 }, newRequestId);
  for (const id of [...earlier, ...later]) assert.match(id, /^req_[0-9a-f]{32}$/);
  assert.equal(new Set([...earlier, ...later]).size, 4_000, 'no two alike');
  // what the usage and ledger indexes rely on: a later millisecond sorts after every earlier id
  const lastEarlier = [...earlier].sort().at(-1)!;
  for (const id of later) assert.ok(id > lastEarlier, `${id} sorts after ${lastEarlier}`);
  const stamp = Number.parseInt(later[0]!.slice(4, 16), 16);
  assert.ok(Math.abs(stamp - Date.now()) < 60_000, 'the first 48 bits are the time in milliseconds');
});

test('ids stay unique across many refills of the random pool', () => {
  // 10 random bytes an id, 4 KiB a refill: 20,000 ids span about 50 refills
  const ids = Array.from({ length: 20_000 }, () => newId('ltx'));
  assert.equal(new Set(ids).size, ids.length);
  for (const id of ids.slice(0, 50)) assert.match(id, /^ltx_[0-9a-z]{9}[A-Za-z0-9_-]{14}$/);
});
