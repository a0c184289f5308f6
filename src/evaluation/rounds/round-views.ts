import { type Principal, readableOrganizations } from '../../accounts/roles.ts';
import { suitesOf } from './definition.ts';
import type { RoundInputs } from './round-result.ts';
import type { Round } from './rounds.ts';

/**
 * Who sees what of a round (docs/evaluation-rounds.md#who-sees-what). The operator and evaluators see
 * everything, always. Once the operator publishes a round everyone sees its definition, benchmark
 * scores, references, gate decisions and result (never a panel member's own scores). Before that, a
 * team's people — an organisation's admins and members — see the round and their own team only: not
 * which other teams there are, their suites, their scores or any result; anyone else sees nothing.
 */
export type Audience =
  | { kind: 'manager' }
  | { kind: 'public' }
  | { kind: 'team'; organizations: ReadonlySet<string> };

export const isRoundManager = (p: Principal) => p.operator || p.evaluator;

/** Null: the round does not exist for this caller (answered as a nonexistent id). */
export function audienceOf(p: Principal | null, round: Round): Audience | null {
  if (p !== null && isRoundManager(p)) return { kind: 'manager' };
  if (round.publishedAt !== null) return { kind: 'public' };
  if (p === null) return null;
  const own = new Set(
    readableOrganizations(p).filter((o) => round.definition.teams.some((t) => t.organizationId === o)),
  );
  return own.size > 0 ? { kind: 'team', organizations: own } : null;
}

function header(round: Round) {
  return {
    id: round.id,
    name: round.name,
    programme: round.programme,
    sequence: round.sequence,
    previousRoundId: round.previousRoundId,
    status: round.status,
    createdAt: round.createdAt,
    openedAt: round.openedAt,
    closedAt: round.closedAt,
    publishedAt: round.publishedAt,
  };
}

/** One line of a list: what the caller may know of the round without opening it. */
export function roundSummary(round: Round, audience: Audience) {
  const teams =
    audience.kind === 'team'
      ? round.definition.teams.filter((t) => audience.organizations.has(t.organizationId))
      : round.definition.teams;
  return {
    ...header(round),
    survivors: round.definition.survivors,
    teams: teams.map((t) => ({ organizationId: t.organizationId, name: t.name })),
  };
}

/** The round as this audience may see it, with what was recorded for it. */
export function roundView(round: Round, inputs: RoundInputs, audience: Audience) {
  const d = round.definition;
  if (audience.kind === 'team') {
    const mine = d.teams.filter((t) => audience.organizations.has(t.organizationId));
    const suites = new Map(mine.flatMap((t) => suitesOf(d, t.organizationId)).map((s) => [s.id, s]));
    const targets = new Set(mine.map((t) => t.targetModel));
    return {
      ...header(round),
      definition: { ...d, teams: mine, suites: [...suites.values()] },
      references: inputs.references.filter((r) => suites.has(r.suiteId) && targets.has(r.model)),
      scores: inputs.scores.filter((s) => audience.organizations.has(s.organizationId)),
    };
  }
  const view = {
    ...header(round),
    definition: d,
    references: inputs.references,
    scores: inputs.scores,
    gateDecisions: inputs.gateDecisions,
  };
  if (audience.kind === 'public') return view;
  // evaluators: who sits on which panel and their declared conflicts (their scores: /panel-scores)
  return { ...view, panelMembers: inputs.members };
}
