import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Sqlite from 'libsql';
import { DEFAULT_LOCK_WAIT_MS, StorageBusyError } from './busy.ts';
import type { Database, Row, SqlExecutor, SqlValue } from './database.ts';
import { isReadOnlySql } from './read-only.ts';

/**
 * How much of a statement's lock wait (`lockWaitMs`) is spent on timers before the thread sleeps in
 * SQLite's busy handler.
 */
const ASYNC_WAIT_MS = 50;
/**
 * The SQL text whose prepared statements a connection keeps: their memory is native (≈ 30–55 bytes a
 * character of SQL, measured), unseen by V8, so a count alone would not bound it — 250 cached shapes of
 * one multi-row insert held 62 MiB (decision 0036). Callers batch rows in few shapes (row-batches.ts);
 * this is the bound for every statement whatever its caller does.
 */
export const STATEMENT_CACHE_CHARS = 256 * 1024;

/** A lock-wait hook is told, and whatever it does wrong never fails the transaction that waits. */
function tell(hook: ((sleeping: boolean) => void) | null, sleeping: boolean): void {
  try {
    hook?.(sleeping);
  } catch {
    // the hook's own business (lifting a thread): the wait goes on without it
  }
}

function isBusy(error: unknown): boolean {
  return (
    ((error as { code?: unknown } | null)?.code as string | undefined)?.startsWith('SQLITE_BUSY') ?? false
  );
}

interface Statement {
  all(...params: unknown[]): unknown[];
  get(...params: unknown[]): unknown;
  run(...params: unknown[]): { changes: number };
}

/**
 * SQLite through libsql's synchronous, better-sqlite3-compatible binding (prebuilt, no compiler at
 * install). WAL with synchronous=NORMAL: a committed write survives the process being killed (it is
 * in the OS page cache and the WAL); only a power loss can take the last transactions.
 *
 * The connection is shared by the whole process, so while an async transaction is open every other
 * query waits at `gate`; otherwise another request's write would join, and could be rolled back with,
 * a transaction it knows nothing about.
 *
 * Waiting for another connection's write lock (the journal applier's, decision 0030, or another
 * process's) is asynchronous at first (`begin`): SQLite's busy handler sleeps on the calling thread,
 * and an admin write stopped every `/v1` answer for as long as the applier's batch took. A plain
 * `run` is a one-statement transaction so that it waits the same way.
 */
export class SqliteDatabase implements Database {
  readonly dialect = 'sqlite' as const;
  /**
   * `Database.commits`: every COMMIT of `transaction` (and so of `run`, and of an `all`/`get` that may
   * write: `isReadOnlySql`) and every `exec`.
   */
  commits = 0;
  /** In the order first prepared: past the budget the oldest go (a hot one is prepared again, ≈ 40 µs). */
  private readonly statements = new Map<string, Statement>();
  private statementChars = 0;
  private gate: Promise<void> | null = null;
  readonly lockWaiters = new Int32Array(new SharedArrayBuffer(4));
  /** Told when a transaction's thread sleeps for another connection's lock, and when it wakes (`begin`). */
  lockWaitHook: ((sleeping: boolean) => void) | null = null;
  /** Opens `gate` (set with it by `begin`). */
  private open: () => void = () => {};

  constructor(
    private readonly db: InstanceType<typeof Sqlite>,
    private readonly lockWaitMs: number,
    private readonly asyncWaitMs: number,
  ) {}

  private prepare(sql: string): Statement {
    let stmt = this.statements.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql) as unknown as Statement;
      // a dropped statement is finalized when V8 collects it: libsql has no explicit finalize
      for (const oldest of this.statements.keys()) {
        if (this.statementChars + sql.length <= STATEMENT_CACHE_CHARS) break;
        this.statements.delete(oldest);
        this.statementChars -= oldest.length;
      }
      this.statements.set(sql, stmt);
      this.statementChars += sql.length;
    }
    return stmt;
  }

  /** What the connection keeps prepared: how many statements, and their SQL text's length. */
  get preparedStatements(): { count: number; chars: number } {
    return { count: this.statements.size, chars: this.statementChars };
  }

  allSync<T>(sql: string, params: readonly SqlValue[]): T[] {
    return this.prepare(sql).all(...params) as T[];
  }

  runSync(sql: string, params: readonly SqlValue[]): number {
    return this.prepare(sql).run(...params).changes;
  }

  /**
   * `BEGIN IMMEDIATE` once no transaction of this connection is open, retried while another
   * connection's lock refuses it, until `lockWaitMs` has passed. For the first `asyncWaitMs` the
   * caller awaits a timer between attempts and every other request goes on; after that the thread
   * sleeps in SQLite's busy handler, as it always did. The holder is then most likely the journal
   * applier starved of CPU (it runs SCHED_IDLE, decision 0030, and cannot let go of the lock before it
   * has run), and a sleeping event loop is what frees a core for it: waiting on timers there left an
   * admin write refused after 5 s with `/v1` saturated (decision 0032). A sleeping event loop frees a
   * core only if no other process takes it, so `lockWaitHook` hears of the sleep and the hub lifts the
   * applier out of SCHED_IDLE meanwhile (decision 0038). A lock still not had after `lockWaitMs` is a
   * `StorageBusyError`: the transaction never began.
   *
   * Only `BEGIN` waits this way: it is an `exec`, which leaves no statement behind when refused. A
   * prepared statement refused by a lock is not reset by libsql, and until it runs again the
   * connection can neither commit (`SQL statements in progress`) nor write (`SQLITE_BUSY_SNAPSHOT`); so
   * every write runs inside a transaction begun here (`run`, and `all`/`get` of anything
   * `isReadOnlySql` does not call a read), and only reads keep the busy handler (in WAL a reader is
   * refused only while another connection recovers or resets the log: rare and short). `exec` keeps it
   * too: migrations at start.
   */
  private async begin(): Promise<void> {
    let refusedAt = 0;
    let waiting = false;
    try {
      for (let pause = 1; ; pause = Math.min(pause * 2, 10)) {
        while (this.gate) await this.gate;
        // counted from the first refusal, not from `started`: time spent behind this connection's own
        // transaction (the gate) is not a wait for another connection's lock, and the first attempt
        // never sleeps — so a sleep always follows a refusal, and the hook always hears of it
        const waited = waiting ? performance.now() - refusedAt : 0;
        const sleep = waiting && waited >= this.asyncWaitMs;
        const timeout = sleep ? Math.max(1, Math.ceil(this.lockWaitMs - waited)) : 0;
        if (timeout !== this.lockWaitMs) this.db.exec(`PRAGMA busy_timeout = ${timeout}`);
        // about to sleep, never sooner: a wait that ends on timers (the applier committing a batch it
        // is running) costs nothing more
        const hook = sleep ? this.lockWaitHook : null;
        tell(hook, true);
        try {
          this.db.exec('BEGIN IMMEDIATE');
          // in the same turn as BEGIN: nothing else may run a statement inside this transaction
          this.gate = new Promise((resolve) => {
            this.open = resolve;
          });
          return;
        } catch (error) {
          if (!isBusy(error)) throw error;
          if (sleep) throw new StorageBusyError(error);
        } finally {
          tell(hook, false);
          if (timeout !== this.lockWaitMs) this.db.exec(`PRAGMA busy_timeout = ${this.lockWaitMs}`);
        }
        if (!waiting) {
          waiting = true;
          refusedAt = performance.now();
          Atomics.add(this.lockWaiters, 0, 1);
        }
        await new Promise<void>((resolve) => setTimeout(resolve, pause));
      }
    } finally {
      if (waiting) {
        Atomics.sub(this.lockWaiters, 0, 1);
        Atomics.notify(this.lockWaiters, 0);
      }
    }
  }

  async all<T = Row>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    // a write (INSERT … RETURNING) is a one-statement transaction, as `run` is: it waits for the lock
    // in `begin`, not asleep in SQLite's busy handler with every request behind it
    if (!isReadOnlySql(sql)) return this.transaction(async () => this.allSync<T>(sql, params));
    while (this.gate) await this.gate;
    return this.allSync<T>(sql, params);
  }

  async get<T = Row>(sql: string, params: readonly SqlValue[] = []): Promise<T | undefined> {
    if (!isReadOnlySql(sql))
      return this.transaction(async () => this.prepare(sql).get(...params) as T | undefined);
    while (this.gate) await this.gate;
    return this.prepare(sql).get(...params) as T | undefined;
  }

  run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    return this.transaction(async () => this.runSync(sql, params));
  }

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    await this.begin();
    const open = this.open;
    const tx: SqlExecutor = {
      all: async <R>(sql: string, params: readonly SqlValue[] = []) => this.allSync<R>(sql, params),
      get: async <R>(sql: string, params: readonly SqlValue[] = []) =>
        this.prepare(sql).get(...params) as R | undefined,
      run: async (sql: string, params: readonly SqlValue[] = []) => this.runSync(sql, params),
    };
    try {
      const result = await fn(tx);
      this.db.exec('COMMIT');
      this.commits++;
      return result;
    } catch (error) {
      this.db.exec('ROLLBACK');
      throw error;
    } finally {
      this.gate = null;
      open();
    }
  }

  async exec(sql: string): Promise<void> {
    while (this.gate) await this.gate;
    // before it: of several statements, those before a failing one are applied
    this.commits++;
    this.db.exec(sql);
  }

  async ping(): Promise<void> {
    this.prepare('SELECT 1').get();
  }

  async close(): Promise<void> {
    this.db.close();
  }
}

/**
 * Blocks the calling thread (a worker's, never the event loop's) while a hub connection waits for
 * the write lock, for at most `maxMs`: what the journal applier does between its batches.
 */
export function stepAsideFor(waiters: Int32Array, maxMs: number): void {
  const deadline = performance.now() + maxMs;
  for (;;) {
    const waiting = Atomics.load(waiters, 0);
    const left = deadline - performance.now();
    if (waiting === 0 || left <= 0) return;
    Atomics.wait(waiters, 0, waiting, left);
  }
}

export interface SqliteLockWaits {
  /** How long a statement waits for another connection's lock before it fails (`DEFAULT_LOCK_WAIT_MS`). */
  lockWaitMs?: number;
  /**
   * How much of it the thread goes on with other work (50 ms; 0 for a thread that serves nothing else,
   * such as the journal applier).
   */
  asyncWaitMs?: number;
}

export function openSqlite(
  path: string,
  { lockWaitMs = DEFAULT_LOCK_WAIT_MS, asyncWaitMs = ASYNC_WAIT_MS }: SqliteLockWaits = {},
): SqliteDatabase {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Sqlite(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma(`busy_timeout = ${lockWaitMs}`);
  return new SqliteDatabase(db, lockWaitMs, asyncWaitMs);
}
