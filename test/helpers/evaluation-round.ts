import assert from 'node:assert/strict';
import type { RunResults } from '../../src/evaluation/rounds/run-results.ts';
import type { TestHub } from './hub.ts';

/**
 * A round as the 2026 programme ran its first one, for tests over HTTP: teams (an organisation and a
 * product each, with the global model it declared as its target), benchmark 40 / experts 35 / users
 * 25, a common set, the operator's held-out suite, a suite the first team chose, an independence gate,
 * and the inputs that decide it: each team's percent of its target, expert and user scores.
 */

export interface TeamFixture {
  organizationId: string;
  productId: string;
  name: string;
  targetModel: string;
  parameters: number;
}

/** Benchmark 40 / experts 35 (strategy, capability, impact) / users 25 (usefulness, cost; out of 10). */
export const ROUND_AXES = [
  { id: 'benchmark', kind: 'benchmark', name: '벤치마크 평가', weight: 40 },
  {
    id: 'expert',
    kind: 'panel',
    name: '전문가 평가',
    weight: 35,
    criteria: [
      { id: 'strategy', name: '전략', weight: 40 },
      { id: 'capability', name: '기술력', weight: 40 },
      { id: 'impact', name: '파급효과', weight: 20 },
    ],
  },
  {
    id: 'user',
    kind: 'panel',
    name: '사용자 평가',
    weight: 25,
    criteria: [
      { id: 'usefulness', name: '활용성', weight: 60 },
      { id: 'cost', name: '비용 효율(모델 크기 포함)', weight: 40 },
    ],
    scaleMax: 10,
  },
];

export function roundBody(teams: readonly TeamFixture[], overrides: Record<string, unknown> = {}) {
  return {
    name: '1차 평가',
    programme: '독자 AI 파운데이션 모델',
    survivors: Math.min(3, teams.length),
    axes: ROUND_AXES,
    suites: [
      { id: 'kmmlu', name: 'KMMLU', group: 'common', protocol: '5-shot, 생성 후 정답 추출' },
      { id: 'hrm8k', name: 'HRM8K', group: 'common' },
      { id: 'nia-heldout', name: 'NIA 비공개 평가셋', group: 'heldout' },
      ...(teams[0]
        ? [{ id: 'team-pick', name: '팀 선택', group: 'team', organizationId: teams[0].organizationId }]
        : []),
    ],
    teams: teams.map((t) => ({
      organizationId: t.organizationId,
      name: t.name,
      productId: t.productId,
      targetModel: t.targetModel,
      parameters: t.parameters,
    })),
    gates: [{ id: 'independence', name: '독자성', description: '가중치를 팀이 직접 초기화하고 학습' }],
    tieBreak: ['axis:benchmark', 'smallerModel', 'lot'],
    ...overrides,
  };
}

export interface TeamPlan {
  /** Percent of its target's score on every suite. */
  percent: number;
  expert: number[];
  user: number[];
  /** Passes the independence gate. */
  independent?: boolean;
}

const REFERENCE: Record<string, number> = { 'global-a': 80, 'global-b': 40 };

/**
 * The completed runs the measured references name (`run_<suite>_<model>`), as the hub's runs would
 * report them: give it to the hub (`hub: { runResults: referenceRuns }`) so a reference by run id is
 * checked against a run, as it is in a hub with evaluation runs.
 */
export const referenceRuns: RunResults = {
  async get(runId) {
    const m = /^run_(.+)_(global-[a-z])$/.exec(runId);
    if (!m) return undefined;
    const model = m[2]!;
    return {
      runId,
      status: 'completed',
      suiteHash: null,
      // a global model's product in the catalogue (references are checked by model, not product)
      productId: `prd_${model}`,
      model,
      score: REFERENCE[model] ?? 50,
      stderr: 0.4,
      n: 1000,
      unparsed: 0,
    };
  },
};
const SUITES = ['kmmlu', 'hrm8k', 'nia-heldout', 'team-pick'];

/** The request bodies that record a plan: references, scores, members, panel scores, gate decisions. */
export function roundInputs(teams: readonly TeamFixture[], plans: readonly TeamPlan[], stderr = 0.5) {
  const targets = [...new Set(teams.map((t) => t.targetModel))];
  const references = targets.flatMap((model) =>
    SUITES.map((suiteId) =>
      model === 'global-a'
        ? {
            suiteId,
            model,
            score: REFERENCE[model],
            source: 'published',
            citation: '공개 모델 카드 / model card, 2025-12',
            url: 'https://example.com/model-card',
            protocol: '5-shot',
          }
        : {
            suiteId,
            model,
            score: REFERENCE[model] ?? 50,
            stderr: 0.4,
            n: 1000,
            source: 'measured',
            runId: `run_${suiteId}_${model}`,
          },
    ),
  );
  const scores = teams.flatMap((t, i) =>
    SUITES.filter((s) => s !== 'team-pick' || i === 0).map((suiteId) => ({
      organizationId: t.organizationId,
      suiteId,
      score: (plans[i]!.percent / 100) * (REFERENCE[t.targetModel] ?? 50),
      stderr,
      n: 1000,
      unparsed: 2,
      note: '허브 평가 실행 결과 / measured through the hub',
    })),
  );
  const expertCount = Math.max(...plans.map((p) => p.expert.length));
  const userCount = Math.max(...plans.map((p) => p.user.length));
  const members = [
    ...Array.from({ length: expertCount }, (_, i) => ({ axisId: 'expert', name: `전문가 ${i + 1}` })),
    ...Array.from({ length: userCount }, (_, i) => ({ axisId: 'user', name: `사용자 ${i + 1}` })),
  ];
  /** Member ids as the hub gave them back, in the order of `members`. */
  const panelScores = (memberIds: readonly string[]) =>
    teams.flatMap((t, i) => [
      ...plans[i]!.expert.map((v, j) => ({
        memberId: memberIds[j]!,
        organizationId: t.organizationId,
        scores: { strategy: v, capability: v, impact: v },
      })),
      ...plans[i]!.user.map((v, j) => ({
        memberId: memberIds[expertCount + j]!,
        organizationId: t.organizationId,
        scores: { usefulness: v, cost: v },
      })),
    ]);
  const decisions = teams.map((t, i) => ({
    gateId: 'independence',
    organizationId: t.organizationId,
    passed: plans[i]!.independent !== false,
    evidence: plans[i]!.independent === false ? '비전 인코더 가중치 출처 분석' : '학습 로그와 체크포인트',
    reason: plans[i]!.independent === false ? '해외 모델의 가중치를 그대로 사용' : '처음부터 학습',
  }));
  return { references, scores, members, panelScores, decisions };
}

const NAMES = ['<script>alert(1)</script> 팀', '에스케이 팀', '업스테이지 팀', '와일드카드 팀'];

/**
 * Two rounds decided on a hub: the first (three teams, two survive) published, the second (its
 * survivors and a wildcard the independence gate disqualifies) closed but not yet published.
 */
export async function publishTwoRounds(t: TestHub, names = NAMES) {
  const must = async (method: string, path: string, body?: unknown) => {
    const r = await t.admin(method, path, body);
    assert.ok(r.status < 300, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  const supplier = await must('POST', '/suppliers', { name: '리더보드 공급기업' });
  const teams: TeamFixture[] = [];
  for (const [i, name] of names.entries()) {
    const org = await must('POST', '/organizations', { name: `${name} ${i}`, class: 'large' });
    const product = await must('POST', '/products', {
      supplierId: supplier.id,
      model: `board-${i}-${Date.now()}`,
      displayName: name,
      purposes: ['chat'],
      modality: 'text',
      contextWindow: 8192,
      priceInputPer1M: '1',
      priceOutputPer1M: '1',
      residency: 'domestic',
    });
    teams.push({
      organizationId: org.id,
      productId: product.id,
      name,
      targetModel: i === 0 ? 'global-b' : 'global-a',
      parameters: (i + 1) * 1e10,
    });
  }
  const decide = async (roundId: string, fixtures: TeamFixture[], plans: TeamPlan[]) => {
    const inputs = roundInputs(fixtures, plans);
    await must('POST', `/rounds/${roundId}/open`);
    await must('POST', `/rounds/${roundId}/references`, { references: inputs.references });
    await must('POST', `/rounds/${roundId}/scores`, { scores: inputs.scores });
    const members = await must('POST', `/rounds/${roundId}/panel-members`, { members: inputs.members });
    await must('POST', `/rounds/${roundId}/panel-scores`, {
      scores: inputs.panelScores(members.data.map((m: any) => m.id)),
    });
    await must('POST', `/rounds/${roundId}/gate-decisions`, { decisions: inputs.decisions });
    return must('POST', `/rounds/${roundId}/close`);
  };
  const first = teams.slice(0, 3);
  const round1 = await must('POST', '/rounds', roundBody(first, { survivors: 2 }));
  await decide(round1.id, first, [
    { percent: 97, expert: [90, 91, 89], user: [9, 9] },
    { percent: 93, expert: [85, 86, 84], user: [8.5, 8.5] },
    { percent: 80, expert: [70, 71, 69], user: [7, 7] },
  ]);
  await must('POST', `/rounds/${round1.id}/publish`);
  const second = [teams[0]!, teams[1]!, teams[3]!];
  const round2 = await must('POST', '/rounds', {
    ...roundBody(second, { survivors: 2, name: '2차 평가', previousRoundId: round1.id }),
    teams: roundBody(second).teams.map((x, i) => (i === 2 ? { ...x, entry: 'wildcard' } : x)),
  });
  await decide(round2.id, second, [
    { percent: 101, expert: [92, 93, 91], user: [9.2, 9.2] },
    { percent: 96, expert: [88, 87, 89], user: [8.8, 8.8] },
    { percent: 85, expert: [75, 76, 74], user: [7.5, 7.5], independent: false },
  ]);
  return { teams, round1: round1.id as string, round2: round2.id as string, must };
}
