import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import Sqlite from 'libsql';
import pg from 'pg';
import { isStorageBusy } from './busy.ts';
import { openSqlite } from './sqlite.ts';

const dir = mkdtempSync(join(tmpdir(), 'kaihub-busy-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A rejection's reason, or a failure if it resolved. */
async function failureOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail('expected it to fail');
}

test('a write whose lock another connection holds past the wait fails as storage busy, and nothing of it is applied', async () => {
  const path = join(dir, 'held.sqlite');
  // 30 ms on timers, then 120 ms asleep in SQLite's busy handler
  const hub = openSqlite(path, { lockWaitMs: 150, asyncWaitMs: 30 });
  const holder = new Sqlite(path);
  try {
    holder.exec('PRAGMA journal_mode = WAL; CREATE TABLE t (n INTEGER NOT NULL)');
    holder.exec('BEGIN IMMEDIATE');
    const plain = await failureOf(hub.run('INSERT INTO t (n) VALUES (1)'));
    assert.ok(isStorageBusy(plain), `a plain write: ${String(plain)}`);
    // what callers and logs knew it by is kept
    assert.equal((plain as { code?: string }).code, 'SQLITE_BUSY');
    assert.match(String(plain), /database is locked/);
    const transaction = await failureOf(
      hub.transaction(async (tx) => {
        await tx.run('INSERT INTO t (n) VALUES (2)');
      }),
    );
    assert.ok(isStorageBusy(transaction), `a transaction: ${String(transaction)}`);
    holder.exec('COMMIT');
    assert.deepEqual(await hub.all('SELECT n FROM t'), [], 'nothing of either was applied');
    // a failure that is not a lock is not storage busy
    const other = await failureOf(hub.run('INSERT INTO missing (n) VALUES (1)'));
    assert.equal(isStorageBusy(other), false, String(other));
    assert.equal(isStorageBusy(new Error('database is locked')), false, 'a message alone says nothing');
  } finally {
    holder.close();
    await hub.close();
  }
});

test('on PostgreSQL a statement refused its lock (lock_not_available) is storage busy', {
  skip: process.env.KAIHUB_TEST_DATABASE !== 'postgres' ? 'runs with KAIHUB_TEST_DATABASE=postgres' : false,
}, async () => {
  const url = process.env.KAIHUB_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const table = `busy_${randomBytes(6).toString('hex')}`;
  const holder = new pg.Client({ connectionString: url });
  const waiter = new pg.Client({ connectionString: url });
  await holder.connect();
  await waiter.connect();
  try {
    await holder.query(`CREATE TABLE ${table} (n INTEGER NOT NULL)`);
    await holder.query('BEGIN');
    await holder.query(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`);
    await waiter.query("SET lock_timeout = '100ms'");
    const refused = await failureOf(waiter.query(`INSERT INTO ${table} (n) VALUES (1)`));
    assert.equal((refused as { code?: string }).code, '55P03');
    assert.ok(isStorageBusy(refused));
    const other = await failureOf(waiter.query(`INSERT INTO ${table}_missing (n) VALUES (1)`));
    assert.equal(isStorageBusy(other), false, String(other));
  } finally {
    await holder.query('ROLLBACK').catch(() => {});
    await holder.query(`DROP TABLE IF EXISTS ${table}`).catch(() => {});
    await holder.end();
    await waiter.end();
  }
});
