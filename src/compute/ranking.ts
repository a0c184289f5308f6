/**
 * Ranking and selection of a call's applications (docs/compute.md "Review and selection"), pure: the
 * service (compute/selection.ts) loads the candidates and what is committed already, under the pools'
 * locks, and writes back what this decides.
 *
 * - Score: the mean of the reviewers' weighted scores (0–100, kept in centipoints, the mean rounded
 *   half up to a centipoint) plus the call's bonuses (e.g. +5 points for an applicant outside the
 *   capital region).
 * - Order: score, highest first; ties broken by the call's declared keys in order, then by the
 *   application id, so the order is total and the same on every run.
 * - Fill: in that order, each application is selected when, on every day of its period, its GPUs fit
 *   in the pool, in the call's capacity and in its track's capacity, counting what is committed
 *   already and what this run selected before it; otherwise it goes to the waiting list with the
 *   first day and the limit that did not fit. An application overlapping an allocation its
 *   organisation holds on the same pool is rejected: one organisation, one grant per pool at a time.
 */

import { dayText } from '../kst.ts';

export const TIE_BREAKS = ['earlier_submission', 'fewer_gpus', 'more_gpus', 'non_capital_first'] as const;
/** A declared key: one of TIE_BREAKS, or `criterion:<id>` (the higher mean score on that criterion wins). */
export type TieBreak = (typeof TIE_BREAKS)[number] | `criterion:${string}`;

export interface Bonuses {
  /** Points added for an applicant outside the capital region. */
  nonCapitalRegion?: number;
}

export interface Candidate {
  id: string;
  organizationId: string;
  poolId: string;
  trackId: string;
  gpus: number;
  /** KST day numbers; `endDay` exclusive. */
  startDay: number;
  endDay: number;
  region: 'capital' | 'non_capital';
  submittedAt: number;
  reviews: number;
  /** Σ of the reviews' weighted centipoints. */
  totalCentipoints: number;
  /** Per criterion, the mean score (for `criterion:` tie-breaks). */
  criterionMeans: Record<string, number>;
}

export interface Ranked extends Candidate {
  rank: number;
  /** Mean weighted score plus bonuses, in centipoints (8750 = 87.50 points). */
  scoreCentipoints: number;
  bonusCentipoints: number;
}

export function scoreOf(c: Candidate, bonuses: Bonuses): { score: number; bonus: number } {
  const mean = c.reviews === 0 ? 0 : Math.round(c.totalCentipoints / c.reviews);
  const bonus = c.region === 'non_capital' ? Math.round((bonuses.nonCapitalRegion ?? 0) * 100) : 0;
  return { score: mean + bonus, bonus };
}

function compareBy(key: TieBreak, a: Ranked, b: Ranked): number {
  switch (key) {
    case 'earlier_submission':
      return a.submittedAt - b.submittedAt;
    case 'fewer_gpus':
      return a.gpus - b.gpus;
    case 'more_gpus':
      return b.gpus - a.gpus;
    case 'non_capital_first':
      return (a.region === 'non_capital' ? 0 : 1) - (b.region === 'non_capital' ? 0 : 1);
    default: {
      const criterion = key.slice('criterion:'.length);
      return (b.criterionMeans[criterion] ?? 0) - (a.criterionMeans[criterion] ?? 0);
    }
  }
}

/** The candidates in rank order (1 = best). */
export function rank(
  candidates: readonly Candidate[],
  bonuses: Bonuses,
  tieBreak: readonly TieBreak[],
): Ranked[] {
  const ranked: Ranked[] = candidates.map((c) => {
    const { score, bonus } = scoreOf(c, bonuses);
    return { ...c, rank: 0, scoreCentipoints: score, bonusCentipoints: bonus };
  });
  ranked.sort((a, b) => {
    if (a.scoreCentipoints !== b.scoreCentipoints) return b.scoreCentipoints - a.scoreCentipoints;
    for (const key of tieBreak) {
      const d = compareBy(key, a, b);
      if (d !== 0) return d;
    }
    return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  });
  ranked.forEach((r, i) => {
    r.rank = i + 1;
  });
  return ranked;
}

/** GPUs committed per day over a span of days, against a limit. */
export class DayLoad {
  private readonly used: Int32Array;
  constructor(
    readonly label: string,
    readonly limit: number,
    private readonly firstDay: number,
    endDay: number,
  ) {
    this.used = new Int32Array(Math.max(0, endDay - firstDay));
  }

  add(startDay: number, endDay: number, gpus: number): void {
    const from = Math.max(startDay, this.firstDay) - this.firstDay;
    const to = Math.min(endDay - this.firstDay, this.used.length);
    for (let i = from; i < to; i++) this.used[i]! += gpus;
  }

  /** The first day on which `gpus` more would pass the limit, with what was free that day; or null. */
  firstShortfall(startDay: number, endDay: number, gpus: number): { day: number; free: number } | null {
    const from = Math.max(startDay, this.firstDay) - this.firstDay;
    const to = Math.min(endDay - this.firstDay, this.used.length);
    for (let i = from; i < to; i++)
      if (this.used[i]! + gpus > this.limit)
        return { day: i + this.firstDay, free: this.limit - this.used[i]! };
    return null;
  }

  /** The most GPUs free on every day of the span. */
  freeOver(startDay: number, endDay: number): number {
    let free = this.limit;
    const from = Math.max(startDay, this.firstDay) - this.firstDay;
    const to = Math.min(endDay - this.firstDay, this.used.length);
    for (let i = from; i < to; i++) free = Math.min(free, this.limit - this.used[i]!);
    return free;
  }
}

/** An allocation that already holds GPUs (any call's), as selection counts it. */
export interface Commitment {
  organizationId: string;
  poolId: string;
  callId: string;
  trackId: string;
  gpus: number;
  startDay: number;
  endDay: number;
}

export interface Limits {
  /** Each pool's GPU count. */
  pools: ReadonlyMap<string, number>;
  callId: string;
  callCapacity: number;
  /** Track id → its own capacity in GPUs, where it has one. */
  trackCapacity: ReadonlyMap<string, number>;
}

export type Decision = 'selected' | 'waitlisted' | 'rejected';

export interface Outcome {
  candidate: Ranked;
  decision: Decision;
  /** `한국어 / English`. */
  reason: string;
}

const points = (centipoints: number) => (centipoints / 100).toFixed(2);

/**
 * Everything that holds GPUs in the days the candidates ask for, as loads (pool, call, track) and
 * each organisation's periods per pool; `commit` adds a selection to all of them.
 */
export class Ledger {
  readonly pools = new Map<string, DayLoad>();
  readonly call: DayLoad;
  readonly tracks = new Map<string, DayLoad>();
  private readonly busy = new Map<string, [number, number][]>();

  constructor(
    private readonly limits: Limits,
    firstDay: number,
    endDay: number,
    commitments: readonly Commitment[],
  ) {
    for (const [id, count] of limits.pools)
      this.pools.set(id, new DayLoad(`pool ${id}`, count, firstDay, endDay));
    this.call = new DayLoad('call', limits.callCapacity, firstDay, endDay);
    for (const [id, capacity] of limits.trackCapacity)
      this.tracks.set(id, new DayLoad(`track ${id}`, capacity, firstDay, endDay));
    for (const c of commitments) this.commit(c);
  }

  commit(c: Commitment): void {
    this.pools.get(c.poolId)?.add(c.startDay, c.endDay, c.gpus);
    if (c.callId === this.limits.callId) {
      this.call.add(c.startDay, c.endDay, c.gpus);
      this.tracks.get(c.trackId)?.add(c.startDay, c.endDay, c.gpus);
    }
    const key = `${c.organizationId}\u0000${c.poolId}`;
    const list = this.busy.get(key);
    if (list) list.push([c.startDay, c.endDay]);
    else this.busy.set(key, [[c.startDay, c.endDay]]);
  }

  overlaps(
    organizationId: string,
    poolId: string,
    startDay: number,
    endDay: number,
  ): [number, number] | null {
    for (const span of this.busy.get(`${organizationId}\u0000${poolId}`) ?? [])
      if (span[0] < endDay && startDay < span[1]) return span;
    return null;
  }

  /** Why these GPUs do not fit in the period, or null when they do. */
  shortfall(
    poolId: string,
    trackId: string,
    startDay: number,
    endDay: number,
    gpus: number,
  ): { korean: string; english: string } | null {
    const pool = this.pools.get(poolId);
    if (!pool)
      return {
        korean: `풀 ${poolId}이(가) 이 공모에 없습니다`,
        english: `pool ${poolId} is not in this call`,
      };
    const checks: [DayLoad | undefined, string, string][] = [
      [pool, `풀 ${poolId}`, `pool ${poolId}`],
      [this.call, '공모 정원', "the call's capacity"],
      [this.tracks.get(trackId), `트랙 ${trackId} 정원`, `track ${trackId}'s capacity`],
    ];
    for (const [load, ko, en] of checks) {
      if (!load) continue;
      const short = load.firstShortfall(startDay, endDay, gpus);
      if (short)
        return {
          korean: `${dayText(short.day)}에 ${ko}의 남은 GPU ${short.free}개로 ${gpus}개를 줄 수 없습니다`,
          english: `on ${dayText(short.day)} ${en} has ${short.free} GPUs free, ${gpus} asked`,
        };
    }
    return null;
  }
}

/** Decides every ranked candidate in order against the ledger (which it updates). */
export function fill(ranked: readonly Ranked[], ledger: Ledger, callId: string): Outcome[] {
  const out: Outcome[] = [];
  for (const c of ranked) {
    const head = `${c.rank}위, 점수 ${points(c.scoreCentipoints)}${c.bonusCentipoints > 0 ? ` (가점 ${points(c.bonusCentipoints)} 포함)` : ''} / rank ${c.rank}, score ${points(c.scoreCentipoints)}${c.bonusCentipoints > 0 ? ` incl. bonus ${points(c.bonusCentipoints)}` : ''}`;
    const overlap = ledger.overlaps(c.organizationId, c.poolId, c.startDay, c.endDay);
    if (overlap) {
      out.push({
        candidate: c,
        decision: 'rejected',
        reason: `${head}: 같은 풀에 기간이 겹치는 배정(${dayText(overlap[0])}~${dayText(overlap[1] - 1)})이 있습니다 / it overlaps the organization's allocation on the same pool (${dayText(overlap[0])}..${dayText(overlap[1] - 1)})`,
      });
      continue;
    }
    const short = ledger.shortfall(c.poolId, c.trackId, c.startDay, c.endDay, c.gpus);
    if (short) {
      out.push({
        candidate: c,
        decision: 'waitlisted',
        reason: `${head}: 대기 — ${short.korean} / waiting list: ${short.english}`,
      });
      continue;
    }
    ledger.commit({ ...c, callId });
    out.push({
      candidate: c,
      decision: 'selected',
      reason: `${head}: 순위대로 정원 안에 들어 선정 / selected in rank order within capacity`,
    });
  }
  return out;
}
