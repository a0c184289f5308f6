import type { AuditTrail } from '../../audit/audit-log.ts';
import { ConflictError, NotFoundError, ValidationError } from '../../errors.ts';
import type { Database, Dialect, SqlExecutor } from '../../storage/database.ts';
import { newId } from '../../storage/ids.ts';
import { parseInput } from '../../validation.ts';
import { type RoundDefinition, suitesOf } from './definition.ts';
import {
  gateDecisionsInput,
  membersInput,
  memberUpdate,
  panelScoresInput,
  referencesInput,
  scoresInput,
} from './record-inputs.ts';
import { membersOf } from './round-inputs.ts';
import type { BenchmarkScore, GateDecision, PanelMember, PanelScore, ReferenceRow } from './round-result.ts';
import type { RunResults, RunSummary } from './run-results.ts';

/**
 * What is recorded for an open round: reference rows, benchmark scores, panel members and their
 * scores, gate decisions. Each is checked against the round's definition (the suite is the team's,
 * the member scores every criterion of its axis, the suite hash is the one the round pinned), each
 * replaces the previous value of the same key, and each is audited on its own.
 */

export interface OpenRound {
  id: string;
  status: string;
  definition: RoundDefinition;
}

/** The round's row, locked for the rest of the transaction so a close cannot pass a write by. */
export async function lockRound(tx: SqlExecutor, dialect: Dialect, roundId: string): Promise<OpenRound> {
  const row = await tx.get<{ id: string; status: string; definition_json: string }>(
    `SELECT id, status, definition_json FROM eval_rounds WHERE id = ?${dialect === 'postgres' ? ' FOR UPDATE' : ''}`,
    [roundId],
  );
  if (!row) throw new NotFoundError('round', roundId);
  return { id: row.id, status: row.status, definition: JSON.parse(row.definition_json) as RoundDefinition };
}

export function requireOpen(round: OpenRound, what: string): void {
  if (round.status !== 'open')
    throw new ConflictError(
      'status',
      `round ${round.id} is ${round.status}: ${what} is recorded while a round is open`,
      round.status === 'closed' ? '마감된 차수는 바뀌지 않습니다.' : '차수를 먼저 시작(open)하세요.',
    );
}

const teamOf = (d: RoundDefinition, organizationId: string) =>
  d.teams.find((t) => t.organizationId === organizationId);

export class RoundRecords {
  /** The evaluation runs of this hub, when it has them; without, a score must be given by value. */
  runs: RunResults | null = null;
  /**
   * A score or reference now names a run: the catalogue reads its runs again at once, so a run an
   * unpublished round names leaves it before the response (runs/latest-scores.ts).
   */
  runsNamed: () => Promise<void> = async () => {};

  constructor(private readonly db: Database) {}

  private write<T>(
    roundId: string,
    what: string,
    fn: (tx: SqlExecutor, round: OpenRound) => Promise<T>,
  ): Promise<T> {
    return this.db.transaction(async (tx) => {
      const round = await lockRound(tx, this.db.dialect, roundId);
      requireOpen(round, what);
      return fn(tx, round);
    });
  }

  async recordReferences(
    roundId: string,
    input: unknown,
    trail: AuditTrail,
    actorId: string,
  ): Promise<ReferenceRow[]> {
    const v = parseInput(referencesInput, input);
    const rows: ReferenceRow[] = [];
    for (const [i, r] of v.references.entries()) {
      const at = (field: string) => `references.${i}.${field}`;
      let { score, stderr, n, suiteHash } = r;
      if (r.source === 'measured') {
        if (r.runId === undefined)
          throw ValidationError.of(at('runId'), 'a measured reference names its run');
        const run = await this.run(r.runId, at('runId'));
        if (run) {
          if (run.model !== r.model)
            throw ValidationError.of(at('model'), `run ${r.runId} measured ${run.model}, not ${r.model}`);
          if (score !== undefined && Math.abs(score - run.score) > 1e-9)
            throw ValidationError.of(at('score'), `run ${r.runId} scored ${run.score}`);
          score = run.score;
          stderr ??= run.stderr ?? undefined;
          n ??= run.n;
          suiteHash ??= run.suiteHash ?? undefined;
        }
      } else if (r.citation === undefined || r.protocol === undefined) {
        throw ValidationError.of(
          at(r.citation === undefined ? 'citation' : 'protocol'),
          'a published figure names its source (citation) and how it was measured (protocol)',
        );
      }
      if (score === undefined) throw ValidationError.of(at('score'), this.scoreRequired());
      rows.push({
        suiteId: r.suiteId,
        model: r.model,
        score,
        stderr: stderr ?? null,
        n: n ?? null,
        source: r.source,
        runId: r.runId ?? null,
        citation: r.citation ?? null,
        url: r.url ?? null,
        protocol: r.protocol ?? null,
        suiteHash: suiteHash ?? null,
      });
    }
    return this.write(roundId, 'a reference', async (tx, round) => {
      const targets = new Set(round.definition.teams.map((t) => t.targetModel));
      for (const [i, r] of rows.entries()) {
        const suite = round.definition.suites.find((s) => s.id === r.suiteId);
        if (!suite)
          throw ValidationError.of(`references.${i}.suiteId`, `no suite ${r.suiteId} in this round`);
        if (!targets.has(r.model))
          throw ValidationError.of(
            `references.${i}.model`,
            `no team declared ${r.model} as its target (${[...targets].join(', ')})`,
          );
        pinnedHash(suite.suiteHash, r.suiteHash, r.source === 'measured', `references.${i}.suiteHash`);
        onScale(suite.scoreMax, r.score, `references.${i}.score`);
        const key = { round: round.id, suite: r.suiteId, model: r.model };
        const before = await tx.get(
          'SELECT score, stderr, source, run_id, citation FROM eval_round_references WHERE round_id = ? AND suite_id = ? AND model = ?',
          [key.round, key.suite, key.model],
        );
        await tx.run('DELETE FROM eval_round_references WHERE round_id = ? AND suite_id = ? AND model = ?', [
          key.round,
          key.suite,
          key.model,
        ]);
        await tx.run(
          `INSERT INTO eval_round_references (round_id, suite_id, model, score, stderr, n, source, run_id, citation,
             url, protocol, suite_hash, recorded_at, recorded_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          [
            key.round,
            key.suite,
            key.model,
            r.score,
            r.stderr,
            r.n,
            r.source,
            r.runId,
            r.citation,
            r.url,
            r.protocol,
            r.suiteHash,
            Date.now(),
            actorId,
          ],
        );
        await trail(tx, { entityId: `${key.round}/${key.suite}/${key.model}`, before, after: r });
      }
      return rows;
    }).then(async (rows) => {
      if (rows.some((r) => r.runId !== null)) await this.runsNamed();
      return rows;
    });
  }

  async recordScores(
    roundId: string,
    input: unknown,
    trail: AuditTrail,
    actorId: string,
  ): Promise<BenchmarkScore[]> {
    const v = parseInput(scoresInput, input);
    const rows: BenchmarkScore[] = [];
    /** The product each score's run asked, by the score's index: checked against the team's below. */
    const runProducts = new Map<number, { productId: string; model: string }>();
    for (const [i, s] of v.scores.entries()) {
      const at = (field: string) => `scores.${i}.${field}`;
      let { score, stderr, n, unparsed, suiteHash } = s;
      if (s.runId !== undefined) {
        const run = await this.run(s.runId, at('runId'));
        if (run) {
          runProducts.set(i, { productId: run.productId, model: run.model });
          if (score !== undefined && Math.abs(score - run.score) > 1e-9)
            throw ValidationError.of(at('score'), `run ${s.runId} scored ${run.score}`);
          score = run.score;
          stderr ??= run.stderr ?? undefined;
          n ??= run.n;
          unparsed ??= run.unparsed;
          suiteHash ??= run.suiteHash ?? undefined;
        }
      } else if (s.note === undefined) {
        throw ValidationError.of(at('note'), 'a score not from a run of this hub says where it comes from');
      }
      if (score === undefined) throw ValidationError.of(at('score'), this.scoreRequired());
      if (unparsed !== undefined && n !== undefined && unparsed > n)
        throw ValidationError.of(at('unparsed'), `more unparsed answers than items (${n})`);
      rows.push({
        organizationId: s.organizationId,
        suiteId: s.suiteId,
        score,
        stderr: stderr ?? null,
        n: n ?? null,
        unparsed: unparsed ?? null,
        suiteHash: suiteHash ?? null,
        runId: s.runId ?? null,
        note: s.note ?? null,
      });
    }
    return this.write(roundId, 'a score', async (tx, round) => {
      for (const [i, s] of rows.entries()) {
        const team = teamOf(round.definition, s.organizationId);
        if (!team) throw ValidationError.of(`scores.${i}.organizationId`, 'not a team of this round');
        const asked = runProducts.get(i);
        if (asked !== undefined && asked.productId !== team.productId)
          throw ValidationError.of(
            `scores.${i}.runId`,
            `실행 ${s.runId}은 이 팀의 상품(${team.productId})이 아닌 ${asked.model}(${asked.productId})을 평가했습니다 / run ${s.runId} measured ${asked.model} (${asked.productId}), not this team's product ${team.productId}`,
          );
        const suite = suitesOf(round.definition, s.organizationId).find((x) => x.id === s.suiteId);
        if (!suite)
          throw ValidationError.of(`scores.${i}.suiteId`, `${s.suiteId} is not one of this team’s suites`);
        pinnedHash(suite.suiteHash, s.suiteHash, true, `scores.${i}.suiteHash`);
        onScale(suite.scoreMax, s.score, `scores.${i}.score`);
        const before = await tx.get(
          'SELECT score, stderr, n, unparsed, run_id FROM eval_round_scores WHERE round_id = ? AND organization_id = ? AND suite_id = ?',
          [round.id, s.organizationId, s.suiteId],
        );
        await tx.run(
          'DELETE FROM eval_round_scores WHERE round_id = ? AND organization_id = ? AND suite_id = ?',
          [round.id, s.organizationId, s.suiteId],
        );
        await tx.run(
          `INSERT INTO eval_round_scores (round_id, organization_id, suite_id, score, stderr, n, unparsed, suite_hash,
             run_id, note, recorded_at, recorded_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          [
            round.id,
            s.organizationId,
            s.suiteId,
            s.score,
            s.stderr,
            s.n,
            s.unparsed,
            s.suiteHash,
            s.runId,
            s.note,
            Date.now(),
            actorId,
          ],
        );
        await trail(tx, { entityId: `${round.id}/${s.organizationId}/${s.suiteId}`, before, after: s });
      }
      return rows;
    }).then(async (rows) => {
      if (rows.some((r) => r.runId !== null)) await this.runsNamed();
      return rows;
    });
  }

  async addMembers(roundId: string, input: unknown, trail: AuditTrail): Promise<PanelMember[]> {
    const v = parseInput(membersInput, input);
    return this.write(roundId, 'a panel member', async (tx, round) => {
      const created: PanelMember[] = [];
      for (const [i, m] of v.members.entries()) {
        const axis = round.definition.axes.find((a) => a.id === m.axisId);
        if (axis?.kind !== 'panel')
          throw ValidationError.of(`members.${i}.axisId`, `no panel axis ${m.axisId} in this round`);
        checkTeams(round.definition, m.conflicts, `members.${i}.conflicts`);
        if (m.userId !== undefined && !(await tx.get('SELECT id FROM users WHERE id = ?', [m.userId])))
          throw ValidationError.of(`members.${i}.userId`, `no user ${m.userId}`);
        const member = { id: newId('pnm'), axisId: m.axisId, name: m.name, conflicts: m.conflicts };
        const now = Date.now();
        await tx.run(
          `INSERT INTO eval_panel_members (id, round_id, axis_id, name, user_id, conflicts_json, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
          [member.id, round.id, m.axisId, m.name, m.userId ?? null, JSON.stringify(m.conflicts), now, now],
        );
        await trail(tx, { entityId: member.id, after: { ...member, roundId: round.id, userId: m.userId } });
        created.push(member);
      }
      return created;
    });
  }

  /** A conflict declared late still counts: the member's scores for that team leave the mean. */
  async updateMember(memberId: string, input: unknown, trail: AuditTrail): Promise<PanelMember> {
    const v = parseInput(memberUpdate, input);
    const row = await this.db.get<{ round_id: string }>(
      'SELECT round_id FROM eval_panel_members WHERE id = ?',
      [memberId],
    );
    if (!row) throw new NotFoundError('panel member', memberId);
    return this.write(row.round_id, 'a panel member', async (tx, round) => {
      const before = (await membersOf(tx, round.id)).find((m) => m.id === memberId)!;
      if (v.conflicts !== undefined) checkTeams(round.definition, v.conflicts, 'conflicts');
      const after = {
        ...before,
        ...(v.name !== undefined && { name: v.name }),
        conflicts: v.conflicts ?? before.conflicts,
      };
      await tx.run(
        'UPDATE eval_panel_members SET name = ?, conflicts_json = ?, updated_at = ? WHERE id = ?',
        [after.name, JSON.stringify(after.conflicts), Date.now(), memberId],
      );
      await trail(tx, { entityId: memberId, before, after });
      return after;
    });
  }

  async recordPanelScores(
    roundId: string,
    input: unknown,
    trail: AuditTrail,
    actorId: string,
  ): Promise<PanelScore[]> {
    const v = parseInput(panelScoresInput, input);
    return this.write(roundId, 'a panel score', async (tx, round) => {
      const members = await membersOf(tx, round.id);
      const recorded: PanelScore[] = [];
      for (const [i, s] of v.scores.entries()) {
        const member = members.find((m) => m.id === s.memberId);
        if (!member) throw ValidationError.of(`scores.${i}.memberId`, 'not a panel member of this round');
        if (!teamOf(round.definition, s.organizationId))
          throw ValidationError.of(`scores.${i}.organizationId`, 'not a team of this round');
        const axis = round.definition.axes.find((a) => a.id === member.axisId);
        if (axis?.kind !== 'panel') throw new Error(`member ${member.id} has no panel axis`);
        for (const c of axis.criteria)
          if (s.scores[c.id] === undefined)
            throw ValidationError.of(`scores.${i}.scores.${c.id}`, `every criterion of ${axis.id} is scored`);
        for (const [criterion, value] of Object.entries(s.scores)) {
          if (!axis.criteria.some((c) => c.id === criterion))
            throw ValidationError.of(`scores.${i}.scores.${criterion}`, `not a criterion of ${axis.id}`);
          if (value > axis.scaleMax)
            throw ValidationError.of(`scores.${i}.scores.${criterion}`, `at most ${axis.scaleMax}`);
        }
        const key = [s.memberId, s.organizationId];
        const before = await tx.get(
          'SELECT scores_json FROM eval_panel_scores WHERE member_id = ? AND organization_id = ?',
          key,
        );
        await tx.run('DELETE FROM eval_panel_scores WHERE member_id = ? AND organization_id = ?', key);
        await tx.run(
          `INSERT INTO eval_panel_scores (round_id, member_id, organization_id, scores_json, comment, recorded_at,
             recorded_by) VALUES (?, ?, ?, ?, ?, ?, ?)`,
          [round.id, ...key, JSON.stringify(s.scores), s.comment ?? null, Date.now(), actorId],
        );
        const score = { memberId: s.memberId, organizationId: s.organizationId, scores: s.scores };
        await trail(tx, { entityId: `${s.memberId}/${s.organizationId}`, before, after: score });
        recorded.push(score);
      }
      return recorded;
    });
  }

  async recordGateDecisions(
    roundId: string,
    input: unknown,
    trail: AuditTrail,
    actorId: string,
  ): Promise<GateDecision[]> {
    const v = parseInput(gateDecisionsInput, input);
    return this.write(roundId, 'a gate decision', async (tx, round) => {
      for (const [i, g] of v.decisions.entries()) {
        if (!round.definition.gates.some((x) => x.id === g.gateId))
          throw ValidationError.of(`decisions.${i}.gateId`, `no gate ${g.gateId} in this round`);
        if (!teamOf(round.definition, g.organizationId))
          throw ValidationError.of(`decisions.${i}.organizationId`, 'not a team of this round');
        const key = [round.id, g.gateId, g.organizationId];
        const before = await tx.get(
          'SELECT passed, evidence, reason FROM eval_gate_decisions WHERE round_id = ? AND gate_id = ? AND organization_id = ?',
          key,
        );
        await tx.run(
          'DELETE FROM eval_gate_decisions WHERE round_id = ? AND gate_id = ? AND organization_id = ?',
          key,
        );
        await tx.run(
          `INSERT INTO eval_gate_decisions (round_id, gate_id, organization_id, passed, evidence, reason, decided_at,
             decided_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
          [...key, g.passed ? 1 : 0, g.evidence, g.reason, Date.now(), actorId],
        );
        await trail(tx, { entityId: key.join('/'), before, after: g });
      }
      return v.decisions;
    });
  }

  /** Every panel member's scores of a round, member by member: the evaluators' view, never the public's. */
  async panelScores(roundId: string): Promise<(PanelScore & { comment: string | null })[]> {
    const rows = await this.db.all<{
      member_id: string;
      organization_id: string;
      scores_json: string;
      comment: string | null;
    }>(
      'SELECT member_id, organization_id, scores_json, comment FROM eval_panel_scores WHERE round_id = ? ORDER BY member_id, organization_id',
      [roundId],
    );
    return rows.map((r) => ({
      memberId: r.member_id,
      organizationId: r.organization_id,
      scores: JSON.parse(r.scores_json) as Record<string, number>,
      comment: r.comment,
    }));
  }

  private async run(runId: string, field: string): Promise<(RunSummary & { score: number }) | undefined> {
    if (this.runs === null) return undefined;
    const run = await this.runs.get(runId);
    if (!run) throw ValidationError.of(field, `no run ${runId}`);
    if (run.status !== 'completed' || run.score === null)
      throw ValidationError.of(field, `run ${runId} is ${run.status}: only a completed run's score counts`);
    return { ...run, score: run.score };
  }

  private scoreRequired(): string {
    return this.runs === null
      ? 'required: this hub has no evaluation runs to read it from (give the score, stderr and n the run reported)'
      : 'required';
  }
}

function pinnedHash(
  pinned: string | undefined,
  given: string | null,
  required: boolean,
  field: string,
): void {
  if (pinned === undefined) return;
  if (given === null) {
    if (required)
      throw ValidationError.of(field, `this round pins the suite to ${pinned}: name the hash run`);
    return;
  }
  if (given !== pinned)
    throw ValidationError.of(field, `this round pins the suite to ${pinned}, not ${given}`);
}

function onScale(scoreMax: number | undefined, score: number, field: string): void {
  if (scoreMax !== undefined && score > scoreMax)
    throw ValidationError.of(field, `this suite scores from 0 to ${scoreMax}: ${score} is off its scale`);
}

function checkTeams(d: RoundDefinition, organizationIds: readonly string[], field: string): void {
  organizationIds.forEach((o, i) => {
    if (!teamOf(d, o)) throw ValidationError.of(`${field}.${i}`, 'not a team of this round');
  });
}
