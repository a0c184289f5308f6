/**
 * Whether a statement cannot write, told from its text: drivers do not say (libsql's `reader` is true
 * of `RETURNING` too; pg says nothing before it runs). A SELECT, a PRAGMA (SQLite's; a syntax error on
 * PostgreSQL), or a WITH whose text names no writing verb. Callers take a read for a write when unsure:
 * a read taken for a write costs a needless lock wait or a commit counted, never a write unguarded.
 */
export function isReadOnlySql(sql: string): boolean {
  return /^\s*(SELECT|PRAGMA)\b/i.test(sql) || (/^\s*WITH\b/i.test(sql) && !WRITING_VERB.test(sql));
}

const WRITING_VERB = /\b(INSERT|UPDATE|DELETE|REPLACE|MERGE)\b/i;
