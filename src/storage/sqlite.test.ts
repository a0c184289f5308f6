import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import Sqlite from 'libsql';
import { isStorageBusy } from './busy.ts';
import type { Database } from './database.ts';
import { openSqlite, STATEMENT_CACHE_CHARS } from './sqlite.ts';

const dir = mkdtempSync(join(tmpdir(), 'kaihub-sqlite-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let databases = 0;
/**
 * The hub's connection, and a second connection to the same file in the same thread, in the journal
 * applier's place: it can only let go of its lock while the hub's thread turns.
 */
function twoConnections(lockWaitMs: number, asyncWaitMs = lockWaitMs) {
  const path = join(dir, `hub-${++databases}.sqlite`);
  const hub = openSqlite(path, { lockWaitMs, asyncWaitMs });
  const applier = new Sqlite(path);
  applier.exec('PRAGMA journal_mode = WAL; CREATE TABLE t (n INTEGER NOT NULL)');
  return { hub, applier };
}

/** Counts the event loop's turns until `stop` is called: how many a synchronous wait would have taken. */
function countTurns(): () => number {
  let turns = 0;
  const timer = setInterval(() => turns++, 2);
  return () => {
    clearInterval(timer);
    return turns;
  };
}

/** The table's values in order, as the hub's connection reads them. */
const values = async (hub: Database) =>
  (await hub.all<{ n: number }>('SELECT n FROM t ORDER BY n')).map((r) => r.n);

const count = (applier: InstanceType<typeof Sqlite>) =>
  (applier.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n;

test("a write waits for another connection's lock without stopping the event loop, then lands", async () => {
  const { hub, applier } = twoConnections(5000);
  try {
    applier.exec('BEGIN IMMEDIATE');
    applier.prepare('INSERT INTO t (n) VALUES (1)').run();
    const stop = countTurns();
    const started = performance.now();
    const write = hub.run('INSERT INTO t (n) VALUES (2)');
    // the applier's batch takes 150 ms to commit; the hub keeps turning meanwhile
    await sleep(150);
    assert.equal(hub.lockWaiters?.[0], 1, 'the waiting write is counted for the applier to see');
    applier.exec('COMMIT');
    assert.equal(await write, 1);
    assert.equal(hub.lockWaiters?.[0], 0);
    const waited = performance.now() - started;
    const turns = stop();
    assert.ok(waited >= 140, `the write waited for the lock (${waited.toFixed(0)} ms)`);
    assert.ok(turns >= 20, `the event loop kept turning while the write waited (${turns} turns of 2 ms)`);
    assert.equal(count(applier), 2);
  } finally {
    applier.close();
    await hub.close();
  }
});

test('a write through all or get (INSERT … RETURNING) waits for the lock the same way, and a refused one is storage busy', async () => {
  const { hub, applier } = twoConnections(5000);
  try {
    applier.exec('BEGIN IMMEDIATE');
    applier.prepare('INSERT INTO t (n) VALUES (1)').run();
    const stop = countTurns();
    const inserted = hub.all<{ n: number }>('INSERT INTO t (n) VALUES (2) RETURNING n');
    const updated = hub.get<{ n: number }>('UPDATE t SET n = 3 WHERE n = 1 RETURNING n');
    // a read, CTE or not, needs no lock: it answers at once, from before the applier's batch
    assert.deepEqual(await hub.all('WITH x AS (SELECT n FROM t) SELECT count(*) AS c FROM x'), [{ c: 0 }]);
    await sleep(150);
    assert.equal(hub.lockWaiters?.[0], 2, 'both waiting writes are counted for the applier to see');
    applier.exec('COMMIT');
    assert.deepEqual(await inserted, [{ n: 2 }]);
    assert.equal((await updated)?.n, 3, 'it ran after the applier committed');
    const turns = stop();
    assert.ok(turns >= 20, `the event loop kept turning while the writes waited (${turns} turns of 2 ms)`);
    assert.deepEqual(await values(hub), [2, 3]);
  } finally {
    applier.close();
    await hub.close();
  }
  const short = twoConnections(40, 20);
  try {
    short.applier.exec('BEGIN IMMEDIATE');
    await assert.rejects(short.hub.all('INSERT INTO t (n) VALUES (4) RETURNING n'), (error) =>
      isStorageBusy(error),
    );
    await assert.rejects(short.hub.get('INSERT INTO t (n) VALUES (5) RETURNING n'), (error) =>
      isStorageBusy(error),
    );
    short.applier.exec('ROLLBACK');
    assert.equal(short.hub.commits, 0, 'nothing was applied');
    assert.deepEqual(await short.hub.all('INSERT INTO t (n) VALUES (6) RETURNING n'), [{ n: 6 }]);
  } finally {
    short.applier.close();
    await short.hub.close();
  }
});

test('a transaction waits for the lock the same way; reads go on meanwhile; a write made while it is open does not join it', async () => {
  const { hub, applier } = twoConnections(5000);
  try {
    applier.exec('INSERT INTO t (n) VALUES (1)');
    applier.exec('BEGIN IMMEDIATE');
    applier.prepare('INSERT INTO t (n) VALUES (2)').run();
    let write: Promise<number> | undefined;
    const stop = countTurns();
    const transaction = hub.transaction(async (tx) => {
      await tx.run('INSERT INTO t (n) VALUES (10)');
      // another request's write while this transaction is open: it waits, and is not rolled back with it
      write = hub.run('INSERT INTO t (n) VALUES (20)');
      await sleep(20);
      throw new Error('rolled back on purpose');
    });
    // WAL: a read needs no lock, so it answers (from before the applier's uncommitted batch) at once
    assert.equal((await hub.get<{ n: number }>('SELECT count(*) AS n FROM t'))?.n, 1);
    await sleep(150);
    assert.equal(write, undefined, 'the transaction has not begun while the applier holds the lock');
    applier.exec('COMMIT');
    await assert.rejects(transaction, /rolled back on purpose/);
    assert.ok(stop() >= 20, 'the event loop kept turning while the transaction waited');
    assert.equal(await write, 1);
    assert.deepEqual(await values(hub), [1, 2, 20]);
  } finally {
    applier.close();
    await hub.close();
  }
});

test('a lock held longer than the wait fails the write with SQLITE_BUSY, and the connection works after', async () => {
  // 50 ms awaiting timers, then 150 ms asleep in SQLite's busy handler
  const { hub, applier } = twoConnections(200, 50);
  try {
    applier.exec('BEGIN IMMEDIATE');
    applier.prepare('INSERT INTO t (n) VALUES (1)').run();
    const started = performance.now();
    await assert.rejects(hub.run('INSERT INTO t (n) VALUES (2)'), (error: { code?: string }) => {
      assert.equal(error.code, 'SQLITE_BUSY');
      return true;
    });
    assert.ok(performance.now() - started >= 190, 'it waited for as long as it was told');
    assert.equal(hub.lockWaiters?.[0], 0, 'a write that gave up is no longer counted');
    await assert.rejects(
      hub.transaction(async (tx) => tx.run('INSERT INTO t (n) VALUES (3)')),
      /database is locked/,
    );
    // reads meanwhile, then the applier commits: nothing of the refused attempts holds an old snapshot
    assert.equal((await hub.get<{ n: number }>('SELECT count(*) AS n FROM t'))?.n, 0);
    applier.exec('COMMIT');
    assert.equal(await hub.run('INSERT INTO t (n) VALUES (4)'), 1);
    await hub.transaction(async (tx) => {
      await tx.run('INSERT INTO t (n) VALUES (5)');
    });
    assert.deepEqual(await values(hub), [1, 4, 5]);
  } finally {
    applier.close();
    await hub.close();
  }
});

test('a transaction that waits past asyncWaitMs tells the lock-wait hook before its thread sleeps and after; one that gets the lock on timers does not', async () => {
  // let go within the timers' phase: no hook. A phase of seconds, so that a stalled test process on a
  // loaded machine cannot push the hub's thread into the busy handler while this thread holds the lock
  const timers = twoConnections(5000, 1000);
  const early: boolean[] = [];
  timers.hub.lockWaitHook = (sleeping) => early.push(sleeping);
  try {
    timers.applier.exec('BEGIN IMMEDIATE');
    const quick = timers.hub.run('INSERT INTO t (n) VALUES (1)');
    await sleep(10);
    timers.applier.exec('COMMIT');
    assert.equal(await quick, 1);
    assert.deepEqual(early, [], 'a wait that ends on timers does not call the hook');
  } finally {
    timers.applier.close();
    await timers.hub.close();
  }
  const { hub, applier } = twoConnections(200, 40);
  const calls: { sleeping: boolean; waiters: number }[] = [];
  hub.lockWaitHook = (sleeping) => calls.push({ sleeping, waiters: hub.lockWaiters[0]! });
  try {
    // held past the whole wait: the hook before the thread sleeps, and once the sleep ends
    applier.exec('BEGIN IMMEDIATE');
    await assert.rejects(hub.run('INSERT INTO t (n) VALUES (2)'), /database is locked/);
    applier.exec('ROLLBACK');
    assert.deepEqual(calls, [
      { sleeping: true, waiters: 1 },
      { sleeping: false, waiters: 1 },
    ]);
    // no hook: nothing to call
    hub.lockWaitHook = null;
    assert.equal(await hub.run('INSERT INTO t (n) VALUES (3)'), 1);
    assert.deepEqual(await values(hub), [3]);
  } finally {
    applier.close();
    await hub.close();
  }
});

test('a lock-wait hook that throws fails nothing: the wait goes on and ends as it would have', async () => {
  const { hub, applier } = twoConnections(200, 40);
  const calls: boolean[] = [];
  hub.lockWaitHook = (sleeping) => {
    calls.push(sleeping);
    throw new Error('the hook failed');
  };
  try {
    applier.exec('BEGIN IMMEDIATE');
    // the lock's refusal, not the hook's error; and the hook still hears that the sleep ended
    await assert.rejects(hub.run('INSERT INTO t (n) VALUES (1)'), isStorageBusy);
    applier.exec('ROLLBACK');
    assert.deepEqual(calls, [true, false]);
    assert.equal(hub.lockWaiters[0], 0);
    assert.equal(await hub.run('INSERT INTO t (n) VALUES (2)'), 1);
  } finally {
    applier.close();
    await hub.close();
  }
});

test('after asyncWaitMs the thread sleeps until the holder, another process, lets go', async () => {
  const path = join(dir, 'other-process.sqlite');
  const hub = openSqlite(path, { asyncWaitMs: 150 });
  await hub.exec('CREATE TABLE t (n INTEGER NOT NULL)');
  // the holder: a process that takes the lock, says so, and commits 600 ms later
  const holder = spawn(
    process.execPath,
    [
      '-e',
      `const db = new (require('libsql'))(${JSON.stringify(path)});
       db.exec('BEGIN IMMEDIATE'); db.exec('INSERT INTO t (n) VALUES (1)');
       process.stdout.write('locked\\n');
       setTimeout(() => { db.exec('COMMIT'); db.close(); }, 600);`,
    ],
    { cwd: dirname(fileURLToPath(import.meta.url)), stdio: ['ignore', 'pipe', 'inherit'] },
  );
  try {
    await once(holder.stdout!, 'data');
    const started = performance.now();
    const turnsAt = countTurns();
    // how far the loop turned while the write waited on timers, sampled before the thread sleeps
    let turnsBeforeSleep = 0;
    const sample = countTurns();
    setTimeout(() => {
      turnsBeforeSleep = sample();
    }, 100);
    assert.equal(await hub.run('INSERT INTO t (n) VALUES (2)'), 1);
    const waited = performance.now() - started;
    const turns = turnsAt();
    assert.ok(waited >= 450, `the write waited for the holder's commit (${waited.toFixed(0)} ms)`);
    assert.ok(turnsBeforeSleep >= 5, `the loop turned at first (${turnsBeforeSleep} turns)`);
    // 2 ms turns over the whole wait would be ≈ 300; asleep from 150 ms on, 75 at most
    assert.ok(turns < waited / 2 / 2, `then the thread slept (${turns} turns in ${waited.toFixed(0)} ms)`);
    assert.deepEqual(await values(hub), [1, 2]);
  } finally {
    holder.kill();
    await hub.close();
  }
});

test('the prepared statements a connection keeps stay within their budget, and an evicted one is prepared again', async () => {
  const db = openSqlite(join(dir, `cache-${++databases}.sqlite`));
  try {
    // distinct texts of ≈ 2 KB each: 3 × the budget in all
    const pad = (n: number) => `${'0 + '.repeat(500)}${n}`;
    const count = Math.ceil((3 * STATEMENT_CACHE_CHARS) / pad(0).length);
    for (let n = 0; n < count; n++) {
      const row = await db.get<{ v: number }>(`SELECT ${pad(n)} + ? AS v`, [1]);
      assert.equal(row?.v, n + 1);
      assert.ok(db.preparedStatements.chars <= STATEMENT_CACHE_CHARS, `${n}: ${db.preparedStatements.chars}`);
    }
    assert.ok(db.preparedStatements.count < count / 2, `kept ${db.preparedStatements.count} of ${count}`);
    // the first, long evicted, answers again
    assert.equal((await db.get<{ v: number }>(`SELECT ${pad(0)} + ? AS v`, [1]))?.v, 1);
  } finally {
    await db.close();
  }
});

test('commits counts what the connection committed: not a read, a rollback or a refused BEGIN', async () => {
  const { hub, applier } = twoConnections(40, 20);
  try {
    assert.equal(hub.commits, 0);
    await hub.all('SELECT n FROM t');
    await hub.get('  select count(*) AS c FROM t');
    await hub.all('WITH x AS (SELECT n FROM t) SELECT * FROM x');
    assert.equal(hub.commits, 0, 'reads');
    await hub.run('INSERT INTO t (n) VALUES (1)');
    assert.equal(hub.commits, 1, 'a run is a transaction');
    await assert.rejects(
      hub.transaction(async (tx) => {
        await tx.run('INSERT INTO t (n) VALUES (2)');
        throw new Error('undone');
      }),
    );
    assert.equal(hub.commits, 1, 'rolled back');
    applier.exec('BEGIN IMMEDIATE');
    await assert.rejects(hub.run('INSERT INTO t (n) VALUES (3)'), { name: 'StorageBusyError' });
    applier.exec('ROLLBACK');
    assert.equal(hub.commits, 1, 'refused');
    await hub.all('INSERT INTO t (n) VALUES (4) RETURNING n');
    assert.equal(hub.commits, 2, 'a write in autocommit through all');
    await hub.get('UPDATE t SET n = 5 WHERE n = 4 RETURNING n');
    assert.equal(hub.commits, 3, 'a write in autocommit through get');
    await hub.exec('INSERT INTO t (n) VALUES (6)');
    assert.equal(hub.commits, 4, 'an exec');
    await hub.transaction(async (tx) => {
      await tx.get('INSERT INTO t (n) VALUES (7) RETURNING n');
      await tx.all('SELECT n FROM t');
    });
    assert.equal(hub.commits, 5, 'a transaction is one commit, whatever runs inside it');
  } finally {
    applier.close();
    await hub.close();
  }
});
