import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ROUND_AXES } from '../../../test/helpers/evaluation-round.ts';
import { ValidationError } from '../../errors.ts';
import { parseInput } from '../../validation.ts';
import { type RoundDefinition, roundDefinitionInput } from './definition.ts';
import {
  type BenchmarkScore,
  computeRoundResult,
  type PanelScore,
  type RoundInputs,
} from './round-result.ts';
import { studentQuantile } from './statistics.ts';

const TEAMS = ['lg', 'skt', 'upstage', 'naver', 'nc'] as const;

/** The first round of 2026 as it ran: five teams, benchmark 40 / experts 35 / users 25, three survive. */
function definition(overrides: Record<string, unknown> = {}): RoundDefinition {
  return parseInput(roundDefinitionInput, {
    name: '1차 평가',
    programme: '독자 AI 파운데이션 모델',
    survivors: 3,
    axes: ROUND_AXES,
    suites: [
      { id: 'kmmlu', name: 'KMMLU', group: 'common' },
      { id: 'hrm8k', name: 'HRM8K', group: 'common' },
      { id: 'nia-heldout', name: 'NIA 비공개', group: 'heldout' },
      { id: 'lg-pick', name: 'LG 선택', group: 'team', organizationId: 'lg' },
    ],
    teams: TEAMS.map((id) => ({
      organizationId: id,
      name: id.toUpperCase(),
      productId: `prd_${id}`,
      targetModel: id === 'lg' ? 'global-b' : 'global-a',
      parameters: { lg: 32e9, skt: 70e9, upstage: 100e9, naver: 14e9, nc: 8e9 }[id],
    })),
    gates: [{ id: 'independence', name: '독자성', description: '가중치를 직접 초기화·학습' }],
    tieBreak: ['axis:benchmark', 'smallerModel', 'lot'],
    ...overrides,
  });
}

/** Each team's benchmark percent of its target, expert scores and user scores, from which all is built. */
interface Plan {
  percent: Record<string, number>;
  expert: Record<string, number[]>;
  user: Record<string, number[]>;
}

function inputs(d: RoundDefinition, plan: Plan, stderr = 0.5): RoundInputs {
  const references = [
    ...['kmmlu', 'hrm8k', 'nia-heldout', 'lg-pick'].map((suiteId) => ({
      suiteId,
      model: 'global-a',
      score: 80,
      stderr: null,
      n: null,
      source: 'published' as const,
      runId: null,
      citation: 'model card',
      url: null,
      protocol: '5-shot',
      suiteHash: null,
    })),
    ...['kmmlu', 'hrm8k', 'nia-heldout', 'lg-pick'].map((suiteId) => ({
      suiteId,
      model: 'global-b',
      score: 40,
      stderr: null,
      n: null,
      source: 'measured' as const,
      runId: `run_${suiteId}`,
      citation: null,
      url: null,
      protocol: null,
      suiteHash: null,
    })),
  ];
  const scores: BenchmarkScore[] = [];
  for (const team of d.teams) {
    const reference = team.targetModel === 'global-a' ? 80 : 40;
    for (const suite of d.suites.filter(
      (s) => s.group !== 'team' || s.organizationId === team.organizationId,
    ))
      scores.push({
        organizationId: team.organizationId,
        suiteId: suite.id,
        score: (plan.percent[team.organizationId]! / 100) * reference,
        stderr,
        n: 1000,
        unparsed: 3,
        suiteHash: null,
        runId: null,
        note: null,
      });
  }
  const members = [
    ...Array.from({ length: 5 }, (_, i) => ({
      id: `e${i}`,
      axisId: 'expert',
      name: `전문가 ${i}`,
      conflicts: [] as string[],
    })),
    ...Array.from({ length: 4 }, (_, i) => ({
      id: `u${i}`,
      axisId: 'user',
      name: `사용자 ${i}`,
      conflicts: [] as string[],
    })),
  ];
  const panelScores: PanelScore[] = [];
  for (const team of TEAMS) {
    for (const [i, v] of plan.expert[team]!.entries())
      panelScores.push({
        memberId: `e${i}`,
        organizationId: team,
        scores: { strategy: v, capability: v, impact: v },
      });
    for (const [i, v] of plan.user[team]!.entries())
      panelScores.push({ memberId: `u${i}`, organizationId: team, scores: { usefulness: v, cost: v } });
  }
  const gateDecisions = TEAMS.map((team) => ({
    gateId: 'independence',
    organizationId: team,
    passed: true,
    evidence: '학습 로그',
    reason: '독자 학습',
  }));
  return { references, scores, members, panelScores, gateDecisions };
}

const CLEAR: Plan = {
  percent: { lg: 100, skt: 96, upstage: 90, naver: 80, nc: 70 },
  expert: {
    lg: [90, 91, 89, 90, 90],
    skt: [85, 86, 84, 85, 85],
    upstage: [80, 81, 79, 80, 80],
    naver: [70, 71, 69, 70, 70],
    nc: [60, 61, 59, 60, 60],
  },
  user: {
    lg: [9, 9, 9, 9],
    skt: [8.5, 8.5, 8.5, 8.5],
    upstage: [8, 8, 8, 8],
    naver: [7, 7, 7, 7],
    nc: [6, 6, 6, 6],
  },
};

const team = (r: ReturnType<typeof computeRoundResult>, id: string) =>
  r.teams.find((t) => t.organizationId === id)!;

test('5 → 3: the round keeps three, each measured against the target model it declared', () => {
  const d = definition();
  const r = computeRoundResult(d, inputs(d, CLEAR), 'rnd_1');
  assert.equal(r.complete, true, r.missing.join(', '));
  assert.deepEqual(
    r.teams.map((t) => [t.organizationId, t.status]),
    [
      ['lg', 'survives'],
      ['skt', 'survives'],
      ['upstage', 'survives'],
      ['naver', 'eliminated'],
      ['nc', 'eliminated'],
    ],
  );
  // LG's target (global-b) scored 40 where global-a scored 80: its 40 is 100% of its own target
  const lg = team(r, 'lg');
  assert.equal(lg.benchmark!.suites.length, 4, 'common, held-out and its own choice');
  assert.equal(team(r, 'skt').benchmark!.suites.length, 3);
  assert.ok(Math.abs(lg.benchmark!.percentOfReference.value - 100) < 1e-9);
  assert.equal(lg.benchmark!.reachesThreshold, true);
  assert.equal(team(r, 'skt').benchmark!.reachesThreshold, true, '96 ≥ 95');
  assert.equal(team(r, 'upstage').benchmark!.reachesThreshold, false, '90 < 95');
  // percent stderr: 100 · 0.5 / 80 per suite; groups (common: 2 suites, heldout: 1) weigh equally
  const skt = team(r, 'skt');
  const perSuite = (100 * 0.5) / 80;
  const expected = Math.sqrt((0.5 / 2) ** 2 * 2 * perSuite ** 2 + 0.5 ** 2 * perSuite ** 2);
  assert.ok(Math.abs(skt.benchmark!.percentOfReference.stderr - expected) < 1e-12);
  assert.equal(skt.benchmark!.suites[0]!.unparsed, 3, 'unparsed answers carried apart');
  // the expert axis: mean of 85, 86, 84, 85, 85 with Student's t at 4 degrees of freedom
  const expert = skt.axes.find((a) => a.axisId === 'expert')!;
  assert.equal(expert.score.value, 85);
  const sd = Math.sqrt((0 + 1 + 1 + 0 + 0) / 4);
  assert.ok(Math.abs(expert.score.stderr - sd / Math.sqrt(5)) < 1e-12);
  assert.ok(Math.abs(expert.score.upper - 85 - studentQuantile(0.975, 4) * (sd / Math.sqrt(5))) < 1e-9);
  // users score out of 10: 8.5 is 85 on the axis
  assert.equal(skt.axes.find((a) => a.axisId === 'user')!.score.value, 85);
  // weighted: 0.40 · 96 (under the cap) + 0.35 · 85 + 0.25 · 85
  assert.ok(Math.abs(skt.overall!.value - (0.4 * 96 + 0.35 * 85 + 0.25 * 85)) < 1e-9);
  assert.equal(r.cut!.separated, true);
  assert.deepEqual(r.cut!.tieGroup, []);
  assert.equal(team(r, 'naver').decidedBy, 'interval');
});

test('elimination at overlapping intervals uses the tie-break the round declared', () => {
  const d = definition();
  // upstage is ahead on the point estimate, naver on the benchmark; the panels are noisy enough
  // that their intervals overlap
  const plan: Plan = {
    ...CLEAR,
    percent: { ...CLEAR.percent, upstage: 88, naver: 92 },
    expert: { ...CLEAR.expert, upstage: [95, 60, 90, 70, 85], naver: [90, 55, 85, 65, 80] },
  };
  const r = computeRoundResult(d, inputs(d, plan, 2), 'rnd_1');
  const upstage = team(r, 'upstage');
  const naver = team(r, 'naver');
  assert.ok(upstage.overall!.value > naver.overall!.value, 'upstage ahead on points');
  assert.equal(r.cut!.separated, false);
  assert.deepEqual(r.cut!.tieGroup.slice(0, 2), ['naver', 'upstage'], 'benchmark axis first');
  assert.equal(naver.status, 'survives');
  assert.equal(naver.decidedBy, 'tie-break');
  assert.equal(upstage.status, 'eliminated');
  assert.equal(upstage.decidedBy, 'tie-break');
  assert.equal(upstage.rank, naver.rank, 'a shared rank');
  assert.equal(
    r.teams.filter((t) => t.status === 'survives').length,
    3,
    'still exactly the declared survivors',
  );

  // another round declaring another tie-break keeps the other team
  const bySize = definition({ tieBreak: ['smallerModel'] });
  const r2 = computeRoundResult(bySize, inputs(bySize, plan, 2), 'rnd_1');
  assert.equal(team(r2, 'naver').status, 'survives', '14B beats 100B');
  const byPoints = definition({ tieBreak: ['overall'] });
  const r3 = computeRoundResult(byPoints, inputs(byPoints, plan, 2), 'rnd_1');
  assert.equal(team(r3, 'upstage').status, 'survives');
  assert.equal(team(r3, 'naver').status, 'eliminated');
});

test('a failed gate disqualifies a team above the others, whatever its score', () => {
  const d = definition();
  const given = inputs(d, { ...CLEAR, percent: { ...CLEAR.percent, naver: 99 } });
  // naver is second on points; the independence gate fails it (a foreign vision encoder)
  const decisions = given.gateDecisions.map((g) =>
    g.organizationId === 'naver'
      ? { ...g, passed: false, evidence: '비전 인코더 가중치 출처', reason: '해외 모델 가중치 사용' }
      : g,
  );
  const r = computeRoundResult(d, { ...given, gateDecisions: decisions }, 'rnd_1');
  const naver = team(r, 'naver');
  assert.equal(naver.status, 'disqualified');
  assert.equal(naver.decidedBy, 'gate');
  assert.equal(naver.rank, null);
  assert.equal(naver.gates[0]!.reason, '해외 모델 가중치 사용');
  assert.equal(r.teams.at(-1)!.organizationId, 'naver', 'listed after every qualified team');
  assert.deepEqual(
    r.teams.filter((t) => t.status === 'survives').map((t) => t.organizationId),
    ['lg', 'skt', 'upstage'],
  );
  assert.equal(team(r, 'nc').status, 'eliminated');
});

test('a conflicted member’s scores for that team are left out of its panel mean', () => {
  const d = definition();
  const given = inputs(d, CLEAR);
  // e0 declared a conflict with nc and scored it 100 on everything
  const members = given.members.map((m) => (m.id === 'e0' ? { ...m, conflicts: ['nc'] } : m));
  const panelScores = given.panelScores.map((s) =>
    s.memberId === 'e0' && s.organizationId === 'nc'
      ? { ...s, scores: { strategy: 100, capability: 100, impact: 100 } }
      : s,
  );
  const r = computeRoundResult(d, { ...given, members, panelScores }, 'rnd_1');
  const expert = team(r, 'nc').axes.find((a) => a.axisId === 'expert')!;
  assert.equal(expert.members, 4);
  assert.equal(expert.excludedForConflict, 1);
  assert.equal(expert.score.value, (61 + 59 + 60 + 60) / 4);
});

test('what is missing keeps the round open, and says what', () => {
  const d = definition();
  const given = inputs(d, CLEAR);
  const r = computeRoundResult(
    d,
    {
      ...given,
      scores: given.scores.filter((s) => !(s.organizationId === 'lg' && s.suiteId === 'lg-pick')),
      references: given.references.filter((x) => !(x.suiteId === 'hrm8k' && x.model === 'global-a')),
      gateDecisions: given.gateDecisions.filter((g) => g.organizationId !== 'nc'),
    },
    'rnd_1',
  );
  assert.equal(r.complete, false);
  assert.equal(r.cut, null);
  assert.ok(r.missing.includes('lg: score:lg-pick'), r.missing.join(', '));
  assert.ok(r.missing.includes('skt: reference:hrm8k:global-a'));
  assert.ok(r.missing.includes('nc: gate:independence'));
  assert.ok(r.teams.every((t) => t.status === 'pending'));
});

test('a tie the declared tie-break cannot separate is reported, not guessed', () => {
  const d = definition({ tieBreak: ['axis:user'] });
  const plan: Plan = {
    ...CLEAR,
    percent: { ...CLEAR.percent, upstage: 80, naver: 80 },
    expert: { ...CLEAR.expert, naver: [80, 81, 79, 80, 80] },
    user: { ...CLEAR.user, naver: [8, 8, 8, 8] },
  };
  const r = computeRoundResult(d, inputs(d, plan), 'rnd_1');
  assert.deepEqual([...r.cut!.unresolved].sort(), ['naver', 'upstage']);
});

test('the lot is a seeded draw: the same round draws the same way', () => {
  const d = definition({ tieBreak: ['lot'] });
  const plan: Plan = {
    ...CLEAR,
    percent: { ...CLEAR.percent, upstage: 80, naver: 80 },
    expert: { ...CLEAR.expert, naver: [80, 81, 79, 80, 80] },
    user: { ...CLEAR.user, naver: [8, 8, 8, 8] },
  };
  const one = computeRoundResult(d, inputs(d, plan), 'rnd_1');
  const again = computeRoundResult(d, inputs(d, plan), 'rnd_1');
  assert.deepEqual(one.cut, again.cut);
  assert.deepEqual(one.cut!.unresolved, []);
  assert.equal(one.teams.filter((t) => t.status === 'survives').length, 3);
});

test('the benchmark axis is capped at the reference: beating the target earns no more', () => {
  const d = definition();
  const r = computeRoundResult(d, inputs(d, { ...CLEAR, percent: { ...CLEAR.percent, lg: 130 } }), 'x');
  const lg = team(r, 'lg');
  assert.ok(Math.abs(lg.benchmark!.percentOfReference.value - 130) < 1e-9);
  assert.equal(lg.axes.find((a) => a.axisId === 'benchmark')!.score.value, 100);
  const uncapped = definition({
    axes: definition().axes.map((a) => (a.kind === 'benchmark' ? { ...a, capPercent: null } : a)),
  });
  const r2 = computeRoundResult(
    uncapped,
    inputs(uncapped, { ...CLEAR, percent: { ...CLEAR.percent, lg: 130 } }),
    'x',
  );
  assert.ok(Math.abs(team(r2, 'lg').axes[0]!.score.value - 130) < 1e-9);
});

test('a definition is refused with the field at fault', () => {
  const fields = (overrides: Record<string, unknown>) => {
    try {
      definition(overrides);
    } catch (error) {
      assert.ok(error instanceof ValidationError);
      return error.fields.map((f) => f.field);
    }
    assert.fail('accepted');
  };
  assert.ok(fields({ survivors: 6 }).includes('survivors'));
  assert.ok(fields({ tieBreak: ['axis:nothing'] }).includes('tieBreak.0'));
  assert.ok(fields({ tieBreak: ['coin'] }).includes('tieBreak.0'));
  const base = definition();
  assert.ok(
    fields({ axes: base.axes.map((a) => (a.id === 'user' ? { ...a, weight: 30 } : a)) }).includes('axes'),
  );
  const threePicks = [
    ...base.suites,
    { id: 'lg-2', name: 'LG 2', group: 'team', organizationId: 'lg' },
    { id: 'lg-3', name: 'LG 3', group: 'team', organizationId: 'lg' },
  ];
  assert.ok(fields({ suites: threePicks }).includes('suites.5.organizationId'));
  assert.ok(
    fields({
      teams: base.teams.map((t, i) => (i === 2 ? { ...t, parameters: undefined } : t)),
      tieBreak: ['smallerModel'],
    }).includes('teams.2.parameters'),
  );
  assert.ok(
    fields({
      suites: [...base.suites, { id: 'x', name: 'X', group: 'team', organizationId: 'nobody' }],
    }).includes('suites.4.organizationId'),
  );
});
