import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import Sqlite from 'libsql';
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
