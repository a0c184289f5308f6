import type { Migration } from '../migrator.ts';

const REFUSAL = 'a programme closure never changes: its final report is kept as it was made';

/**
 * A programme's closing (billing/programme-close.ts): when, by whom, the tranche split, and the final
 * report per voucher and agreement as it was computed — append-only, like statements.
 */
export const migration021ProgrammeClosures: Migration = {
  id: '021-programme-closures',
  statements: [
    `CREATE TABLE programme_closures (
      programme_id TEXT PRIMARY KEY REFERENCES programmes(id),
      closed_at BIGINT NOT NULL,
      closed_by TEXT NOT NULL,
      report_json TEXT NOT NULL
    )`,
  ],
  dialectStatements: {
    sqlite: [
      `CREATE TRIGGER programme_closures_no_update BEFORE UPDATE ON programme_closures
       BEGIN SELECT RAISE(ABORT, '${REFUSAL}'); END`,
      `CREATE TRIGGER programme_closures_no_delete BEFORE DELETE ON programme_closures
       BEGIN SELECT RAISE(ABORT, '${REFUSAL}'); END`,
    ],
    postgres: [
      `CREATE FUNCTION kaihub_programme_closures_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION '${REFUSAL}'; END $$`,
      `CREATE TRIGGER programme_closures_no_change BEFORE UPDATE OR DELETE ON programme_closures
       FOR EACH ROW EXECUTE FUNCTION kaihub_programme_closures_refuse()`,
    ],
  },
};
