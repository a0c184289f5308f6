import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seededRandom } from '../seeded-random.ts';
import {
  affordableBootstrap,
  type Battle,
  fitBradleyTerry,
  RATING_CENTRE,
  RATING_SCALE,
  rateBattles,
  sharedRanks,
} from './bradley-terry.ts';

/** Battles between random pairs drawn from the Bradley–Terry model itself, with these true strengths. */
function synthetic(strengths: readonly number[], count: number, seed: number): Battle[] {
  const random = seededRandom(seed);
  const k = strengths.length;
  const battles: Battle[] = [];
  for (let n = 0; n < count; n++) {
    const i = Math.floor(random() * k);
    let j = Math.floor(random() * (k - 1));
    if (j >= i) j++;
    const pWin = 1 / (1 + Math.exp(strengths[j]! - strengths[i]!));
    battles.push({ a: `m${i}`, b: `m${j}`, outcome: random() < pWin ? 'a' : 'b' });
  }
  return battles;
}

const TRUE_STRENGTHS = [-1.2, -0.7, -0.2, 0.3, 0.9, 1.4];

test('Bradley–Terry recovers the order of known strengths from synthetic battles', () => {
  const battles = synthetic(TRUE_STRENGTHS, 3000, 7);
  const { ratings } = rateBattles(battles, { bootstrap: 0 });
  assert.deepEqual(
    ratings.map((r) => r.model),
    ['m5', 'm4', 'm3', 'm2', 'm1', 'm0'],
  );
  // and the strengths themselves, centred as the fit centres them, within sampling error
  const mean = TRUE_STRENGTHS.reduce((s, t) => s + t, 0) / TRUE_STRENGTHS.length;
  for (const r of ratings) {
    const truth = RATING_CENTRE + RATING_SCALE * (TRUE_STRENGTHS[Number(r.model.slice(1))]! - mean);
    assert.ok(Math.abs(r.rating - truth) < 45, `${r.model}: ${r.rating.toFixed(1)} vs ${truth.toFixed(1)}`);
  }
});

test('95% bootstrap intervals cover the true strengths at about 95% over repeated seeds', () => {
  const started = Date.now();
  const mean = TRUE_STRENGTHS.reduce((s, t) => s + t, 0) / TRUE_STRENGTHS.length;
  let covered = 0;
  let intervals = 0;
  const seeds = 40;
  for (let seed = 1; seed <= seeds; seed++) {
    const battles = synthetic(TRUE_STRENGTHS, 1200, 1000 + seed);
    const { ratings } = rateBattles(battles, { bootstrap: 100, seed });
    for (const r of ratings) {
      const truth = RATING_CENTRE + RATING_SCALE * (TRUE_STRENGTHS[Number(r.model.slice(1))]! - mean);
      intervals++;
      if (r.lower <= truth && truth <= r.upper) covered++;
    }
  }
  const rate = covered / intervals;
  // 240 intervals: a true 95% lands in [0.90, 0.99] with room to spare (its standard error is ~1.4%)
  assert.ok(rate >= 0.9 && rate <= 0.99, `coverage ${rate.toFixed(3)} over ${intervals} intervals`);
  assert.ok(Date.now() - started < 15_000, 'bounded runtime');
});

test('the same battles and seed give the same intervals; another seed other ones', () => {
  const battles = synthetic(TRUE_STRENGTHS, 500, 3);
  const one = rateBattles(battles, { bootstrap: 50, seed: 11 });
  const again = rateBattles(battles, { bootstrap: 50, seed: 11 });
  const other = rateBattles(battles, { bootstrap: 50, seed: 12 });
  assert.deepEqual(one, again);
  assert.notDeepEqual(
    one.ratings.map((r) => r.lower),
    other.ratings.map((r) => r.lower),
  );
});

test('a model that won every battle gets a finite rating (the prior), and converges', () => {
  const battles: Battle[] = [];
  for (let n = 0; n < 20; n++) battles.push({ a: 'champion', b: 'rival', outcome: 'a' });
  const fit = fitBradleyTerry(battles);
  assert.ok(fit.converged);
  const [champion, rival] = [fit.strengths[0]!, fit.strengths[1]!];
  assert.ok(Number.isFinite(champion) && champion > 0 && champion < 10, String(champion));
  assert.ok(Math.abs(champion + rival) < 1e-9, 'centred');
  // a stronger prior pulls the two closer
  const strong = fitBradleyTerry(battles, { prior: 10 });
  assert.ok(strong.strengths[0]! < champion);
});

test('ties count as half a win to each side', () => {
  const battles: Battle[] = [
    { a: 'x', b: 'y', outcome: 'tie' },
    { a: 'x', b: 'y', outcome: 'tie' },
    { a: 'y', b: 'x', outcome: 'tie' },
  ];
  const { ratings } = rateBattles(battles, { bootstrap: 20 });
  assert.equal(ratings.length, 2);
  for (const r of ratings) {
    assert.ok(Math.abs(r.rating - RATING_CENTRE) < 1e-6);
    assert.equal(r.ties, 3);
    assert.equal(r.wins, 0);
  }
  // one win and one loss each, beside a tie: still even
  const even = rateBattles(
    [
      { a: 'x', b: 'y', outcome: 'a' },
      { a: 'x', b: 'y', outcome: 'b' },
      { a: 'x', b: 'y', outcome: 'tie' },
    ],
    { bootstrap: 0 },
  );
  assert.ok(Math.abs(even.ratings[0]!.rating - even.ratings[1]!.rating) < 1e-6);
});

test('ranks are shared where intervals overlap', () => {
  const ranks = sharedRanks([
    { lower: 1100, upper: 1200 },
    { lower: 1080, upper: 1150 },
    { lower: 1000, upper: 1090 },
    { lower: 900, upper: 990 },
  ]);
  // the second overlaps the first; the third overlaps the second but not the first
  assert.deepEqual(ranks, [1, 1, 2, 4]);
});

test('no battles: no ratings', () => {
  assert.deepEqual(rateBattles([]).ratings, []);
});

test('the bootstrap a request may ask for shrinks with the battles and the models', () => {
  assert.ok(affordableBootstrap(10_000, 10, 1000) >= 2000);
  const big = affordableBootstrap(400_000, 20, 1000);
  assert.ok(big > 100 && big < 300, String(big));
  assert.ok(affordableBootstrap(50_000, 200, 1000) < affordableBootstrap(50_000, 20, 1000) / 10);
  assert.equal(affordableBootstrap(1e12, 10, 1000), 0);
});
