import type { Pool, PoolClient } from 'pg';
import { DEFAULT_LOCK_WAIT_MS } from './busy.ts';
import type { Database, Row, SqlExecutor, SqlValue } from './database.ts';
import { isReadOnlySql } from './read-only.ts';

// int8 (BIGINT, COUNT) as number: safe for ids, counts and millisecond timestamps. Money is always
// selected as TEXT (see database.ts), so a value beyond 2^53 here is a bug we want to hear about.
function int8(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new Error(`int8 ${value} exceeds 2^53; select it as TEXT`);
  return n;
}

const converted = new Map<string, string>();

/** `?` placeholders to `$1..$n`, so queries are written once for both dialects. */
function toPositional(sql: string): string {
  let out = converted.get(sql);
  if (out === undefined) {
    let i = 0;
    out = sql.replace(/\?/g, () => `$${++i}`);
    converted.set(sql, out);
  }
  return out;
}

function executor(client: Pool | PoolClient): SqlExecutor {
  return {
    async all<T = Row>(sql: string, params: readonly SqlValue[] = []) {
      const result = await client.query(toPositional(sql), params as unknown[]);
      return result.rows as T[];
    },
    async get<T = Row>(sql: string, params: readonly SqlValue[] = []) {
      const result = await client.query(toPositional(sql), params as unknown[]);
      return result.rows[0] as T | undefined;
    },
    async run(sql: string, params: readonly SqlValue[] = []) {
      const result = await client.query(toPositional(sql), params as unknown[]);
      return result.rowCount ?? 0;
    },
  };
}

class PostgresDatabase implements Database {
  readonly dialect = 'postgres' as const;
  /**
   * `Database.commits`: every COMMIT of `transaction`, and every statement that may write
   * (`isReadOnlySql`) and succeeded on the pool outside one (autocommit: one that failed applied
   * nothing). `exec` counts before it runs.
   */
  commits = 0;
  private readonly base: SqlExecutor;

  constructor(private readonly pool: Pool) {
    this.base = executor(pool);
  }

  async all<T = Row>(sql: string, params?: readonly SqlValue[]): Promise<T[]> {
    const rows = await this.base.all<T>(sql, params);
    if (!isReadOnlySql(sql)) this.commits++;
    return rows;
  }
  async get<T = Row>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined> {
    const row = await this.base.get<T>(sql, params);
    if (!isReadOnlySql(sql)) this.commits++;
    return row;
  }
  async run(sql: string, params?: readonly SqlValue[]): Promise<number> {
    const changed = await this.base.run(sql, params);
    this.commits++;
    return changed;
  }

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const result = await fn(executor(client));
      await client.query('COMMIT');
      this.commits++;
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }

  async exec(sql: string): Promise<void> {
    this.commits++;
    await this.pool.query(sql);
  }

  async ping(): Promise<void> {
    await this.pool.query('SELECT 1');
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

export interface PostgresOptions {
  /**
   * `lock_timeout` of every session of the pool, in ms (0: wait for ever, PostgreSQL's default). The
   * default is SQLite's wait: a lock not had is PostgreSQL's 55P03, which the hub answers as
   * `storage_busy` (503, nothing applied; decision 0038), where without it an admin request behind a
   * stuck transaction waited for ever.
   */
  lockTimeoutMs?: number;
}

export async function openPostgres(
  url: string,
  { lockTimeoutMs = DEFAULT_LOCK_WAIT_MS }: PostgresOptions = {},
): Promise<Database> {
  if (!Number.isSafeInteger(lockTimeoutMs) || lockTimeoutMs < 0)
    throw new RangeError(`lockTimeoutMs must be a whole number of ms ≥ 0, not ${lockTimeoutMs}`);
  // Imported here, not at the top: the hub's start bundle hoists a bundled module's package imports
  // to its own top, so a hub on SQLite would load pg (≈ 3 MB of heap) for nothing.
  const { default: pg } = await import('pg');
  pg.types.setTypeParser(20, int8);
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  // An idle client that loses its server must not crash the hub; the next query reports the error.
  pool.on('error', () => {});
  // Per session, not in the URL's or PGOPTIONS' `options`, which it would override or be overridden by:
  // the pool emits this before it hands the new client over, so the SET is queued first. A failure
  // surfaces as the client's next query's. The migrator's transaction waits for ever (its SET LOCAL).
  pool.on('connect', (client) => {
    client.query(`SET lock_timeout = ${lockTimeoutMs}`).catch(() => {});
  });
  await pool.query('SELECT 1');
  return new PostgresDatabase(pool);
}
