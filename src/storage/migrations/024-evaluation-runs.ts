import type { Migration } from '../migrator.ts';

/**
 * Evaluation runs (src/evaluation/runs/) and their items: the per-item cache a resumed run reads, so
 * that no answered item is asked again, and the claim that keeps two workers from asking one item.
 */
export const migration024EvaluationRuns: Migration = {
  id: '024-evaluation-runs',
  statements: [
    `CREATE TABLE evaluation_runs (
      id TEXT PRIMARY KEY,
      product_id TEXT NOT NULL,
      model TEXT NOT NULL,
      suite_name TEXT NOT NULL,
      suite_kind TEXT NOT NULL,
      suite_hash TEXT NOT NULL,
      manifest_hash TEXT NOT NULL,
      manifest_json TEXT NOT NULL,
      status TEXT NOT NULL,
      executor TEXT NOT NULL,
      concurrency INTEGER NOT NULL,
      item_count INTEGER NOT NULL,
      result_json TEXT,
      error TEXT,
      created_by TEXT NOT NULL,
      created_at BIGINT NOT NULL,
      started_at BIGINT,
      finished_at BIGINT,
      updated_at BIGINT NOT NULL
    )`,
    'CREATE INDEX evaluation_runs_product ON evaluation_runs (product_id, status, finished_at)',
    'CREATE INDEX evaluation_runs_manifest ON evaluation_runs (manifest_hash, created_at)',
    'CREATE INDEX evaluation_runs_created ON evaluation_runs (created_at)',
    `CREATE TABLE evaluation_run_items (
      run_id TEXT NOT NULL REFERENCES evaluation_runs(id),
      seq INTEGER NOT NULL,
      item_id TEXT NOT NULL,
      category TEXT NOT NULL,
      request_json TEXT NOT NULL,
      expected TEXT,
      status TEXT NOT NULL,
      claimed_by TEXT,
      claim_expires_at BIGINT,
      attempts INTEGER NOT NULL,
      raw_answer TEXT,
      extracted TEXT,
      correct INTEGER,
      unparsed INTEGER,
      score DOUBLE PRECISION,
      judge_json TEXT,
      request_ids TEXT,
      error TEXT,
      latency_ms INTEGER,
      answered_at BIGINT,
      PRIMARY KEY (run_id, seq)
    )`,
    'CREATE INDEX evaluation_run_items_status ON evaluation_run_items (run_id, status, seq)',
  ],
};
