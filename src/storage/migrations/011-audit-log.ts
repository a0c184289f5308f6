import type { Migration } from '../migrator.ts';

const REFUSAL = 'audit_log is append-only: entries are never changed or deleted';

/**
 * Who changed what, when, through which request: one row per change, before and after as JSON with
 * every secret removed (src/audit/audit-log.ts). Append-only in the database itself, not only in the
 * code: a trigger on each engine refuses UPDATE and DELETE (and TRUNCATE on PostgreSQL), so no
 * code path, present or future, can rewrite history without first dropping the trigger.
 */
export const migration011AuditLog: Migration = {
  id: '011-audit-log',
  statements: [
    `CREATE TABLE audit_log (
      id TEXT PRIMARY KEY,
      created_at BIGINT NOT NULL,
      actor_id TEXT NOT NULL,
      actor_token_id TEXT,
      source TEXT NOT NULL,
      action TEXT NOT NULL,
      entity_type TEXT NOT NULL,
      entity_id TEXT NOT NULL,
      before_json TEXT,
      after_json TEXT,
      request_json TEXT,
      request_id TEXT
    )`,
    'CREATE INDEX audit_log_time ON audit_log (created_at)',
    'CREATE INDEX audit_log_entity ON audit_log (entity_type, entity_id, created_at)',
    'CREATE INDEX audit_log_actor ON audit_log (actor_id, created_at)',
  ],
  dialectStatements: {
    sqlite: [
      `CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
       BEGIN SELECT RAISE(ABORT, '${REFUSAL}'); END`,
      `CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
       BEGIN SELECT RAISE(ABORT, '${REFUSAL}'); END`,
    ],
    postgres: [
      `CREATE FUNCTION kaihub_audit_log_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION '${REFUSAL}'; END $$`,
      `CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
       FOR EACH ROW EXECUTE FUNCTION kaihub_audit_log_refuse()`,
      `CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
       FOR EACH STATEMENT EXECUTE FUNCTION kaihub_audit_log_refuse()`,
    ],
  },
};
