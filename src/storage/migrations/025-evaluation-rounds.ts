import type { Migration } from '../migrator.ts';

const CLOSED = 'a closed evaluation round never changes: its history is kept as it was decided';

/** Tables that hold what was recorded for a round: frozen, in the database itself, once it closes. */
const ROUND_INPUT_TABLES = [
  'eval_round_teams',
  'eval_round_references',
  'eval_round_scores',
  'eval_panel_members',
  'eval_panel_scores',
  'eval_gate_decisions',
];

const sqliteFrozen = (table: string) =>
  (['INSERT', 'UPDATE', 'DELETE'] as const).map(
    (op) =>
      `CREATE TRIGGER ${table}_frozen_${op.toLowerCase()} BEFORE ${op} ON ${table}
       WHEN (SELECT status FROM eval_rounds WHERE id = ${op === 'INSERT' ? 'NEW' : 'OLD'}.round_id) = 'closed'
       BEGIN SELECT RAISE(ABORT, '${CLOSED}'); END`,
  );

/**
 * Evaluation arenas and rounds (docs/evaluation-rounds.md, decision 0023): pairwise battles rated by
 * Bradley–Terry; rounds with their teams, reference rows, benchmark scores (by value, each naming the
 * run or the source it came from), panel members and their scores, gate decisions, and the closure —
 * the definition, the inputs and the result as decided, append-only like a programme's closure.
 */
export const migration025EvaluationRounds: Migration = {
  id: '025-evaluation-rounds',
  statements: [
    `CREATE TABLE eval_arenas (
      id TEXT PRIMARY KEY,
      name TEXT NOT NULL UNIQUE,
      description TEXT,
      judge_model TEXT,
      public INTEGER NOT NULL DEFAULT 0,
      created_at BIGINT NOT NULL,
      created_by TEXT NOT NULL
    )`,
    `CREATE TABLE eval_battles (
      id TEXT PRIMARY KEY,
      arena_id TEXT NOT NULL REFERENCES eval_arenas(id),
      model_a TEXT NOT NULL,
      model_b TEXT NOT NULL,
      outcome TEXT NOT NULL CHECK (outcome IN ('a', 'b', 'tie')),
      source TEXT NOT NULL CHECK (source IN ('judge', 'human')),
      judge_model TEXT,
      voter_id TEXT,
      prompt_id TEXT,
      batch_id TEXT NOT NULL,
      created_at BIGINT NOT NULL,
      CHECK (model_a <> model_b)
    )`,
    'CREATE INDEX eval_battles_arena ON eval_battles (arena_id, id)',
    // a person votes once on a prompt of an arena (judge battles have no voter)
    'CREATE UNIQUE INDEX eval_battles_one_vote ON eval_battles (arena_id, voter_id, prompt_id)',

    `CREATE TABLE eval_rounds (
      id TEXT PRIMARY KEY,
      name TEXT NOT NULL,
      sequence INTEGER NOT NULL,
      previous_round_id TEXT REFERENCES eval_rounds(id),
      status TEXT NOT NULL CHECK (status IN ('draft', 'open', 'closed')),
      definition_json TEXT NOT NULL,
      created_at BIGINT NOT NULL,
      created_by TEXT NOT NULL,
      updated_at BIGINT NOT NULL,
      opened_at BIGINT,
      closed_at BIGINT,
      published_at BIGINT,
      published_by TEXT
    )`,
    `CREATE TABLE eval_round_teams (
      round_id TEXT NOT NULL REFERENCES eval_rounds(id),
      organization_id TEXT NOT NULL REFERENCES organizations(id),
      PRIMARY KEY (round_id, organization_id)
    )`,
    'CREATE INDEX eval_round_teams_organization ON eval_round_teams (organization_id)',
    `CREATE TABLE eval_round_references (
      round_id TEXT NOT NULL REFERENCES eval_rounds(id),
      suite_id TEXT NOT NULL,
      model TEXT NOT NULL,
      score DOUBLE PRECISION NOT NULL,
      stderr DOUBLE PRECISION,
      n INTEGER,
      source TEXT NOT NULL CHECK (source IN ('measured', 'published')),
      run_id TEXT,
      citation TEXT,
      url TEXT,
      protocol TEXT,
      suite_hash TEXT,
      recorded_at BIGINT NOT NULL,
      recorded_by TEXT NOT NULL,
      PRIMARY KEY (round_id, suite_id, model)
    )`,
    `CREATE TABLE eval_round_scores (
      round_id TEXT NOT NULL REFERENCES eval_rounds(id),
      organization_id TEXT NOT NULL,
      suite_id TEXT NOT NULL,
      score DOUBLE PRECISION NOT NULL,
      stderr DOUBLE PRECISION,
      n INTEGER,
      unparsed INTEGER,
      suite_hash TEXT,
      run_id TEXT,
      note TEXT,
      recorded_at BIGINT NOT NULL,
      recorded_by TEXT NOT NULL,
      PRIMARY KEY (round_id, organization_id, suite_id)
    )`,
    `CREATE TABLE eval_panel_members (
      id TEXT PRIMARY KEY,
      round_id TEXT NOT NULL REFERENCES eval_rounds(id),
      axis_id TEXT NOT NULL,
      name TEXT NOT NULL,
      user_id TEXT REFERENCES users(id),
      conflicts_json TEXT NOT NULL,
      created_at BIGINT NOT NULL,
      updated_at BIGINT NOT NULL
    )`,
    'CREATE INDEX eval_panel_members_round ON eval_panel_members (round_id)',
    `CREATE TABLE eval_panel_scores (
      round_id TEXT NOT NULL REFERENCES eval_rounds(id),
      member_id TEXT NOT NULL REFERENCES eval_panel_members(id),
      organization_id TEXT NOT NULL,
      scores_json TEXT NOT NULL,
      comment TEXT,
      recorded_at BIGINT NOT NULL,
      recorded_by TEXT NOT NULL,
      PRIMARY KEY (member_id, organization_id)
    )`,
    'CREATE INDEX eval_panel_scores_round ON eval_panel_scores (round_id)',
    `CREATE TABLE eval_gate_decisions (
      round_id TEXT NOT NULL REFERENCES eval_rounds(id),
      gate_id TEXT NOT NULL,
      organization_id TEXT NOT NULL,
      passed INTEGER NOT NULL,
      evidence TEXT NOT NULL,
      reason TEXT NOT NULL,
      decided_at BIGINT NOT NULL,
      decided_by TEXT NOT NULL,
      PRIMARY KEY (round_id, gate_id, organization_id)
    )`,
    `CREATE TABLE eval_round_closures (
      round_id TEXT PRIMARY KEY REFERENCES eval_rounds(id),
      closed_at BIGINT NOT NULL,
      closed_by TEXT NOT NULL,
      definition_json TEXT NOT NULL,
      inputs_json TEXT NOT NULL,
      result_json TEXT NOT NULL
    )`,
  ],
  dialectStatements: {
    sqlite: [
      `CREATE TRIGGER eval_round_closures_no_update BEFORE UPDATE ON eval_round_closures
       BEGIN SELECT RAISE(ABORT, '${CLOSED}'); END`,
      `CREATE TRIGGER eval_round_closures_no_delete BEFORE DELETE ON eval_round_closures
       BEGIN SELECT RAISE(ABORT, '${CLOSED}'); END`,
      // publishing a closed round is the one change it allows
      `CREATE TRIGGER eval_rounds_closed_update BEFORE UPDATE ON eval_rounds
       WHEN OLD.status = 'closed' AND (NEW.status <> OLD.status OR NEW.definition_json <> OLD.definition_json
         OR NEW.name <> OLD.name OR NEW.closed_at <> OLD.closed_at)
       BEGIN SELECT RAISE(ABORT, '${CLOSED}'); END`,
      `CREATE TRIGGER eval_rounds_closed_delete BEFORE DELETE ON eval_rounds WHEN OLD.status = 'closed'
       BEGIN SELECT RAISE(ABORT, '${CLOSED}'); END`,
      ...ROUND_INPUT_TABLES.flatMap(sqliteFrozen),
    ],
    postgres: [
      `CREATE FUNCTION kaihub_eval_closed_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION '${CLOSED}'; END $$`,
      `CREATE TRIGGER eval_round_closures_no_change BEFORE UPDATE OR DELETE ON eval_round_closures
       FOR EACH ROW EXECUTE FUNCTION kaihub_eval_closed_refuse()`,
      `CREATE FUNCTION kaihub_eval_rounds_keep_closed() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF TG_OP = 'DELETE' THEN
           IF OLD.status = 'closed' THEN RAISE EXCEPTION '${CLOSED}'; END IF;
           RETURN OLD;
         END IF;
         IF OLD.status = 'closed' AND (NEW.status IS DISTINCT FROM OLD.status
             OR NEW.definition_json IS DISTINCT FROM OLD.definition_json
             OR NEW.name IS DISTINCT FROM OLD.name OR NEW.closed_at IS DISTINCT FROM OLD.closed_at) THEN
           RAISE EXCEPTION '${CLOSED}';
         END IF;
         RETURN NEW;
       END $$`,
      `CREATE TRIGGER eval_rounds_keep_closed BEFORE UPDATE OR DELETE ON eval_rounds
       FOR EACH ROW EXECUTE FUNCTION kaihub_eval_rounds_keep_closed()`,
      `CREATE FUNCTION kaihub_eval_round_input_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
       DECLARE target TEXT;
       BEGIN
         IF TG_OP = 'INSERT' THEN target := NEW.round_id; ELSE target := OLD.round_id; END IF;
         IF EXISTS (SELECT 1 FROM eval_rounds WHERE id = target AND status = 'closed') THEN
           RAISE EXCEPTION '${CLOSED}';
         END IF;
         IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
         RETURN NEW;
       END $$`,
      ...ROUND_INPUT_TABLES.map(
        (table) => `CREATE TRIGGER ${table}_frozen BEFORE INSERT OR UPDATE OR DELETE ON ${table}
         FOR EACH ROW EXECUTE FUNCTION kaihub_eval_round_input_frozen()`,
      ),
    ],
  },
};
