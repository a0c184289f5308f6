/**
 * Runs and their items in the database: the per-item cache every executor reads and writes. An item
 * is asked only by the worker holding its claim (a lease, renewed while it is asked; a dead worker's
 * claims lapse and another takes them), and its answer is written once — the first one wins — so a
 * run killed at any moment resumes without asking any answered item again.
 */
import type { Database, SqlExecutor, SqlValue } from '../../storage/database.ts';
import { rowBatches } from '../../storage/row-batches.ts';
import { aggregate, type ScoredItem } from '../scoring/aggregate.ts';
import type { ItemRequest, PreparedItem } from '../suites/prompts.ts';
import {
  bool,
  type ClaimedItem,
  type ExecutorKind,
  type ItemOutcome,
  type NewRun,
  RUN_COLUMNS,
  type RunItemView,
  type RunProgress,
  type RunRecord,
  type RunStatus,
  toItem,
  toRun,
} from './run-records.ts';

/** Rows per INSERT: well under both engines' parameter limits. */
const INSERT_BATCH = 200;
const CLAIMABLE = `status = 'pending' AND (claim_expires_at IS NULL OR claim_expires_at < ?)`;

export interface RunFilter {
  productId?: string | undefined;
  model?: string | undefined;
  status?: RunStatus | undefined;
  suite?: string | undefined;
  limit: number;
}

export class RunStore {
  constructor(readonly db: Database) {}

  /** The run and every item it asks, in one transaction with whatever else `tx` holds. */
  async create(tx: SqlExecutor, run: NewRun, items: readonly PreparedItem[], now: number): Promise<void> {
    const m = run.manifest;
    await tx.run(
      `INSERT INTO evaluation_runs (${RUN_COLUMNS}, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, NULL, NULL, ?, ?, NULL, NULL, ?, ?)`,
      [
        run.id,
        run.productId,
        run.model,
        m.suite.name,
        m.suite.kind,
        m.suite.hash,
        run.manifestHash,
        JSON.stringify(m),
        run.executor,
        run.concurrency,
        items.length,
        run.createdBy,
        now,
        run.private ? 1 : 0,
        now,
      ],
    );
    let start = 0;
    for (const batch of rowBatches(items, INSERT_BATCH)) {
      const params: SqlValue[] = [];
      for (let i = 0; i < batch.length; i++) {
        const item = batch[i]!;
        params.push(
          run.id,
          start + i,
          item.itemId,
          item.category,
          JSON.stringify(item.request),
          item.expected,
        );
      }
      await tx.run(
        `INSERT INTO evaluation_run_items (run_id, seq, item_id, category, request_json, expected, status, attempts)
         VALUES ${batch.map(() => "(?, ?, ?, ?, ?, ?, 'pending', 0)").join(', ')}`,
        params,
      );
      start += batch.length;
    }
  }

  async get(id: string, q: SqlExecutor = this.db): Promise<RunRecord | undefined> {
    const row = await q.get(`SELECT ${RUN_COLUMNS} FROM evaluation_runs WHERE id = ?`, [id]);
    return row ? toRun(row) : undefined;
  }

  async list(filter: RunFilter): Promise<RunRecord[]> {
    const where: string[] = [];
    const params: SqlValue[] = [];
    if (filter.productId) {
      where.push('product_id = ?');
      params.push(filter.productId);
    }
    if (filter.model) {
      where.push('model = ?');
      params.push(filter.model);
    }
    if (filter.status) {
      where.push('status = ?');
      params.push(filter.status);
    }
    if (filter.suite) {
      where.push('suite_name = ?');
      params.push(filter.suite);
    }
    const rows = await this.db.all(
      `SELECT ${RUN_COLUMNS} FROM evaluation_runs ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
        ORDER BY created_at DESC, id DESC LIMIT ?`,
      [...params, filter.limit],
    );
    return rows.map(toRun);
  }

  /**
   * The newest run of this exact manifest that has not finished well: the one a rerun resumes. Only
   * one as private as asked: resuming a public run for a private request would show its score.
   */
  async resumable(
    manifestHash: string,
    executors: readonly ExecutorKind[],
    isPrivate: boolean,
  ): Promise<RunRecord | undefined> {
    const row = await this.db.get(
      `SELECT ${RUN_COLUMNS} FROM evaluation_runs
        WHERE manifest_hash = ? AND status IN ('queued', 'running', 'incomplete') AND private = ?
          AND executor IN (${executors.map(() => '?').join(', ')})
        ORDER BY created_at DESC LIMIT 1`,
      [manifestHash, isPrivate ? 1 : 0, ...executors],
    );
    return row ? toRun(row) : undefined;
  }

  /** Runs the hub's own queue had not finished (the hub stopped or died): resumed at its start. */
  async unfinished(executor: ExecutorKind): Promise<RunRecord[]> {
    const rows = await this.db.all(
      `SELECT ${RUN_COLUMNS} FROM evaluation_runs WHERE executor = ? AND status IN ('queued', 'running')
        ORDER BY created_at`,
      [executor],
    );
    return rows.map(toRun);
  }

  async items(
    runId: string,
    filter: { status?: string | undefined; category?: string | undefined; afterSeq: number; limit: number },
  ): Promise<RunItemView[]> {
    const params: SqlValue[] = [runId, filter.afterSeq];
    let where = 'run_id = ? AND seq > ?';
    if (filter.status) {
      where += ' AND status = ?';
      params.push(filter.status);
    }
    if (filter.category) {
      where += ' AND category = ?';
      params.push(filter.category);
    }
    const rows = await this.db.all(`SELECT * FROM evaluation_run_items WHERE ${where} ORDER BY seq LIMIT ?`, [
      ...params,
      filter.limit,
    ]);
    return rows.map(toItem);
  }

  async progress(runId: string, now: number, range?: { from: number; to: number }): Promise<RunProgress> {
    const inRange = range ? ' AND seq >= ? AND seq < ?' : '';
    const rows = await this.db.all<{ status: string; n: number | string; claimed: number | string | null }>(
      `SELECT status, COUNT(*) AS n,
              SUM(CASE WHEN claim_expires_at IS NOT NULL AND claim_expires_at >= ? THEN 1 ELSE 0 END) AS claimed
         FROM evaluation_run_items WHERE run_id = ?${inRange} GROUP BY status`,
      [now, runId, ...(range ? [range.from, range.to] : [])],
    );
    const p: RunProgress = { done: 0, failed: 0, pending: 0, claimed: 0 };
    for (const r of rows) {
      if (r.status === 'done') p.done = Number(r.n);
      else if (r.status === 'failed') p.failed = Number(r.n);
      else {
        p.pending = Number(r.n);
        p.claimed = Number(r.claimed ?? 0);
      }
    }
    return p;
  }

  async markRunning(runId: string, now: number): Promise<void> {
    await this.db.run(
      `UPDATE evaluation_runs SET status = 'running', started_at = COALESCE(started_at, ?), updated_at = ?
        WHERE id = ? AND status IN ('queued', 'incomplete')`,
      [now, now, runId],
    );
  }

  /** A resumed run asks its failed items again. */
  async retryFailed(runId: string, now: number, tx: SqlExecutor): Promise<number> {
    const n = await tx.run(
      `UPDATE evaluation_run_items SET status = 'pending', error = NULL, claimed_by = NULL, claim_expires_at = NULL
        WHERE run_id = ? AND status = 'failed'`,
      [runId],
    );
    await tx.run(
      `UPDATE evaluation_runs SET status = 'running', result_json = NULL, finished_at = NULL, updated_at = ?
        WHERE id = ? AND status = 'incomplete'`,
      [now, runId],
    );
    return n;
  }

  /**
   * Up to `limit` items of the range no one holds (or whose holder's claim lapsed), now held by
   * `worker` until `now + leaseMs`. The conditions are checked again on each row as it is changed,
   * so two workers claiming at once never both get an item.
   */
  async claim(
    runId: string,
    worker: string,
    range: { from: number; to: number },
    limit: number,
    leaseMs: number,
    now: number,
  ): Promise<ClaimedItem[]> {
    const rows = await this.db.all<Record<string, unknown>>(
      `UPDATE evaluation_run_items SET claimed_by = ?, claim_expires_at = ?, attempts = attempts + 1
        WHERE run_id = ? AND ${CLAIMABLE}
          AND seq IN (SELECT seq FROM evaluation_run_items
                       WHERE run_id = ? AND ${CLAIMABLE} AND seq >= ? AND seq < ?
                       ORDER BY seq LIMIT ?)
        RETURNING seq, item_id, category, request_json, expected`,
      [worker, now + leaseMs, runId, now, runId, now, range.from, range.to, limit],
    );
    return rows
      .map((r) => ({
        seq: Number(r.seq),
        itemId: r.item_id as string,
        category: r.category as string,
        request: JSON.parse(r.request_json as string) as ItemRequest,
        expected: (r.expected as string | null) ?? null,
      }))
      .sort((a, b) => a.seq - b.seq);
  }

  /** Keeps the claims of the items `worker` is still asking. */
  async renewClaims(runId: string, worker: string, leaseMs: number, now: number): Promise<void> {
    await this.db.run(
      `UPDATE evaluation_run_items SET claim_expires_at = ?
        WHERE run_id = ? AND claimed_by = ? AND status = 'pending'`,
      [now + leaseMs, runId, worker],
    );
  }

  /** Gives back what `worker` holds but will not ask (it is stopping). */
  async releaseClaims(runId: string, worker: string): Promise<void> {
    await this.db.run(
      `UPDATE evaluation_run_items SET claimed_by = NULL, claim_expires_at = NULL
        WHERE run_id = ? AND claimed_by = ? AND status = 'pending'`,
      [runId, worker],
    );
  }

  /** The answer, scored; false when the item had been answered already (the first answer stays). */
  async recordAnswer(
    runId: string,
    seq: number,
    outcome: ItemOutcome,
    now: number,
    conversation: boolean,
    q: SqlExecutor = this.db,
  ): Promise<boolean> {
    const changed = await q.run(
      `UPDATE evaluation_run_items
          SET status = 'done', raw_answer = ?, extracted = ?, correct = ?, unparsed = ?, score = ?, judge_json = ?,
              request_ids = ?, latency_ms = ?, answered_at = ?, error = NULL, claimed_by = NULL, claim_expires_at = NULL
        WHERE run_id = ? AND seq = ? AND status = 'pending'`,
      [
        conversation ? JSON.stringify(outcome.answers) : (outcome.answers[0] ?? ''),
        outcome.extracted,
        outcome.correct === null ? null : outcome.correct ? 1 : 0,
        outcome.unparsed ? 1 : 0,
        outcome.score,
        outcome.judge === null ? null : JSON.stringify(outcome.judge),
        JSON.stringify(outcome.requestIds),
        Math.round(outcome.latencyMs),
        now,
        runId,
        seq,
      ],
    );
    return changed > 0;
  }

  async recordFailure(
    runId: string,
    seq: number,
    error: string,
    requestIds: string[],
    q: SqlExecutor = this.db,
  ): Promise<void> {
    await q.run(
      `UPDATE evaluation_run_items SET status = 'failed', error = ?, request_ids = ?, claimed_by = NULL,
              claim_expires_at = NULL
        WHERE run_id = ? AND seq = ? AND status = 'pending'`,
      [error, JSON.stringify(requestIds), runId, seq],
    );
  }

  async failRun(runId: string, error: string, now: number): Promise<void> {
    await this.db.run(
      `UPDATE evaluation_runs SET status = 'failed', error = ?, finished_at = ?, updated_at = ?
        WHERE id = ? AND status IN ('queued', 'running')`,
      [error, now, now, runId],
    );
  }

  /**
   * Once no item is pending: the result from the items, stored with the run (`completed`, or
   * `incomplete` when some item could not be answered). Whoever gets there first writes it; null
   * while items are pending or when another worker has written it.
   */
  async finish(runId: string, now: number): Promise<RunRecord | null> {
    return this.db.transaction(async (tx) => {
      const run = await this.get(runId, tx);
      if (!run || (run.status !== 'queued' && run.status !== 'running')) return null;
      const pending = await tx.get<{ n: number | string }>(
        `SELECT COUNT(*) AS n FROM evaluation_run_items WHERE run_id = ? AND status = 'pending'`,
        [runId],
      );
      if (Number(pending?.n ?? 0) > 0) return null;
      const rows = await tx.all<Record<string, unknown>>(
        'SELECT category, status, correct, unparsed, score FROM evaluation_run_items WHERE run_id = ? ORDER BY seq',
        [runId],
      );
      const items: ScoredItem[] = rows.map((r) => ({
        category: r.category as string,
        status: r.status as ScoredItem['status'],
        correct: bool(r.correct),
        unparsed: bool(r.unparsed) ?? false,
        score: r.score === null || r.score === undefined ? null : Number(r.score),
      }));
      const m = run.manifest;
      const result = aggregate(items, m.suite.kind, m.judge?.scale ?? null, m.seed);
      const status: RunStatus = result.overall.failed > 0 ? 'incomplete' : 'completed';
      const changed = await tx.run(
        `UPDATE evaluation_runs SET status = ?, result_json = ?, finished_at = ?, updated_at = ?
          WHERE id = ? AND status IN ('queued', 'running')`,
        [status, JSON.stringify(result), now, now, runId],
      );
      return changed > 0 ? { ...run, status, result, finishedAt: new Date(now).toISOString() } : null;
    });
  }

  /**
   * Each product's latest completed run per suite that the catalogue may show beside it: not private,
   * and named by no round (as a team's score or a measured reference) that is not yet published —
   * before the operator releases a round, no team sees anything of another's.
   */
  async latestCompleted(): Promise<RunRecord[]> {
    const rows = await this.db.all(
      `WITH shown AS (
         SELECT ${RUN_COLUMNS} FROM evaluation_runs r
          WHERE r.status = 'completed' AND r.private = 0
            AND NOT EXISTS (SELECT 1 FROM eval_round_scores s JOIN eval_rounds o ON o.id = s.round_id
                             WHERE s.run_id = r.id AND o.published_at IS NULL)
            AND NOT EXISTS (SELECT 1 FROM eval_round_references f JOIN eval_rounds o ON o.id = f.round_id
                             WHERE f.run_id = r.id AND o.published_at IS NULL))
       SELECT * FROM shown r
        WHERE r.finished_at = (SELECT MAX(r2.finished_at) FROM shown r2
                                WHERE r2.product_id = r.product_id AND r2.suite_name = r.suite_name)
        ORDER BY r.product_id, r.suite_name`,
    );
    return rows.map(toRun);
  }
}
