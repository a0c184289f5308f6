import type { AuditTrail } from '../../audit/audit-log.ts';
import { ConflictError, NotFoundError, ValidationError } from '../../errors.ts';
import type { Database, SqlExecutor } from '../../storage/database.ts';
import { newId } from '../../storage/ids.ts';
import { parseInput } from '../../validation.ts';
import { type RoundDefinition, roundDefinitionInput } from './definition.ts';
import { loadInputs } from './round-inputs.ts';
import { lockRound } from './round-records.ts';
import { computeRoundResult, type RoundInputs, type RoundResult } from './round-result.ts';

/**
 * A round's life (docs/evaluation-rounds.md#lifecycle): a draft whose definition may change; open,
 * its definition fixed and its inputs recorded; closed by the operator, its definition, inputs and
 * result stored as decided and never changed again (the database refuses it too); published when the
 * operator releases it, and only then seen by anyone but the operator and the evaluators.
 */

export type RoundStatus = 'draft' | 'open' | 'closed';

export interface Round {
  id: string;
  name: string;
  programme: string | null;
  sequence: number;
  previousRoundId: string | null;
  status: RoundStatus;
  definition: RoundDefinition;
  createdAt: string;
  openedAt: string | null;
  closedAt: string | null;
  publishedAt: string | null;
}

export interface RoundClosure {
  roundId: string;
  closedAt: string;
  closedBy: string;
  definition: RoundDefinition;
  inputs: RoundInputs;
  result: RoundResult;
}

const iso = (v: unknown) => (v === null || v === undefined ? null : new Date(Number(v)).toISOString());

const COLUMNS = `id, name, sequence, previous_round_id, status, definition_json, created_at, opened_at, closed_at,
  published_at`;

function toRound(r: Record<string, unknown>): Round {
  const definition = JSON.parse(String(r.definition_json)) as RoundDefinition;
  return {
    id: String(r.id),
    name: String(r.name),
    programme: definition.programme ?? null,
    sequence: Number(r.sequence),
    previousRoundId: (r.previous_round_id as string | null) ?? null,
    status: r.status as RoundStatus,
    definition,
    createdAt: iso(r.created_at)!,
    openedAt: iso(r.opened_at),
    closedAt: iso(r.closed_at),
    publishedAt: iso(r.published_at),
  };
}

export class RoundService {
  /** A round was published: the catalogue may now show the runs it names (runs/latest-scores.ts). */
  onPublished: () => Promise<void> = async () => {};

  constructor(private readonly db: Database) {}

  async create(input: unknown, trail: AuditTrail, actorId: string): Promise<Round> {
    const definition = parseInput(roundDefinitionInput, input);
    const id = newId('rnd');
    return this.db.transaction(async (tx) => {
      const sequence = await this.checkAgainstHub(tx, definition);
      const now = Date.now();
      await tx.run(
        `INSERT INTO eval_rounds (id, name, sequence, previous_round_id, status, definition_json, created_at,
           created_by, updated_at) VALUES (?, ?, ?, ?, 'draft', ?, ?, ?, ?)`,
        [
          id,
          definition.name,
          sequence,
          definition.previousRoundId ?? null,
          JSON.stringify(definition),
          now,
          actorId,
          now,
        ],
      );
      await this.replaceTeams(tx, id, definition);
      const after = await this.get(id, tx);
      await trail(tx, { entityId: id, after });
      return after;
    });
  }

  /** A draft's definition, field by field (each given top-level field replaces the old one). */
  async update(id: string, input: unknown, trail: AuditTrail): Promise<Round> {
    if (!input || typeof input !== 'object' || Array.isArray(input))
      throw ValidationError.of('(body)', 'expected a JSON object');
    return this.db.transaction(async (tx) => {
      await lockRound(tx, this.db.dialect, id);
      const before = await this.get(id, tx);
      if (before.status !== 'draft')
        throw new ConflictError(
          'status',
          `round ${id} is ${before.status}: its definition was fixed when it opened`,
          '시작된 차수의 정의는 바꿀 수 없습니다.',
        );
      const definition = parseInput(roundDefinitionInput, { ...before.definition, ...input });
      const sequence = await this.checkAgainstHub(tx, definition);
      await tx.run(
        `UPDATE eval_rounds SET name = ?, sequence = ?, previous_round_id = ?, definition_json = ?, updated_at = ?
         WHERE id = ?`,
        [
          definition.name,
          sequence,
          definition.previousRoundId ?? null,
          JSON.stringify(definition),
          Date.now(),
          id,
        ],
      );
      await this.replaceTeams(tx, id, definition);
      const after = await this.get(id, tx);
      await trail(tx, { entityId: id, before, after });
      return after;
    });
  }

  /** Fixes the definition: from here on only inputs are recorded. */
  async open(id: string, trail: AuditTrail): Promise<Round> {
    return this.db.transaction(async (tx) => {
      await lockRound(tx, this.db.dialect, id);
      const before = await this.get(id, tx);
      if (before.status !== 'draft')
        throw new ConflictError(
          'status',
          `round ${id} is ${before.status} already`,
          '이미 시작된 차수입니다.',
        );
      await this.checkAgainstHub(tx, before.definition);
      await tx.run("UPDATE eval_rounds SET status = 'open', opened_at = ?, updated_at = ? WHERE id = ?", [
        Date.now(),
        Date.now(),
        id,
      ]);
      const after = await this.get(id, tx);
      await trail(tx, { entityId: id, before: { status: before.status }, after: { status: after.status } });
      return after;
    });
  }

  /**
   * Decides the round: refused while anything is missing or the declared tie-break cannot separate
   * the teams at the cut; then the definition, the inputs and the result are stored as they are.
   */
  async close(id: string, trail: AuditTrail, actorId: string): Promise<RoundClosure> {
    return this.db.transaction(async (tx) => {
      const round = await lockRound(tx, this.db.dialect, id);
      if (round.status !== 'open')
        throw new ConflictError(
          'status',
          `round ${id} is ${round.status}: only an open round closes`,
          round.status === 'closed' ? '이미 마감된 차수입니다.' : '시작(open)하지 않은 차수입니다.',
        );
      const inputs = await loadInputs(tx, id);
      const result = computeRoundResult(round.definition, inputs, id);
      if (!result.complete)
        throw new ConflictError(
          'status',
          `round ${id} cannot close while inputs are missing: ${result.missing.join('; ')}`,
          '빠진 입력이 있어 마감할 수 없습니다.',
        );
      if (result.cut && result.cut.unresolved.length > 0)
        throw new ConflictError(
          'tieBreak',
          `the declared tie-break does not separate ${result.cut.unresolved.join(' and ')}`,
          '사전에 정한 동점 처리 기준으로 가를 수 없습니다.',
        );
      const now = Date.now();
      await tx.run(
        `INSERT INTO eval_round_closures (round_id, closed_at, closed_by, definition_json, inputs_json, result_json)
         VALUES (?, ?, ?, ?, ?, ?)`,
        [id, now, actorId, JSON.stringify(round.definition), JSON.stringify(inputs), JSON.stringify(result)],
      );
      await tx.run("UPDATE eval_rounds SET status = 'closed', closed_at = ?, updated_at = ? WHERE id = ?", [
        now,
        now,
        id,
      ]);
      const closure: RoundClosure = {
        roundId: id,
        closedAt: new Date(now).toISOString(),
        closedBy: actorId,
        definition: round.definition,
        inputs,
        result,
      };
      await trail(tx, {
        entityId: id,
        before: { status: 'open' },
        after: {
          status: 'closed',
          teams: result.teams.map((t) => ({
            organizationId: t.organizationId,
            status: t.status,
            rank: t.rank,
          })),
        },
      });
      return closure;
    });
  }

  /** The operator's release: from now on everyone, and the public leaderboard, sees the result. */
  async publish(id: string, trail: AuditTrail, actorId: string): Promise<Round> {
    const round = await this.db.transaction(async (tx) => {
      await lockRound(tx, this.db.dialect, id);
      const before = await this.get(id, tx);
      if (before.status !== 'closed')
        throw new ConflictError(
          'status',
          `round ${id} is ${before.status}: close it first`,
          '먼저 마감하세요.',
        );
      if (before.publishedAt !== null)
        throw new ConflictError('status', `round ${id} is published already`, '이미 공개된 차수입니다.');
      await tx.run('UPDATE eval_rounds SET published_at = ?, published_by = ? WHERE id = ?', [
        Date.now(),
        actorId,
        id,
      ]);
      const after = await this.get(id, tx);
      await trail(tx, {
        entityId: id,
        before: { publishedAt: null },
        after: { publishedAt: after.publishedAt },
      });
      return after;
    });
    await this.onPublished();
    return round;
  }

  async get(id: string, db: SqlExecutor = this.db): Promise<Round> {
    const row = await db.get(`SELECT ${COLUMNS} FROM eval_rounds WHERE id = ?`, [id]);
    if (!row) throw new NotFoundError('round', id);
    return toRound(row);
  }

  async list(): Promise<Round[]> {
    const rows = await this.db.all(`SELECT ${COLUMNS} FROM eval_rounds ORDER BY sequence, created_at, id`);
    return rows.map(toRound);
  }

  async inputs(id: string): Promise<RoundInputs> {
    return loadInputs(this.db, id);
  }

  /** The stored decision of a closed round; undefined before it closes. */
  async closure(id: string, db: SqlExecutor = this.db): Promise<RoundClosure | undefined> {
    const row = await db.get<Record<string, unknown>>(
      'SELECT round_id, closed_at, closed_by, definition_json, inputs_json, result_json FROM eval_round_closures WHERE round_id = ?',
      [id],
    );
    if (!row) return undefined;
    return {
      roundId: String(row.round_id),
      closedAt: iso(row.closed_at)!,
      closedBy: String(row.closed_by),
      definition: JSON.parse(String(row.definition_json)) as RoundDefinition,
      inputs: JSON.parse(String(row.inputs_json)) as RoundInputs,
      result: JSON.parse(String(row.result_json)) as RoundResult,
    };
  }

  /** The stored result once closed; before, what it would be now (a preview for the evaluators). */
  async result(id: string): Promise<{ preview: boolean; result: RoundResult }> {
    const round = await this.get(id);
    const closure = await this.closure(id);
    if (closure) return { preview: false, result: closure.result };
    return { preview: true, result: computeRoundResult(round.definition, await loadInputs(this.db, id), id) };
  }

  /** Published rounds with their stored results, oldest first: the public leaderboard's history. */
  async published(): Promise<{ round: Round; closure: RoundClosure }[]> {
    const rows = await this.db.all(
      `SELECT ${COLUMNS} FROM eval_rounds WHERE published_at IS NOT NULL ORDER BY sequence, closed_at, id`,
    );
    const out: { round: Round; closure: RoundClosure }[] = [];
    for (const row of rows) {
      const round = toRound(row);
      const closure = await this.closure(round.id);
      if (closure) out.push({ round, closure });
    }
    return out;
  }

  /**
   * What only the database can say: the organisations and products exist, the previous round is
   * closed, and each team is a survivor of it or a declared wildcard. Returns the round's sequence, and
   * fills in each team's entry (initial in a first round, continuing after one).
   */
  private async checkAgainstHub(tx: SqlExecutor, d: RoundDefinition): Promise<number> {
    for (const [i, team] of d.teams.entries()) {
      if (!(await tx.get('SELECT id FROM organizations WHERE id = ?', [team.organizationId])))
        throw ValidationError.of(`teams.${i}.organizationId`, `no organization ${team.organizationId}`);
      if (!(await tx.get('SELECT id FROM products WHERE id = ?', [team.productId])))
        throw ValidationError.of(`teams.${i}.productId`, `no product ${team.productId}`);
    }
    if (d.previousRoundId === undefined || d.previousRoundId === null) {
      d.teams.forEach((team, i) => {
        if (team.entry !== undefined && team.entry !== 'initial')
          throw ValidationError.of(`teams.${i}.entry`, `a first round has no ${team.entry} teams`);
        team.entry = 'initial';
      });
      return 1;
    }
    const previous = await tx.get<{ sequence: number; status: string }>(
      'SELECT sequence, status FROM eval_rounds WHERE id = ?',
      [d.previousRoundId],
    );
    if (!previous) throw ValidationError.of('previousRoundId', `no round ${d.previousRoundId}`);
    const closure = await this.closure(d.previousRoundId, tx);
    if (!closure) throw ValidationError.of('previousRoundId', `round ${d.previousRoundId} has not closed`);
    const survivors = new Set(
      closure.result.teams.filter((t) => t.status === 'survives').map((t) => t.organizationId),
    );
    d.teams.forEach((team, i) => {
      const entry = team.entry ?? 'continuing';
      if (entry === 'initial')
        throw ValidationError.of(`teams.${i}.entry`, 'a later round’s teams are continuing or wildcard');
      if (entry === 'continuing' && !survivors.has(team.organizationId))
        throw ValidationError.of(
          `teams.${i}.entry`,
          `${team.organizationId} did not survive round ${d.previousRoundId}: it can only join as a wildcard`,
        );
      if (entry === 'wildcard' && survivors.has(team.organizationId))
        throw ValidationError.of(`teams.${i}.entry`, `${team.organizationId} survived: it continues`);
      team.entry = entry;
    });
    return Number(previous.sequence) + 1;
  }

  private async replaceTeams(tx: SqlExecutor, roundId: string, d: RoundDefinition): Promise<void> {
    await tx.run('DELETE FROM eval_round_teams WHERE round_id = ?', [roundId]);
    for (const team of d.teams)
      await tx.run('INSERT INTO eval_round_teams (round_id, organization_id) VALUES (?, ?)', [
        roundId,
        team.organizationId,
      ]);
  }
}
