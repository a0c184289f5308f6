import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Candidate, fill, Ledger, rank } from './ranking.ts';

const base = (over: Partial<Candidate> & { id: string }): Candidate => ({
  organizationId: `org-${over.id}`,
  poolId: 'p1',
  trackId: 'small',
  gpus: 2,
  startDay: 100,
  endDay: 130,
  region: 'capital',
  submittedAt: 1,
  reviews: 2,
  totalCentipoints: 16_000,
  criterionMeans: {},
  ...over,
});

test('score = mean weighted score + the non-capital bonus; ties by the declared keys, then id', () => {
  const ranked = rank(
    [
      base({ id: 'a', totalCentipoints: 16_000 }), // 80.00
      base({ id: 'b', totalCentipoints: 15_000, region: 'non_capital' }), // 75 + 5 = 80.00
      base({ id: 'c', totalCentipoints: 17_000, submittedAt: 5 }), // 85
      base({ id: 'd', totalCentipoints: 17_000, submittedAt: 2 }), // 85, earlier
    ],
    { nonCapitalRegion: 5 },
    ['non_capital_first', 'earlier_submission'],
  );
  assert.deepEqual(
    ranked.map((r) => [r.id, r.rank, r.scoreCentipoints]),
    [
      ['d', 1, 8500],
      ['c', 2, 8500],
      ['b', 3, 8000],
      ['a', 4, 8000],
    ],
  );
  assert.equal(ranked[2]!.bonusCentipoints, 500);
});

test('a criterion tie-break: the higher mean on that criterion first', () => {
  const ranked = rank(
    [base({ id: 'a', criterionMeans: { impact: 70 } }), base({ id: 'b', criterionMeans: { impact: 90 } })],
    {},
    ['criterion:impact'],
  );
  assert.deepEqual(
    ranked.map((r) => r.id),
    ['b', 'a'],
  );
});

test('fill: never over a pool on any day; the rest waits with the day and limit that did not fit', () => {
  // a 4-GPU pool; a takes 3 GPUs for days 100–110, b asks 2 for 105–120 (overlaps on 105–109): waits;
  // c asks 1 for 100–130: fits beside a; d asks 2 for 110–120: fits after a ends
  const ledger = new Ledger(
    { pools: new Map([['p1', 4]]), callId: 'call', callCapacity: 100, trackCapacity: new Map() },
    100,
    130,
    [],
  );
  const ranked = rank(
    [
      base({ id: 'a', gpus: 3, startDay: 100, endDay: 110, totalCentipoints: 20_000 }),
      base({ id: 'b', gpus: 2, startDay: 105, endDay: 120, totalCentipoints: 19_000 }),
      base({ id: 'c', gpus: 1, startDay: 100, endDay: 130, totalCentipoints: 18_000 }),
      base({ id: 'd', gpus: 2, startDay: 110, endDay: 120, totalCentipoints: 17_000 }),
    ],
    {},
    [],
  );
  const out = fill(ranked, ledger, 'call');
  assert.deepEqual(
    out.map((o) => [o.candidate.id, o.decision]),
    [
      ['a', 'selected'],
      ['b', 'waitlisted'],
      ['c', 'selected'],
      ['d', 'selected'],
    ],
  );
  assert.match(out[1]!.reason, /1970-04-16.*1 GPUs free, 2 asked/);
  for (let day = 100; day < 130; day++) assert.ok(ledger.pools.get('p1')!.freeOver(day, day + 1) >= 0);
});

test('fill: the call and a track have capacities of their own; an overlapping grant of the same organisation is rejected', () => {
  const ledger = new Ledger(
    {
      pools: new Map([['p1', 100]]),
      callId: 'call',
      callCapacity: 5,
      trackCapacity: new Map([['small', 3]]),
    },
    100,
    130,
    [
      {
        organizationId: 'org-x',
        poolId: 'p1',
        callId: 'other',
        trackId: 't',
        gpus: 1,
        startDay: 90,
        endDay: 101,
      },
    ],
  );
  const ranked = rank(
    [
      base({ id: 'a', gpus: 3, totalCentipoints: 20_000 }),
      base({ id: 'b', gpus: 1, totalCentipoints: 19_000 }),
      base({ id: 'c', gpus: 2, trackId: 'server', totalCentipoints: 18_000 }),
      base({ id: 'd', gpus: 1, trackId: 'server', totalCentipoints: 17_000 }),
      base({ id: 'x', organizationId: 'org-x', gpus: 1, totalCentipoints: 16_000 }),
    ],
    {},
    [],
  );
  const out = fill(ranked, ledger, 'call');
  assert.deepEqual(
    out.map((o) => [o.candidate.id, o.decision]),
    [
      ['a', 'selected'],
      ['b', 'waitlisted'], // track small is full (3)
      ['c', 'selected'], // call: 5 of 5
      ['d', 'waitlisted'], // call full
      ['x', 'rejected'], // overlaps its own allocation on day 100
    ],
  );
  assert.match(out[1]!.reason, /track small's capacity/);
  assert.match(out[3]!.reason, /the call's capacity/);
});
