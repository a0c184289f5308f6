import type { ArenaService } from '../ratings/arenas.ts';
import type { Rating } from '../ratings/bradley-terry.ts';
import type { RoundService } from './rounds.ts';
import type { Estimate } from './statistics.ts';

/**
 * The public leaderboard (docs/evaluation-rounds.md#leaderboard): published rounds only, as they were
 * decided, oldest first, each team's path across them, and the public arenas' ratings. No one signs in
 * to read it, so it carries nothing a published round does not already say — no panel member, no
 * individual panel score, no unpublished round, no private arena.
 */

export interface LeaderboardTeam {
  organizationId: string;
  name: string;
  productId: string;
  targetModel: string;
  entry: string | null;
  rank: number | null;
  status: string;
  decidedBy: string;
  overall: Estimate | null;
  percentOfReference: Estimate | null;
  reachesThreshold: boolean | null;
  axes: { axisId: string; score: Estimate }[];
  /** Gates it failed, with the reason and evidence the round recorded. */
  failedGates: { gateId: string; name: string; reason: string; evidence: string }[];
}

export interface LeaderboardRound {
  id: string;
  name: string;
  programme: string | null;
  sequence: number;
  closedAt: string | null;
  publishedAt: string | null;
  threshold: number;
  survivors: number;
  axes: { id: string; name: string; weight: number }[];
  tieBreak: string[];
  tieGroup: string[];
  teams: LeaderboardTeam[];
}

export interface LeaderboardSeries {
  organizationId: string;
  name: string;
  points: { roundId: string; sequence: number; overall: number | null; percentOfReference: number | null }[];
}

export interface LeaderboardArena {
  id: string;
  name: string;
  description: string | null;
  judgeModel: string | null;
  battles: number;
  bootstrap: number;
  ratings: Rating[];
}

export interface Leaderboard {
  generatedAt: string;
  rounds: LeaderboardRound[];
  series: LeaderboardSeries[];
  arenas: LeaderboardArena[];
}

export async function buildLeaderboard(rounds: RoundService, arenas: ArenaService): Promise<Leaderboard> {
  const published = await rounds.published();
  const out: LeaderboardRound[] = published.map(({ round, closure }) => {
    const d = closure.definition;
    return {
      id: round.id,
      name: round.name,
      programme: round.programme,
      sequence: round.sequence,
      closedAt: round.closedAt,
      publishedAt: round.publishedAt,
      threshold: d.threshold,
      survivors: d.survivors,
      axes: d.axes.map((a) => ({ id: a.id, name: a.name, weight: a.weight })),
      tieBreak: d.tieBreak,
      tieGroup: closure.result.cut?.tieGroup ?? [],
      teams: closure.result.teams.map((t) => ({
        organizationId: t.organizationId,
        name: t.name,
        productId: t.productId,
        targetModel: t.targetModel,
        entry: t.entry ?? null,
        rank: t.rank,
        status: t.status,
        decidedBy: t.decidedBy,
        overall: t.overall,
        percentOfReference: t.benchmark?.percentOfReference ?? null,
        reachesThreshold: t.benchmark ? t.benchmark.reachesThreshold : null,
        axes: t.axes.map((a) => ({ axisId: a.axisId, score: a.score })),
        failedGates: t.gates
          .filter((g) => !g.passed)
          .map((g) => ({
            gateId: g.gateId,
            name: d.gates.find((x) => x.id === g.gateId)?.name ?? g.gateId,
            reason: g.reason,
            evidence: g.evidence,
          })),
      })),
    };
  });

  const series = new Map<string, LeaderboardSeries>();
  for (const round of out)
    for (const t of round.teams) {
      let s = series.get(t.organizationId);
      if (!s) {
        s = { organizationId: t.organizationId, name: t.name, points: [] };
        series.set(t.organizationId, s);
      }
      s.name = t.name;
      s.points.push({
        roundId: round.id,
        sequence: round.sequence,
        overall: t.overall?.value ?? null,
        percentOfReference: t.percentOfReference?.value ?? null,
      });
    }

  const publicArenas: LeaderboardArena[] = [];
  for (const arena of await arenas.list(true)) {
    // a large arena gets fewer resamples rather than an error
    const rated = await arenas.ratings(arena.id, {}, { fewerResamplesIfCostly: true });
    publicArenas.push({
      id: arena.id,
      name: arena.name,
      description: arena.description,
      judgeModel: arena.judgeModel,
      battles: rated.battles,
      bootstrap: rated.bootstrap,
      ratings: rated.ratings,
    });
  }
  return {
    generatedAt: new Date().toISOString(),
    rounds: out,
    series: [...series.values()],
    arenas: publicArenas,
  };
}
