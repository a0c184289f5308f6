import type { Migration } from '../migrator.ts';

/**
 * Judged battles run by the hub (docs/evaluation-rounds.md#battle-runs): a run on an arena, one item
 * per prompt and pair of models (its two judge verdicts, positions swapped, and the battle it
 * recorded), and the products' answers, kept so that a resumed run asks nothing it has answered.
 */
export const migration027BattleRuns: Migration = {
  id: '027-battle-runs',
  statements: [
    `CREATE TABLE eval_battle_runs (
      id TEXT PRIMARY KEY,
      arena_id TEXT NOT NULL REFERENCES eval_arenas(id),
      spec_hash TEXT NOT NULL,
      spec_json TEXT NOT NULL,
      judge_model TEXT NOT NULL,
      concurrency INTEGER NOT NULL,
      status TEXT NOT NULL CHECK (status IN ('running', 'completed', 'incomplete')),
      created_at BIGINT NOT NULL,
      created_by TEXT NOT NULL,
      finished_at BIGINT
    )`,
    'CREATE INDEX eval_battle_runs_arena ON eval_battle_runs (arena_id, created_at)',
    'CREATE INDEX eval_battle_runs_hash ON eval_battle_runs (spec_hash)',
    `CREATE TABLE eval_battle_run_items (
      run_id TEXT NOT NULL REFERENCES eval_battle_runs(id),
      seq INTEGER NOT NULL,
      prompt_seq INTEGER NOT NULL,
      prompt_id TEXT NOT NULL,
      model_a TEXT NOT NULL,
      model_b TEXT NOT NULL,
      status TEXT NOT NULL CHECK (status IN ('pending', 'decided', 'unparsed', 'failed')),
      outcome TEXT CHECK (outcome IN ('a', 'b', 'tie')),
      battle_id TEXT,
      log_json TEXT,
      error TEXT,
      updated_at BIGINT NOT NULL,
      PRIMARY KEY (run_id, seq)
    )`,
    `CREATE TABLE eval_battle_run_answers (
      run_id TEXT NOT NULL REFERENCES eval_battle_runs(id),
      prompt_seq INTEGER NOT NULL,
      model TEXT NOT NULL,
      answers_json TEXT NOT NULL,
      request_ids_json TEXT NOT NULL,
      PRIMARY KEY (run_id, prompt_seq, model)
    )`,
  ],
};
