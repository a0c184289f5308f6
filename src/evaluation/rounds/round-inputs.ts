import type { SqlExecutor } from '../../storage/database.ts';
import type { PanelMember, ReferenceRow, RoundInputs } from './round-result.ts';

/** A round's recorded inputs read back as the result computation takes them (round-result.ts). */

export async function membersOf(db: SqlExecutor, roundId: string): Promise<PanelMember[]> {
  const rows = await db.all<{ id: string; axis_id: string; name: string; conflicts_json: string }>(
    'SELECT id, axis_id, name, conflicts_json FROM eval_panel_members WHERE round_id = ? ORDER BY id',
    [roundId],
  );
  return rows.map((r) => ({
    id: r.id,
    axisId: r.axis_id,
    name: r.name,
    conflicts: JSON.parse(r.conflicts_json) as string[],
  }));
}

/** Everything recorded for a round, as the result computation takes it. */
export async function loadInputs(db: SqlExecutor, roundId: string): Promise<RoundInputs> {
  const references = await db.all<Record<string, unknown>>(
    `SELECT suite_id, model, score, stderr, n, source, run_id, citation, url, protocol, suite_hash
     FROM eval_round_references WHERE round_id = ? ORDER BY suite_id, model`,
    [roundId],
  );
  const scores = await db.all<Record<string, unknown>>(
    `SELECT organization_id, suite_id, score, stderr, n, unparsed, suite_hash, run_id, note
     FROM eval_round_scores WHERE round_id = ? ORDER BY organization_id, suite_id`,
    [roundId],
  );
  const decisions = await db.all<Record<string, unknown>>(
    `SELECT gate_id, organization_id, passed, evidence, reason FROM eval_gate_decisions WHERE round_id = ?
     ORDER BY gate_id, organization_id`,
    [roundId],
  );
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  const text = (v: unknown) => (v === null || v === undefined ? null : String(v));
  const panelScores = await db.all<{ member_id: string; organization_id: string; scores_json: string }>(
    'SELECT member_id, organization_id, scores_json FROM eval_panel_scores WHERE round_id = ? ORDER BY member_id, organization_id',
    [roundId],
  );
  return {
    references: references.map((r) => ({
      suiteId: String(r.suite_id),
      model: String(r.model),
      score: Number(r.score),
      stderr: num(r.stderr),
      n: num(r.n),
      source: r.source as ReferenceRow['source'],
      runId: text(r.run_id),
      citation: text(r.citation),
      url: text(r.url),
      protocol: text(r.protocol),
      suiteHash: text(r.suite_hash),
    })),
    scores: scores.map((s) => ({
      organizationId: String(s.organization_id),
      suiteId: String(s.suite_id),
      score: Number(s.score),
      stderr: num(s.stderr),
      n: num(s.n),
      unparsed: num(s.unparsed),
      suiteHash: text(s.suite_hash),
      runId: text(s.run_id),
      note: text(s.note),
    })),
    members: await membersOf(db, roundId),
    panelScores: panelScores.map((s) => ({
      memberId: s.member_id,
      organizationId: s.organization_id,
      scores: JSON.parse(s.scores_json) as Record<string, number>,
    })),
    gateDecisions: decisions.map((g) => ({
      gateId: String(g.gate_id),
      organizationId: String(g.organization_id),
      passed: Number(g.passed) === 1,
      evidence: String(g.evidence),
      reason: String(g.reason),
    })),
  };
}
