import { z } from 'zod';
import type { AuditTrail } from '../../audit/audit-log.ts';
import { ConflictError, NotFoundError, ValidationError } from '../../errors.ts';
import { type Database, isUniqueViolation, type SqlExecutor, type SqlValue } from '../../storage/database.ts';
import { newId } from '../../storage/ids.ts';
import { rowBatches } from '../../storage/row-batches.ts';
import { parseInput } from '../../validation.ts';
import { modelName } from '../rounds/definition.ts';
import {
  affordableBootstrap,
  type Battle,
  DEFAULT_BOOTSTRAP,
  DEFAULT_SEED,
  type Ratings,
  rateBattles,
} from './bradley-terry.ts';

/**
 * Arenas: named sets of pairwise battles between models, decided by a judge product or by people's
 * votes, rated by Bradley–Terry with bootstrap intervals (docs/evaluation-rounds.md#arenas). A public
 * arena's ratings appear on the public leaderboard.
 */

const arenaInput = z.strictObject({
  name: z.string().trim().min(1).max(200),
  description: z.string().trim().min(1).max(4000).optional(),
  /** The product that judges this arena's battles; absent: people vote. */
  judgeModel: modelName.optional(),
  public: z.boolean().default(false),
});

const outcome = z.enum(['a', 'b', 'tie']);
const promptId = z.string().trim().min(1).max(200);

const battle = z
  .strictObject({ a: modelName, b: modelName, outcome, promptId: promptId.optional() })
  .refine((x) => x.a !== x.b, { path: ['b'], message: 'a battle is between two different models' });

/** The most battles one request records: a judge's run is sent in pieces of this size. */
export const MAX_BATTLES_PER_REQUEST = 5000;

const battlesInput = z.strictObject({
  /** judge: decided by `judgeModel` (the arena's by default); human: recorded votes of people. */
  source: z.enum(['judge', 'human']).default('judge'),
  judgeModel: modelName.optional(),
  battles: z.array(battle).min(1).max(MAX_BATTLES_PER_REQUEST),
});

const voteInput = z
  .strictObject({ a: modelName, b: modelName, outcome, promptId })
  .refine((x) => x.a !== x.b, { path: ['b'], message: 'a battle is between two different models' });

const ratingsQuery = z.strictObject({
  bootstrap: z.coerce.number().int().min(0).max(2000).default(DEFAULT_BOOTSTRAP),
  seed: z.coerce
    .number()
    .int()
    .min(0)
    .max(2 ** 32 - 1)
    .default(DEFAULT_SEED),
});

export interface Arena {
  id: string;
  name: string;
  description: string | null;
  judgeModel: string | null;
  public: boolean;
  battles: number;
  createdAt: string;
}

export interface ArenaRatings extends Ratings {
  arena: Arena;
}

const ARENA_COLUMNS = `a.id, a.name, a.description, a.judge_model, a.public, a.created_at,
  (SELECT COUNT(*) FROM eval_battles b WHERE b.arena_id = a.id) AS battles`;

function toArena(r: Record<string, unknown>): Arena {
  return {
    id: r.id as string,
    name: r.name as string,
    description: (r.description as string | null) ?? null,
    judgeModel: (r.judge_model as string | null) ?? null,
    public: Number(r.public) === 1,
    battles: Number(r.battles),
    createdAt: new Date(Number(r.created_at)).toISOString(),
  };
}

/** Rows per INSERT: 11 parameters each, far under both engines' limits. */
const INSERT_CHUNK = 250;
/** Ratings kept per replica (arena × bootstrap × seed); the oldest goes first. */
const CACHE_ENTRIES = 64;
/**
 * How long one request's bootstrap may hold the event loop (estimated from the battles and models:
 * bradley-terry.ts `resampleCostMs`, measured in docs/benchmarks.md, "Arena ratings").
 */
export const MAX_RATING_MS = 1000;

export class ArenaService {
  /** Ratings by arena and options, kept while the arena's battles stay the same (count and newest id). */
  private readonly cache = new Map<string, { version: string; ratings: Ratings }>();

  constructor(private readonly db: Database) {}

  async create(input: unknown, trail: AuditTrail, actorId: string): Promise<Arena> {
    const v = parseInput(arenaInput, input);
    const id = newId('arn');
    return this.db.transaction(async (tx) => {
      try {
        await tx.run(
          `INSERT INTO eval_arenas (id, name, description, judge_model, public, created_at, created_by)
           VALUES (?, ?, ?, ?, ?, ?, ?)`,
          [id, v.name, v.description ?? null, v.judgeModel ?? null, v.public ? 1 : 0, Date.now(), actorId],
        );
      } catch (error) {
        if (isUniqueViolation(error)) throw new ConflictError('name', `an arena named "${v.name}" exists`);
        throw error;
      }
      const after = await this.get(id, tx);
      await trail(tx, { entityId: id, after });
      return after;
    });
  }

  async get(id: string, db: SqlExecutor = this.db): Promise<Arena> {
    const row = await db.get(`SELECT ${ARENA_COLUMNS} FROM eval_arenas a WHERE a.id = ?`, [id]);
    if (!row) throw new NotFoundError('arena', id);
    return toArena(row);
  }

  async list(onlyPublic = false): Promise<Arena[]> {
    const rows = await this.db.all(
      `SELECT ${ARENA_COLUMNS} FROM eval_arenas a ${onlyPublic ? 'WHERE a.public = 1' : ''} ORDER BY a.created_at, a.id`,
    );
    return rows.map(toArena);
  }

  /** A batch of battles (a judge's verdicts, or votes collected elsewhere): one audit entry for the batch. */
  async recordBattles(
    arenaId: string,
    input: unknown,
    trail: AuditTrail,
  ): Promise<{ batchId: string; arenaId: string; recorded: number }> {
    const v = parseInput(battlesInput, input);
    const batchId = newId('btb');
    return this.db.transaction(async (tx) => {
      const arena = await this.get(arenaId, tx);
      const judge = v.source === 'judge' ? (v.judgeModel ?? arena.judgeModel) : null;
      if (v.source === 'judge' && judge === null)
        throw ValidationError.of('judgeModel', 'name the judge: this arena has none of its own');
      if (v.source === 'human' && v.judgeModel !== undefined)
        throw ValidationError.of('judgeModel', 'people’s votes have no judge model');
      const now = Date.now();
      const rows = v.battles.map((b) => [
        newId('btl'),
        arenaId,
        b.a,
        b.b,
        b.outcome,
        v.source,
        judge,
        null,
        b.promptId ?? null,
        batchId,
        now,
      ]);
      await insertBattles(tx, rows);
      const after = { batchId, arenaId, recorded: rows.length, source: v.source, judgeModel: judge };
      await trail(tx, { entityId: batchId, after });
      return { batchId, arenaId, recorded: rows.length };
    });
  }

  /** One person's vote on one prompt; a second vote on the same prompt is refused. */
  async vote(
    arenaId: string,
    input: unknown,
    voterId: string,
    trail: AuditTrail,
  ): Promise<{ id: string; arenaId: string; promptId: string; outcome: string }> {
    const v = parseInput(voteInput, input);
    const id = newId('btl');
    return this.db.transaction(async (tx) => {
      const arena = await this.get(arenaId, tx);
      if (arena.judgeModel !== null)
        throw new ConflictError(
          'arenaId',
          `arena ${arenaId} is judged by ${arena.judgeModel}, not by votes`,
          '이 아레나는 심판 모델이 판정합니다.',
        );
      try {
        await insertBattles(tx, [
          [id, arenaId, v.a, v.b, v.outcome, 'human', null, voterId, v.promptId, id, Date.now()],
        ]);
      } catch (error) {
        if (isUniqueViolation(error))
          throw new ConflictError('promptId', 'you voted on this prompt already', '이미 투표했습니다.');
        throw error;
      }
      const after = { id, arenaId, a: v.a, b: v.b, outcome: v.outcome, promptId: v.promptId };
      await trail(tx, { entityId: id, after });
      return { id, arenaId, promptId: v.promptId, outcome: v.outcome };
    });
  }

  /**
   * Ratings with intervals; recomputed only when the arena gained battles since the last time. More
   * resamples than `MAX_RATING_MS` affords are refused, or with `fewerResamplesIfCostly` (the public
   * leaderboard, which asks for no number) reduced to what it affords.
   */
  async ratings(
    arenaId: string,
    query: unknown = {},
    options: { fewerResamplesIfCostly?: boolean } = {},
  ): Promise<ArenaRatings> {
    const q = parseInput(ratingsQuery, query);
    const arena = await this.get(arenaId);
    const newest = await this.db.get<{ id: string | null }>(
      'SELECT MAX(id) AS id FROM eval_battles WHERE arena_id = ?',
      [arenaId],
    );
    const version = `${arena.battles}:${newest?.id ?? ''}`;
    const key = `${arenaId}:${q.bootstrap}:${q.seed}:${options.fewerResamplesIfCostly === true}`;
    const cached = this.cache.get(key);
    if (cached?.version === version) return { arena, ...cached.ratings };
    const rows = await this.db.all<{ model_a: string; model_b: string; outcome: Battle['outcome'] }>(
      'SELECT model_a, model_b, outcome FROM eval_battles WHERE arena_id = ? ORDER BY id',
      [arenaId],
    );
    const models = new Set(rows.flatMap((r) => [r.model_a, r.model_b])).size;
    const affordable = affordableBootstrap(rows.length, models, MAX_RATING_MS);
    if (q.bootstrap > affordable && options.fewerResamplesIfCostly) q.bootstrap = affordable;
    else if (q.bootstrap > affordable)
      throw ValidationError.of(
        'bootstrap',
        `at most ${affordable} resamples for ${rows.length} battles among ${models} models`,
      );
    const ratings = rateBattles(
      rows.map((r) => ({ a: r.model_a, b: r.model_b, outcome: r.outcome })),
      { bootstrap: q.bootstrap, seed: q.seed },
    );
    this.cache.delete(key);
    if (this.cache.size >= CACHE_ENTRIES) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(key, { version, ratings });
    return { arena, ...ratings };
  }
}

export async function insertBattles(tx: SqlExecutor, rows: SqlValue[][]): Promise<void> {
  for (const chunk of rowBatches(rows, INSERT_CHUNK)) {
    await tx.run(
      `INSERT INTO eval_battles (id, arena_id, model_a, model_b, outcome, source, judge_model, voter_id,
         prompt_id, batch_id, created_at)
       VALUES ${chunk.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
      chunk.flat(),
    );
  }
}
