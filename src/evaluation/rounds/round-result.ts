import { seededRandom, seedOf } from '../seeded-random.ts';
import {
  type BenchmarkAxis,
  type PanelAxis,
  type RoundDefinition,
  type RoundTeam,
  SUITE_GROUPS,
  suitesOf,
  type TieBreakKey,
} from './definition.ts';
import { type Estimate, meanEstimate, normalEstimate, overlaps } from './statistics.ts';

/**
 * A round's result from its definition and what was recorded for it (docs/evaluation-rounds.md#result):
 * a pure function, so the preview an evaluator reads, the result a close stores and the tests all
 * compute the same thing.
 */

export interface ReferenceRow {
  suiteId: string;
  /** The global model this row measures: a team's declared target. */
  model: string;
  score: number;
  stderr: number | null;
  n: number | null;
  /** measured: through the hub (a run); published: a figure from a paper or a model card. */
  source: 'measured' | 'published';
  runId: string | null;
  citation: string | null;
  url: string | null;
  protocol: string | null;
  suiteHash: string | null;
}

export interface BenchmarkScore {
  organizationId: string;
  suiteId: string;
  score: number;
  stderr: number | null;
  n: number | null;
  unparsed: number | null;
  suiteHash: string | null;
  runId: string | null;
  note: string | null;
}

export interface PanelMember {
  id: string;
  axisId: string;
  name: string;
  /** Organisations (teams) this member declared a conflict of interest with. */
  conflicts: string[];
}

export interface PanelScore {
  memberId: string;
  organizationId: string;
  /** Criterion id → score on the axis's scale. */
  scores: Record<string, number>;
}

export interface GateDecision {
  gateId: string;
  organizationId: string;
  passed: boolean;
  evidence: string;
  reason: string;
}

export interface RoundInputs {
  references: readonly ReferenceRow[];
  scores: readonly BenchmarkScore[];
  members: readonly PanelMember[];
  panelScores: readonly PanelScore[];
  gateDecisions: readonly GateDecision[];
}

export interface SuiteResult {
  suiteId: string;
  group: (typeof SUITE_GROUPS)[number];
  score: number;
  stderr: number | null;
  n: number | null;
  unparsed: number | null;
  reference: { model: string; score: number; stderr: number | null; source: ReferenceRow['source'] };
  /** 100 · score / reference, with its standard error (delta method, both errors). */
  percent: number;
  percentStderr: number;
}

export interface BenchmarkResult {
  suites: SuiteResult[];
  /** Weighted over the suite groups, each group's suites averaged first. */
  percentOfReference: Estimate;
  reachesThreshold: boolean;
}

export interface AxisResult {
  axisId: string;
  /** 0–100. */
  score: Estimate;
  /** Panel axes: members whose scores count, and those set aside for a declared conflict. */
  members?: number;
  excludedForConflict?: number;
}

export type TeamStatus = 'survives' | 'eliminated' | 'disqualified' | 'pending';
/**
 * gate: a failed gate; interval: separated from the cut by its interval; tie-break: not separated,
 * placed by the round's tie-break; score: no contest at the cut (no more qualified teams than seats).
 */
export type DecidedBy = 'gate' | 'score' | 'interval' | 'tie-break' | 'pending';

export interface TeamResult {
  organizationId: string;
  name: string;
  productId: string;
  targetModel: string;
  parameters: number | null;
  entry: RoundTeam['entry'] | null;
  benchmark: BenchmarkResult | null;
  axes: AxisResult[];
  /** The weighted score (0–100) with its interval; null while something is missing. */
  overall: Estimate | null;
  gates: { gateId: string; passed: boolean; evidence: string; reason: string }[];
  /** 1 + the number of qualified teams better beyond doubt; null for the disqualified and incomplete. */
  rank: number | null;
  status: TeamStatus;
  decidedBy: DecidedBy;
  /** What is still missing before the round can close. */
  missing: string[];
}

export interface RoundResult {
  complete: boolean;
  threshold: number;
  survivors: number;
  /** Qualified teams by weighted score, then the disqualified. */
  teams: TeamResult[];
  cut: {
    /** The last survivor and the first eliminated were separated by their intervals. */
    separated: boolean;
    /** Teams not separated from the cut, in tie-break order: the round's tie-break chose among them. */
    tieGroup: string[];
    tieBreak: TieBreakKey[];
    /** The tie-break could not separate these (a round should end its tie-break with `lot`). */
    unresolved: string[];
  } | null;
  missing: string[];
}

const FAILED_GATE_FIRST = (a: GateDecision, b: GateDecision) => Number(a.passed) - Number(b.passed);

function benchmarkOf(
  d: RoundDefinition,
  axis: BenchmarkAxis,
  team: RoundTeam,
  inputs: RoundInputs,
  missing: string[],
): { result: BenchmarkResult; axis: AxisResult } | null {
  const suites: SuiteResult[] = [];
  for (const suite of suitesOf(d, team.organizationId)) {
    const score = inputs.scores.find(
      (s) => s.organizationId === team.organizationId && s.suiteId === suite.id,
    );
    const reference = inputs.references.find((r) => r.suiteId === suite.id && r.model === team.targetModel);
    if (!score) missing.push(`score:${suite.id}`);
    if (!reference) missing.push(`reference:${suite.id}:${team.targetModel}`);
    if (!score || !reference) continue;
    const ratio = score.score / reference.score;
    const relScore = (score.stderr ?? 0) / reference.score;
    const relReference = (ratio * (reference.stderr ?? 0)) / reference.score;
    suites.push({
      suiteId: suite.id,
      group: suite.group,
      score: score.score,
      stderr: score.stderr,
      n: score.n,
      unparsed: score.unparsed,
      reference: {
        model: reference.model,
        score: reference.score,
        stderr: reference.stderr,
        source: reference.source,
      },
      percent: 100 * ratio,
      percentStderr: 100 * Math.sqrt(relScore ** 2 + relReference ** 2),
    });
  }
  if (suites.length !== suitesOf(d, team.organizationId).length) return null;
  let weightSum = 0;
  let value = 0;
  let variance = 0;
  const groups = SUITE_GROUPS.map((group) => ({ group, members: suites.filter((s) => s.group === group) }))
    .filter((g) => g.members.length > 0 && axis.groupWeights[g.group] > 0)
    .map((g) => ({ ...g, weight: axis.groupWeights[g.group] }));
  for (const g of groups) weightSum += g.weight;
  for (const g of groups) {
    const m = g.members.length;
    const share = g.weight / weightSum;
    value += (share * g.members.reduce((s, x) => s + x.percent, 0)) / m;
    variance += (share / m) ** 2 * g.members.reduce((s, x) => s + x.percentStderr ** 2, 0);
  }
  const percentOfReference = normalEstimate(value, Math.sqrt(variance));
  const cap = axis.capPercent;
  // above the cap the axis is full; its uncertainty counts only while the cap lies inside the interval
  const capped =
    cap === null || value < cap
      ? percentOfReference
      : percentOfReference.lower >= cap
        ? normalEstimate(cap, 0)
        : normalEstimate(cap, percentOfReference.stderr);
  return {
    result: { suites, percentOfReference, reachesThreshold: value >= d.threshold },
    axis: { axisId: axis.id, score: capped },
  };
}

function panelOf(
  axis: PanelAxis,
  team: RoundTeam,
  inputs: RoundInputs,
  missing: string[],
): AxisResult | null {
  const members = inputs.members.filter((m) => m.axisId === axis.id);
  const totals: number[] = [];
  let excluded = 0;
  for (const member of members) {
    const score = inputs.panelScores.find(
      (s) => s.memberId === member.id && s.organizationId === team.organizationId,
    );
    if (!score) continue;
    if (member.conflicts.includes(team.organizationId)) {
      excluded++;
      continue;
    }
    const weighted = axis.criteria.reduce((s, c) => s + c.weight * (score.scores[c.id] ?? 0), 0);
    totals.push((100 * weighted) / (100 * axis.scaleMax));
  }
  if (totals.length < axis.minMembers) {
    missing.push(`panel:${axis.id} (${totals.length}/${axis.minMembers})`);
    return null;
  }
  return {
    axisId: axis.id,
    score: meanEstimate(totals),
    members: totals.length,
    excludedForConflict: excluded,
  };
}

/** A tie-break key's value for a team; higher wins (sizes and lots are turned so that they do too). */
function tieValue(key: TieBreakKey, team: TeamResult, seed: string): number {
  if (key === 'overall') return team.overall?.value ?? Number.NEGATIVE_INFINITY;
  if (key === 'percentOfReference')
    return team.benchmark?.percentOfReference.value ?? Number.NEGATIVE_INFINITY;
  if (key === 'smallerModel') return -(team.parameters ?? Number.POSITIVE_INFINITY);
  if (key === 'lot') return seededRandom(seedOf(`${seed}:${team.organizationId}`))();
  const axisId = key.slice('axis:'.length);
  return team.axes.find((a) => a.axisId === axisId)?.score.value ?? Number.NEGATIVE_INFINITY;
}

const EPSILON = 1e-9;

/** Orders by the tie-break keys; `undefined` where two teams are equal on every key. */
function compareByTieBreak(keys: readonly TieBreakKey[], seed: string) {
  return (a: TeamResult, b: TeamResult): number | undefined => {
    for (const key of keys) {
      const diff = tieValue(key, b, seed) - tieValue(key, a, seed);
      if (Math.abs(diff) > EPSILON) return diff;
    }
    return undefined;
  };
}

/**
 * `seed`: what the `lot` tie-break draws with (the round's id), so the draw is fixed before any score
 * exists and the same on every replica.
 */
export function computeRoundResult(d: RoundDefinition, inputs: RoundInputs, seed: string): RoundResult {
  const teams: TeamResult[] = d.teams.map((team) => {
    const missing: string[] = [];
    let benchmark: BenchmarkResult | null = null;
    const axes: AxisResult[] = [];
    for (const axis of d.axes) {
      if (axis.kind === 'benchmark') {
        const b = benchmarkOf(d, axis, team, inputs, missing);
        if (b) {
          benchmark = b.result;
          axes.push(b.axis);
        }
      } else {
        const p = panelOf(axis, team, inputs, missing);
        if (p) axes.push(p);
      }
    }
    const decisions = inputs.gateDecisions
      .filter((g) => g.organizationId === team.organizationId)
      .sort(FAILED_GATE_FIRST);
    for (const gate of d.gates)
      if (!decisions.some((g) => g.gateId === gate.id)) missing.push(`gate:${gate.id}`);
    const disqualified = decisions.some((g) => !g.passed);
    let overall: Estimate | null = null;
    if (axes.length === d.axes.length) {
      let value = 0;
      let variance = 0;
      for (const axis of d.axes) {
        const a = axes.find((x) => x.axisId === axis.id)!;
        value += (axis.weight / 100) * a.score.value;
        variance += (axis.weight / 100) ** 2 * a.score.stderr ** 2;
      }
      overall = normalEstimate(value, Math.sqrt(variance));
    }
    return {
      organizationId: team.organizationId,
      name: team.name,
      productId: team.productId,
      targetModel: team.targetModel,
      parameters: team.parameters ?? null,
      entry: team.entry ?? null,
      benchmark,
      axes,
      overall,
      gates: decisions.map(({ gateId, passed, evidence, reason }) => ({ gateId, passed, evidence, reason })),
      rank: null,
      // a failed gate decides alone: what else is missing no longer matters for this team
      status: disqualified ? 'disqualified' : 'pending',
      decidedBy: disqualified ? 'gate' : 'pending',
      missing: disqualified ? [] : missing,
    };
  });

  const tieOrder = compareByTieBreak(d.tieBreak, seed);
  const byScore = (a: TeamResult, b: TeamResult) =>
    (b.overall?.value ?? 0) - (a.overall?.value ?? 0) || (tieOrder(a, b) ?? 0);
  const qualified = teams.filter((t) => t.status !== 'disqualified').sort(byScore);
  const disqualified = teams.filter((t) => t.status === 'disqualified');
  const missing = teams.flatMap((t) => t.missing.map((m) => `${t.organizationId}: ${m}`));
  const complete = missing.length === 0;
  const ordered = [...qualified, ...disqualified];
  if (!complete)
    return { complete, threshold: d.threshold, survivors: d.survivors, teams: ordered, cut: null, missing };

  const intervals = qualified.map((t) => t.overall!);
  qualified.forEach((t) => {
    t.rank = 1 + intervals.filter((o) => o.lower > t.overall!.upper).length;
  });
  const seats = d.survivors;
  if (qualified.length <= seats) {
    for (const t of qualified) {
      t.status = 'survives';
      t.decidedBy = 'score';
    }
    return {
      complete,
      threshold: d.threshold,
      survivors: d.survivors,
      teams: ordered,
      cut: { separated: true, tieGroup: [], tieBreak: d.tieBreak, unresolved: [] },
      missing,
    };
  }
  const lastIn = qualified[seats - 1]!.overall!;
  const firstOut = qualified[seats]!.overall!;
  // clearly in: above the line and above the best team below it beyond doubt; clearly out likewise
  const clearlyIn = qualified.filter((t, i) => i < seats && t.overall!.lower > firstOut.upper);
  const clearlyOut = qualified.filter((t, i) => i >= seats && t.overall!.upper < lastIn.lower);
  const tieGroup = qualified.filter((t) => !clearlyIn.includes(t) && !clearlyOut.includes(t));
  for (const t of clearlyIn) {
    t.status = 'survives';
    t.decidedBy = 'interval';
  }
  for (const t of clearlyOut) {
    t.status = 'eliminated';
    t.decidedBy = 'interval';
  }
  const separated = !overlaps(lastIn, firstOut);
  const openSeats = seats - clearlyIn.length;
  const tied = [...tieGroup].sort((a, b) => tieOrder(a, b) ?? 0);
  const unresolved = new Set<string>();
  tied.forEach((t, i) => {
    t.status = i < openSeats ? 'survives' : 'eliminated';
    // a tie group that the cut does not split (all in, or all out) was decided by score alone
    t.decidedBy = openSeats > 0 && openSeats < tied.length ? 'tie-break' : 'score';
  });
  if (openSeats > 0 && openSeats < tied.length) {
    const a = tied[openSeats - 1]!;
    const b = tied[openSeats]!;
    if (tieOrder(a, b) === undefined) {
      unresolved.add(a.organizationId);
      unresolved.add(b.organizationId);
    }
  }
  return {
    complete,
    threshold: d.threshold,
    survivors: d.survivors,
    teams: ordered,
    cut: {
      separated,
      tieGroup: tied.map((t) => t.organizationId),
      tieBreak: d.tieBreak,
      unresolved: [...unresolved],
    },
    missing,
  };
}
