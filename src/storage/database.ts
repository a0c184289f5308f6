/**
 * One small SQL interface for SQLite and PostgreSQL. Queries are written once, with `?` placeholders
 * and the portable subset both dialects share (ON CONFLICT, RETURNING, CAST(x AS TEXT)); only this
 * folder knows which engine is underneath.
 *
 * Conventions every caller relies on:
 * - timestamps are BIGINT milliseconds since the epoch, read back as `number`;
 * - money is BIGINT micro-won; always select it as `CAST(col AS TEXT)` and parse with `BigInt`,
 *   because a JS number cannot hold every int64 and the two drivers disagree on how to return them;
 * - booleans are INTEGER 0/1.
 */
import { DEFAULT_LOCK_WAIT_MS } from './busy.ts';

export type SqlValue = string | number | bigint | null;
export type Row = Record<string, unknown>;

export type Dialect = 'sqlite' | 'postgres';

export interface SqlExecutor {
  all<T = Row>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  get<T = Row>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined>;
  /** Runs a statement and returns the number of rows it changed. */
  run(sql: string, params?: readonly SqlValue[]): Promise<number>;
}

export interface Database extends SqlExecutor {
  readonly dialect: Dialect;
  /**
   * How many times this database has committed something, counted since it was opened: a transaction's
   * COMMIT, and a statement that may have written outside one. Never decreases; may count a statement
   * that wrote nothing. Unchanged across a request's handling means the request applied nothing, on
   * this database; changed means it may have (another request committing meanwhile changes it too).
   */
  readonly commits: number;
  /**
   * SQLite: how many of this connection's transactions wait for another connection's write lock,
   * shared with the journal applier's thread, which steps aside while it is above 0 (decision 0032).
   */
  readonly lockWaiters?: Int32Array;
  /**
   * SQLite: called (`true`) when one of this connection's transactions has waited `asyncWaitMs` for
   * another connection's write lock and its thread is about to sleep for the rest of the wait, and
   * (`false`) when that sleep ends. The hub lifts the journal applier meanwhile (decision 0038).
   */
  lockWaitHook?: ((sleeping: boolean) => void) | null;
  /** Runs `fn` in one transaction; commits when it resolves, rolls back when it throws. */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /** Executes several statements (DDL); no parameters. */
  exec(sql: string): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//i.test(location);
}

/**
 * `lockWaitMs`: how long a write waits for a lock another connection or session holds, on either engine
 * (SQLite's wait, PostgreSQL's `lock_timeout`); `sqliteAsyncWaitMs`: how much of it a SQLite connection
 * spends on timers before it sleeps in the busy handler (sqlite.ts; tests shorten it).
 */
export async function openDatabase(
  location: string,
  {
    lockWaitMs = DEFAULT_LOCK_WAIT_MS,
    sqliteAsyncWaitMs,
  }: { lockWaitMs?: number; sqliteAsyncWaitMs?: number } = {},
): Promise<Database> {
  if (isPostgresUrl(location)) {
    const { openPostgres } = await import('./postgres.ts');
    return openPostgres(location, { lockTimeoutMs: lockWaitMs });
  }
  const { openSqlite } = await import('./sqlite.ts');
  return openSqlite(location, { lockWaitMs, asyncWaitMs: sqliteAsyncWaitMs });
}

/** A unique-constraint violation, whichever engine raised it. */
export function isUniqueViolation(error: unknown): boolean {
  const e = error as { code?: string; message?: string } | undefined;
  return e?.code === '23505' || /UNIQUE constraint failed/i.test(e?.message ?? '');
}
