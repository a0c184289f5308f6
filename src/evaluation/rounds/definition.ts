import { z } from 'zod';

/**
 * What a round (평가 차수) declares before anything is scored (docs/evaluation-rounds.md): its teams
 * (an organisation each, with the product it enters and the global model it declares as its target),
 * its axes with weights, the benchmark suites (a common set, the operator's held-out suites, and up to
 * `maxTeamSuites` each team chooses), the gates that override rank, how many teams survive and the
 * tie-break used where a team is not separated from the next by its interval. Fixed when the round
 * opens: nothing a team could tune after seeing scores.
 */

export const slug = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,39}$/, 'lowercase letters, digits, - and _ (at most 40)');
const name = z.string().trim().min(1).max(200);
const text = z.string().trim().min(1).max(4000);
/** A model's name as its supplier spells it (a global model need not be in the catalogue). */
export const modelName = z
  .string()
  .trim()
  .min(1)
  .max(200)
  .regex(/^[^\s/][^\s]*$/, 'a model name without spaces');
const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256 in lowercase hex');

const criterion = z.strictObject({ id: slug, name, weight: z.number().int().min(1).max(100) });

const weight = z.number().int().min(1).max(100);

const benchmarkAxis = z.strictObject({
  id: slug,
  kind: z.literal('benchmark'),
  name,
  weight,
  /** How the three kinds of suite weigh within the axis (each kind's suites averaged first). */
  groupWeights: z
    .strictObject({
      common: z.number().min(0).max(100),
      heldout: z.number().min(0).max(100),
      team: z.number().min(0).max(100),
    })
    .default({ common: 1, heldout: 1, team: 1 }),
  /**
   * The axis scores percent of reference up to this (100: matching the target model earns the whole
   * axis; beating it earns no more); null: no cap.
   */
  capPercent: z.number().positive().max(1000).nullable().default(100),
});

const panelAxis = z.strictObject({
  id: slug,
  kind: z.literal('panel'),
  name,
  weight,
  /** The rubric: each member scores each team on every criterion, from 0 to `scaleMax`. */
  criteria: z
    .array(criterion)
    .min(1)
    .max(20)
    .superRefine((criteria, ctx) => {
      unique(criteria, 'id', ctx);
      const total = criteria.reduce((s, c) => s + c.weight, 0);
      if (total !== 100)
        ctx.addIssue({ code: 'custom', message: `weights must sum to 100 (they sum to ${total})` });
    }),
  scaleMax: z.number().positive().max(1000).default(100),
  /** Members whose scores must count (conflicted ones excluded) for the axis to be complete. */
  minMembers: z.number().int().min(1).max(1000).default(1),
});

const axis = z.discriminatedUnion('kind', [benchmarkAxis, panelAxis]);

export const SUITE_GROUPS = ['common', 'heldout', 'team'] as const;

const suite = z.strictObject({
  id: slug,
  name,
  /** common: every team; heldout: the operator's own, every team; team: chosen by `organizationId`. */
  group: z.enum(SUITE_GROUPS),
  organizationId: z.string().min(1).max(100).optional(),
  /** The suite's content hash: scores and measured references must name the same one. */
  suiteHash: sha256Hex.optional(),
  /** How it is run (shots, template, temperature, judge): the protocol every number must follow. */
  protocol: text.optional(),
  /**
   * The top of its scale (1 for accuracy as runs report it, 100 for percent, 10 for a judge): a score or
   * reference above it is refused, so a percentage never meets a fraction in one ratio.
   */
  scoreMax: z.number().positive().max(1e6).optional(),
});

const team = z.strictObject({
  organizationId: z.string().min(1).max(100),
  name,
  productId: z.string().min(1).max(100),
  /** The global model this team declared it measures itself against (what "95%" means for it). */
  targetModel: modelName,
  /** Declared model size (parameters), for the `smallerModel` tie-break. */
  parameters: z.number().int().positive().max(1e15).optional(),
  /** `wildcard`: joins after the previous round, not one of its survivors. */
  entry: z.enum(['initial', 'continuing', 'wildcard']).optional(),
});

const gate = z.strictObject({ id: slug, name, description: text.optional() });

export const TIE_BREAK_KEYS = ['overall', 'percentOfReference', 'smallerModel', 'lot'] as const;
/** Highest first, except `smallerModel` (fewer parameters first) and `lot` (a seeded draw). */
const tieBreakKey = z.union([z.enum(TIE_BREAK_KEYS), z.string().regex(/^axis:[a-z0-9][a-z0-9_-]{0,39}$/)], {
  message: 'overall, percentOfReference, smallerModel, lot or axis:<axis id>',
});

export const roundDefinitionInput = z
  .strictObject({
    name,
    programme: name.optional(),
    description: text.optional(),
    previousRoundId: z.string().min(1).max(100).nullable().optional(),
    /** Teams that go on to the next round; the rest are eliminated. */
    survivors: z.number().int().min(1).max(100),
    /** Percent of the target model's score a team must reach. */
    threshold: z.number().positive().max(1000).default(95),
    axes: z.array(axis).min(1).max(10),
    suites: z.array(suite).max(100).default([]),
    maxTeamSuites: z.number().int().min(0).max(10).default(2),
    teams: z.array(team).min(1).max(100),
    gates: z.array(gate).max(10).default([]),
    tieBreak: z.array(tieBreakKey).min(1).max(6),
  })
  .superRefine((d, ctx) => {
    unique(d.axes, 'id', ctx, ['axes']);
    unique(d.suites, 'id', ctx, ['suites']);
    unique(d.teams, 'organizationId', ctx, ['teams']);
    unique(d.gates, 'id', ctx, ['gates']);
    const total = d.axes.reduce((s, a) => s + a.weight, 0);
    if (total !== 100)
      ctx.addIssue({
        code: 'custom',
        path: ['axes'],
        message: `weights must sum to 100 (they sum to ${total})`,
      });
    const benchmarks = d.axes.filter((a) => a.kind === 'benchmark').length;
    if (benchmarks > 1)
      ctx.addIssue({ code: 'custom', path: ['axes'], message: 'at most one benchmark axis' });
    if (benchmarks === 1 && d.suites.length === 0)
      ctx.addIssue({ code: 'custom', path: ['suites'], message: 'a benchmark axis needs suites' });
    if (benchmarks === 0 && d.suites.length > 0)
      ctx.addIssue({ code: 'custom', path: ['suites'], message: 'suites need a benchmark axis' });
    if (d.survivors > d.teams.length)
      ctx.addIssue({
        code: 'custom',
        path: ['survivors'],
        message: `more survivors than teams (${d.teams.length})`,
      });
    const teams = new Set(d.teams.map((t) => t.organizationId));
    const chosen = new Map<string, number>();
    d.suites.forEach((s, i) => {
      if (s.group === 'team') {
        if (s.organizationId === undefined || !teams.has(s.organizationId)) {
          ctx.addIssue({
            code: 'custom',
            path: ['suites', i, 'organizationId'],
            message: 'a team suite names the team (organizationId) that chose it',
          });
          return;
        }
        const n = (chosen.get(s.organizationId) ?? 0) + 1;
        chosen.set(s.organizationId, n);
        if (n > d.maxTeamSuites)
          ctx.addIssue({
            code: 'custom',
            path: ['suites', i, 'organizationId'],
            message: `a team chooses at most ${d.maxTeamSuites} suites`,
          });
      } else if (s.organizationId !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['suites', i, 'organizationId'],
          message: `a ${s.group} suite is every team's: no organizationId`,
        });
      }
    });
    const axisIds = new Set(d.axes.map((a) => a.id));
    d.tieBreak.forEach((key, i) => {
      if (key.startsWith('axis:') && !axisIds.has(key.slice(5)))
        ctx.addIssue({ code: 'custom', path: ['tieBreak', i], message: `no axis ${key.slice(5)}` });
      if (key === 'smallerModel')
        d.teams.forEach((t, j) => {
          if (t.parameters === undefined)
            ctx.addIssue({
              code: 'custom',
              path: ['teams', j, 'parameters'],
              message: 'the smallerModel tie-break needs every team’s declared parameters',
            });
        });
    });
    unique(
      d.tieBreak.map((k) => ({ k })),
      'k',
      ctx,
      ['tieBreak'],
    );
  });

export type RoundDefinition = z.infer<typeof roundDefinitionInput>;
export type RoundAxis = RoundDefinition['axes'][number];
export type PanelAxis = Extract<RoundAxis, { kind: 'panel' }>;
export type BenchmarkAxis = Extract<RoundAxis, { kind: 'benchmark' }>;
export type RoundSuite = RoundDefinition['suites'][number];
export type RoundTeam = RoundDefinition['teams'][number];
export type TieBreakKey = RoundDefinition['tieBreak'][number];

function unique<T>(items: readonly T[], key: keyof T, ctx: z.RefinementCtx, path: (string | number)[] = []) {
  const seen = new Set<unknown>();
  items.forEach((item, i) => {
    if (seen.has(item[key]))
      ctx.addIssue({ code: 'custom', path: [...path, i, String(key)], message: 'must be unique' });
    seen.add(item[key]);
  });
}

/** The suites a team is measured on: the common and held-out ones, and its own choices. */
export function suitesOf(d: RoundDefinition, organizationId: string): RoundSuite[] {
  return d.suites.filter((s) => s.group !== 'team' || s.organizationId === organizationId);
}
