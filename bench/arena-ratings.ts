// What rating an arena costs: Bradley–Terry fits and their bootstrap run on the event loop of the
// replica that answers GET /admin/v1/arenas/:id/ratings (or builds the public leaderboard), so their
// time is time every other request of that replica waits. Measures rateBattles on synthetic battles
// drawn from known strengths for a few arena sizes and bootstrap counts, and a round's result for 50
// teams; prints a table for docs/benchmarks.md. Each case is repeated --repeat times (median reported).
//
// Run: node --import tsx bench/arena-ratings.ts [--repeat=3]
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { MAX_RATING_MS } from '../src/evaluation/ratings/arenas.ts';
import { type Battle, rateBattles, resampleCostMs } from '../src/evaluation/ratings/bradley-terry.ts';
import { roundDefinitionInput } from '../src/evaluation/rounds/definition.ts';
import { computeRoundResult, type RoundInputs } from '../src/evaluation/rounds/round-result.ts';
import { seededRandom } from '../src/evaluation/seeded-random.ts';

const { values } = parseArgs({ options: { repeat: { type: 'string' } } });
const repeat = Math.max(1, Number(values.repeat ?? 3));

function battles(models: number, count: number, seed: number): Battle[] {
  const random = seededRandom(seed);
  const strength = Array.from({ length: models }, (_, i) => (i - models / 2) / (models / 3));
  return Array.from({ length: count }, () => {
    const i = Math.floor(random() * models);
    let j = Math.floor(random() * (models - 1));
    if (j >= i) j++;
    const p = 1 / (1 + Math.exp(strength[j]! - strength[i]!));
    const roll = random();
    return { a: `m${i}`, b: `m${j}`, outcome: roll < 0.05 ? 'tie' : roll < 0.05 + 0.95 * p ? 'a' : 'b' };
  });
}

const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function time(fn: () => void): number {
  const times: number[] = [];
  for (let r = 0; r < repeat; r++) {
    const start = performance.now();
    fn();
    times.push(performance.now() - start);
  }
  return median(times);
}

console.log(
  '| models | battles | bootstrap | estimate (ms) | measured, median (ms) | within the 1 s budget |',
);
console.log('| ---: | ---: | ---: | ---: | ---: | --- |');
const cases: [number, number, number][] = [
  [10, 10_000, 200],
  [20, 50_000, 200],
  [20, 100_000, 200],
  [50, 100_000, 200],
  [20, 200_000, 200],
  [20, 20_000, 2000],
  [100, 50_000, 100],
  [200, 50_000, 20],
];
for (const [models, count, bootstrap] of cases) {
  const data = battles(models, count, models * count);
  const estimate = bootstrap * resampleCostMs(count, models);
  const ms = time(() => rateBattles(data, { bootstrap, seed: 1 }));
  console.log(
    `| ${models} | ${count.toLocaleString('en')} | ${bootstrap} | ${estimate.toFixed(0)} | ${ms.toFixed(0)} | ${estimate <= MAX_RATING_MS ? 'yes' : 'no: refused (the leaderboard takes fewer)'} |`,
  );
}

// a round of 50 teams, 10 suites, two panels of 15: the preview an evaluator reloads
const teams = Array.from({ length: 50 }, (_, i) => `org_${i}`);
const definition = roundDefinitionInput.parse({
  name: 'bench',
  survivors: 10,
  axes: [
    { id: 'benchmark', kind: 'benchmark', name: 'b', weight: 40 },
    { id: 'expert', kind: 'panel', name: 'e', weight: 35, criteria: [{ id: 'c', name: 'c', weight: 100 }] },
    { id: 'user', kind: 'panel', name: 'u', weight: 25, criteria: [{ id: 'c', name: 'c', weight: 100 }] },
  ],
  suites: Array.from({ length: 10 }, (_, i) => ({ id: `s${i}`, name: `s${i}`, group: 'common' })),
  teams: teams.map((o) => ({ organizationId: o, name: o, productId: `prd_${o}`, targetModel: 'global' })),
  gates: [{ id: 'independence', name: 'i' }],
  tieBreak: ['overall', 'lot'],
});
const random = seededRandom(9);
const inputs: RoundInputs = {
  references: definition.suites.map((s) => ({
    suiteId: s.id,
    model: 'global',
    score: 80,
    stderr: 0.5,
    n: 1000,
    source: 'published' as const,
    runId: null,
    citation: 'c',
    url: null,
    protocol: 'p',
    suiteHash: null,
  })),
  scores: teams.flatMap((o) =>
    definition.suites.map((s) => ({
      organizationId: o,
      suiteId: s.id,
      score: 60 + random() * 30,
      stderr: 0.6,
      n: 1000,
      unparsed: 1,
      suiteHash: null,
      runId: null,
      note: 'n',
    })),
  ),
  members: [
    ...Array.from({ length: 15 }, (_, i) => ({ id: `e${i}`, axisId: 'expert', name: 'e', conflicts: [] })),
    ...Array.from({ length: 15 }, (_, i) => ({ id: `u${i}`, axisId: 'user', name: 'u', conflicts: [] })),
  ],
  panelScores: teams.flatMap((o) =>
    Array.from({ length: 30 }, (_, i) => ({
      memberId: i < 15 ? `e${i}` : `u${i - 15}`,
      organizationId: o,
      scores: { c: 50 + random() * 50 },
    })),
  ),
  gateDecisions: teams.map((o) => ({
    gateId: 'independence',
    organizationId: o,
    passed: true,
    evidence: 'e',
    reason: 'r',
  })),
};
const roundMs = time(() => computeRoundResult(definition, inputs, 'rnd_bench'));
console.log(
  `\nround result, 50 teams × 10 suites, 2 panels × 15 members: ${roundMs.toFixed(1)} ms (median of ${repeat})`,
);
