import type { Dialect, SqlExecutor, SqlValue } from './database.ts';

/**
 * A multi-row insert whose rows are new in the common case, keyed by a unique `key` column: returns the
 * keys it added (a row whose key was there already adds nothing). `insert` is the plain
 * `INSERT … VALUES …`; the skipping insert is the same with `ON CONFLICT (key) DO NOTHING RETURNING key`.
 *
 * On SQLite the plain insert is tried first: when no key was there (all but a replay after a crash) it
 * adds every row, and returning them cost the journal applier 1.2–1.6 µs a row (docs/benchmarks.md). A
 * failed statement changes nothing and leaves the transaction open, so on a constraint error the skipping
 * insert runs instead — and fails in turn if the error was the rows' own (a CHECK), as it always did. On
 * PostgreSQL a failed statement aborts the transaction: the skipping insert only.
 */
export async function insertNew(
  db: SqlExecutor,
  dialect: Dialect,
  key: string,
  insert: string,
  params: readonly SqlValue[],
  keys: readonly string[],
): Promise<readonly string[]> {
  if (dialect === 'sqlite') {
    try {
      await db.run(insert, params);
      return keys;
    } catch (error) {
      if (!/^SQLITE_CONSTRAINT/.test(String((error as { code?: unknown } | null)?.code ?? ''))) throw error;
    }
  }
  const rows = await db.all<Record<string, string>>(
    `${insert} ON CONFLICT (${key}) DO NOTHING RETURNING ${key}`,
    params,
  );
  return rows.map((row) => row[key]!);
}
