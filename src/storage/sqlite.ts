import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Sqlite from 'libsql';
import type { Database, Row, SqlExecutor, SqlValue } from './database.ts';

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
 */
class SqliteDatabase implements Database {
  readonly dialect = 'sqlite' as const;
  private readonly statements = new Map<string, Statement>();
  private gate: Promise<void> | null = null;

  constructor(private readonly db: InstanceType<typeof Sqlite>) {}

  private prepare(sql: string): Statement {
    let stmt = this.statements.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql) as unknown as Statement;
      this.statements.set(sql, stmt);
    }
    return stmt;
  }

  allSync<T>(sql: string, params: readonly SqlValue[]): T[] {
    return this.prepare(sql).all(...params) as T[];
  }

  runSync(sql: string, params: readonly SqlValue[]): number {
    return this.prepare(sql).run(...params).changes;
  }

  async all<T = Row>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    while (this.gate) await this.gate;
    return this.allSync<T>(sql, params);
  }

  async get<T = Row>(sql: string, params: readonly SqlValue[] = []): Promise<T | undefined> {
    while (this.gate) await this.gate;
    return this.prepare(sql).get(...params) as T | undefined;
  }

  async run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    while (this.gate) await this.gate;
    return this.runSync(sql, params);
  }

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    while (this.gate) await this.gate;
    let open!: () => void;
    this.gate = new Promise((resolve) => {
      open = resolve;
    });
    const tx: SqlExecutor = {
      all: async <R>(sql: string, params: readonly SqlValue[] = []) => this.allSync<R>(sql, params),
      get: async <R>(sql: string, params: readonly SqlValue[] = []) =>
        this.prepare(sql).get(...params) as R | undefined,
      run: async (sql: string, params: readonly SqlValue[] = []) => this.runSync(sql, params),
    };
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const result = await fn(tx);
      this.db.exec('COMMIT');
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
    this.db.exec(sql);
  }

  async ping(): Promise<void> {
    this.prepare('SELECT 1').get();
  }

  async close(): Promise<void> {
    this.db.close();
  }
}

export function openSqlite(path: string): Database {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Sqlite(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  return new SqliteDatabase(db);
}
