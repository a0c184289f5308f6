import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Sqlite from 'libsql';
import OpenAI from 'openai';
import pg from 'pg';
import { AuditLog } from '../../src/audit/audit-log.ts';
import { type AdminRoute, createAdminHandler } from '../../src/http/admin/router.ts';
import type { Admission } from '../../src/limits/admission.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { isStorageBusy } from '../../src/storage/busy.ts';
import { openDatabase } from '../../src/storage/database.ts';
import { migrate, POSTGRES_LOCK_KEY } from '../../src/storage/migrator.ts';
import { openSqlite, type SqliteDatabase } from '../../src/storage/sqlite.ts';
import { type FakeOpenAI, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import { createTestDatabase, type TestDatabase, testEngine } from '../helpers/databases.ts';
import { type Catalog, seedCatalog, startTestHub, type TestHub } from '../helpers/hub.ts';

/**
 * Another connection takes what a deposit must write, as a journal applier starved mid-batch would on
 * SQLite (the file's write lock) and a stuck transaction on PostgreSQL (every account); resolves to its
 * letting go.
 */
async function holdTheLock(location: string): Promise<() => Promise<void>> {
  if (testEngine() === 'sqlite') {
    const holder = new Sqlite(location);
    holder.exec('BEGIN IMMEDIATE');
    return async () => {
      holder.exec('ROLLBACK');
      holder.close();
    };
  }
  const holder = new pg.Client({ connectionString: location });
  await holder.connect();
  await holder.query('BEGIN');
  await holder.query('LOCK TABLE ledger_accounts IN EXCLUSIVE MODE');
  return async () => {
    await holder.query('ROLLBACK');
    await holder.end();
  };
}

const LOCK_WAIT_MS = 300;

describe('an admin write that cannot have the database lock', () => {
  let t: TestHub;

  before(async () => {
    // the operator's setting, 300 ms instead of 5 s: on SQLite 30 of it on timers, the rest asleep in the
    // busy handler; on PostgreSQL the pool's lock_timeout
    t = await startTestHub(
      { KAIHUB_DATABASE_LOCK_WAIT_MS: String(LOCK_WAIT_MS) },
      { hub: { sqliteAsyncWaitMs: 30 } },
    );
  });
  after(async () => {
    await t?.close();
  });

  test('is refused with 503, Retry-After and storage_busy on /admin/v1, applies nothing, and succeeds once the lock is free', async () => {
    const org = await t.admin('POST', '/organizations', {
      name: '잠금기업',
      class: 'sme',
      spendMode: 'prepaid',
    });
    assert.equal(org.status, 201, JSON.stringify(org.body));
    const deposit = `/organizations/${org.body.id}/deposits`;

    const letGo = await holdTheLock(t.database.location);
    try {
      const started = performance.now();
      const refused = await t.admin('POST', deposit, { amountKrw: '700', memo: '잠금 중 입금' });
      const waited = performance.now() - started;
      assert.equal(refused.status, 503, JSON.stringify(refused.body));
      // after KAIHUB_DATABASE_LOCK_WAIT_MS, not the default 5 s
      assert.ok(waited >= LOCK_WAIT_MS - 20 && waited < 3_000, `refused after ${Math.round(waited)} ms`);
      assert.equal(refused.headers.get('retry-after'), '1');
      assert.equal(refused.body.error.code, 'storage_busy');
      assert.match(
        refused.body.error.message,
        /^저장소가 잠시 바쁩니다\. .* \/ Storage is busy; retry shortly\.$/,
      );
    } finally {
      await letGo();
    }

    const again = await t.admin('POST', deposit, { amountKrw: '700', memo: '잠금 뒤 입금' });
    assert.equal(again.status, 201, JSON.stringify(again.body));
    const funds = await t.admin('GET', `/organizations/${org.body.id}/funds`);
    assert.equal(funds.body.walletKrw, '700', 'the deposit was applied once: the refused one not at all');
    const reader = await openDatabase(t.database.location);
    try {
      const deposits = await reader.all<{ memo: string }>(
        "SELECT memo FROM ledger_transactions WHERE kind = 'deposit' ORDER BY created_at",
      );
      assert.deepEqual(
        deposits.map((d) => d.memo),
        ['잠금 뒤 입금'],
      );
      const audited = await reader.get<{ n: number }>(
        "SELECT COUNT(*) AS n FROM audit_log WHERE action = 'deposit' AND entity_id = ?",
        [org.body.id],
      );
      assert.equal(Number(audited?.n), 1, 'one audit entry: the refused deposit left none');
    } finally {
      await reader.close();
    }
  });
});

describe('an admin request refused the lock after it committed something', () => {
  let dir: TestDatabase;
  let db: SqliteDatabase;
  let holder: InstanceType<typeof Sqlite>;
  let server: Server;
  let url: string;
  const logged: { level: number; msg: string }[] = [];

  before(async () => {
    dir = await createTestDatabase('sqlite');
    db = openSqlite(dir.location, { lockWaitMs: 150, asyncWaitMs: 30 });
    await db.exec('CREATE TABLE t (n INTEGER NOT NULL)');
    holder = new Sqlite(dir.location);
    const routes: AdminRoute[] = [
      {
        // two transactions: the first commits, then another connection takes the lock
        method: 'POST',
        path: '/twice',
        roles: [],
        audit: 'handler',
        handle: async () => {
          await db.run('INSERT INTO t (n) VALUES (1)');
          holder.exec('BEGIN IMMEDIATE');
          await db.run('INSERT INTO t (n) VALUES (2)');
          return { status: 204 };
        },
      },
      {
        // one transaction, refused (the test holds the lock before the request)
        method: 'POST',
        path: '/once',
        roles: [],
        audit: 'handler',
        handle: async () => {
          await db.run('INSERT INTO t (n) VALUES (3)');
          return { status: 204 };
        },
      },
    ];
    const log = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) logged.push(JSON.parse(line));
        done();
      },
    });
    const handle = createAdminHandler(routes, {
      authenticate: async () => ({
        actorId: 'operator-token',
        userId: null,
        tokenId: null,
        operator: true,
        evaluator: false,
        supplierAdminOf: new Set(),
        orgAdminOf: new Set(),
        orgMemberOf: new Set(),
      }),
      auditLog: new AuditLog(db),
      logger: createLogger('info', log),
      commits: () => db.commits,
    });
    server = createServer((req, res) => {
      const path = new URL(req.url ?? '/', 'http://localhost').pathname;
      handle(req, res, path).catch(() => {
        // what the router left to the server's fallback, which answers busy errors with 503 too
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 'thrown' } }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise((resolve) => server?.close(resolve));
    holder?.close();
    await db?.close();
    await dir?.drop();
  });

  const post = async (path: string) => {
    const res = await fetch(`${url}/admin/v1${path}`, {
      method: 'POST',
      headers: { authorization: 'Bearer x', 'content-type': 'application/json' },
      body: '{}',
    });
    return {
      status: res.status,
      retryAfter: res.headers.get('retry-after'),
      body: (await res.json()) as { error: { code: string } },
    };
  };

  test('is a 500 internal_error, not a 503 that invites applying the first commit again', async () => {
    let answer: Awaited<ReturnType<typeof post>>;
    try {
      answer = await post('/twice');
    } finally {
      if (holder.inTransaction) holder.exec('ROLLBACK');
    }
    assert.equal(answer.status, 500, JSON.stringify(answer.body));
    assert.equal(answer.body.error.code, 'internal_error');
    assert.equal(answer.retryAfter, null);
    assert.deepEqual(await db.all('SELECT n FROM t'), [{ n: 1 }], 'the first transaction was applied');
    assert.ok(
      logged.some((l) => l.level === 50 && /may have been applied/.test(l.msg)),
      JSON.stringify(logged),
    );
  });

  test('is a 503 storage_busy with Retry-After when its only transaction was refused', async () => {
    await db.run('DELETE FROM t');
    holder.exec('BEGIN IMMEDIATE');
    let answer: Awaited<ReturnType<typeof post>>;
    try {
      answer = await post('/once');
    } finally {
      holder.exec('ROLLBACK');
    }
    assert.equal(answer.status, 503, JSON.stringify(answer.body));
    assert.equal(answer.retryAfter, '1');
    assert.equal(answer.body.error.code, 'storage_busy');
    assert.deepEqual(await db.all('SELECT n FROM t'), [], 'nothing was applied');
  });
});

describe('a call whose storage is busy', () => {
  let fake: FakeOpenAI;
  let t: TestHub;
  let catalog: Catalog;

  before(async () => {
    fake = await startFakeOpenAI({ apiKey: 'upstream-secret' });
    // what the driver reports when a lock is not had in time (PostgreSQL's lock_not_available)
    const admission: Admission = {
      admit: () => {
        throw Object.assign(new Error('canceling statement due to lock timeout'), { code: '55P03' });
      },
    };
    t = await startTestHub({}, { hub: { admission } });
    catalog = await seedCatalog(t, fake.url);
  });
  after(async () => {
    await t?.close();
    await fake?.close();
  });

  test('is refused on /v1 with 503, Retry-After and an OpenAI-shaped storage_busy', async () => {
    const res = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${catalog.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'hcx-test', messages: [{ role: 'user', content: '안녕' }] }),
    });
    const body = (await res.json()) as { error: Record<string, unknown> };
    assert.equal(res.status, 503, JSON.stringify(body));
    assert.equal(res.headers.get('retry-after'), '1');
    assert.equal(body.error.type, 'server_error');
    assert.equal(body.error.code, 'storage_busy');
    assert.equal(body.error.param, null);
    assert.match(
      String(body.error.message),
      /^저장소가 잠시 바쁩니다\. .* \/ Storage is busy; retry shortly\.$/,
    );
    // the OpenAI client reads the same
    const client = new OpenAI({ apiKey: catalog.key, baseURL: `${t.url}/v1`, maxRetries: 0 });
    await assert.rejects(
      client.chat.completions.create({ model: 'hcx-test', messages: [{ role: 'user', content: '안녕' }] }),
      (error: InstanceType<typeof OpenAI.APIError>) => error.status === 503 && error.code === 'storage_busy',
    );
  });
});

describe('on PostgreSQL, a statement refused its lock', {
  skip: testEngine() !== 'postgres' ? 'PostgreSQL: lock_not_available (55P03)' : false,
}, () => {
  let database: TestDatabase;
  before(async () => {
    database = await createTestDatabase();
  });
  after(async () => {
    await database?.drop();
  });

  test("is storage busy, through the hub's own connection pool", async () => {
    const db = await openDatabase(database.location);
    const holder = new pg.Client({ connectionString: database.location });
    await holder.connect();
    try {
      await db.exec('CREATE TABLE t (n INTEGER NOT NULL)');
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE t IN ACCESS EXCLUSIVE MODE');
      let refused: unknown;
      try {
        await db.transaction(async (tx) => {
          await tx.run("SET LOCAL lock_timeout = '100ms'");
          await tx.run('INSERT INTO t (n) VALUES (1)');
        });
      } catch (error) {
        refused = error;
      }
      assert.equal((refused as { code?: string } | undefined)?.code, '55P03', String(refused));
      assert.ok(isStorageBusy(refused));
      await holder.query('ROLLBACK');
      assert.deepEqual(await db.all('SELECT n FROM t'), [], 'nothing of it was applied');
      let other: unknown;
      try {
        await db.run('INSERT INTO missing (n) VALUES (1)');
      } catch (error) {
        other = error;
      }
      assert.ok(other !== undefined && !isStorageBusy(other), String(other));
    } finally {
      await holder.end();
      await db.close();
    }
  });

  test("a lock not had within the pool's lock timeout (5 s unless told) is storage busy, with no SET of its own", async () => {
    const plain = await openDatabase(database.location);
    try {
      const shown = await plain.get<{ lock_timeout: string }>('SHOW lock_timeout');
      assert.equal(shown?.lock_timeout, '5s', 'as long as SQLite waits');
    } finally {
      await plain.close();
    }
    const db = await openDatabase(database.location, { lockWaitMs: 150 });
    const holder = new pg.Client({ connectionString: database.location });
    await holder.connect();
    try {
      await db.exec('CREATE TABLE w (n INTEGER NOT NULL)');
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE w IN ACCESS EXCLUSIVE MODE');
      const started = performance.now();
      await assert.rejects(db.run('INSERT INTO w (n) VALUES (1)'), (error) => isStorageBusy(error));
      await assert.rejects(
        db.transaction(async (tx) => tx.run('INSERT INTO w (n) VALUES (2)')),
        (error) => isStorageBusy(error),
      );
      const waited = performance.now() - started;
      assert.ok(waited >= 280 && waited < 5000, `each waited its 150 ms, no more (${waited.toFixed(0)} ms)`);
      await holder.query('ROLLBACK');
      assert.deepEqual(await db.all('SELECT n FROM w'), [], 'nothing of either was applied');
    } finally {
      await holder.end();
      await db.close();
    }
  });

  test("the migrator waits for another replica's migration however long, whatever the pool's lock timeout", async () => {
    const db = await openDatabase(database.location, { lockWaitMs: 100 });
    const holder = new pg.Client({ connectionString: database.location });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT pg_advisory_xact_lock($1)', [POSTGRES_LOCK_KEY]);
      let done = false;
      const migrating = migrate(db, []).finally(() => {
        done = true;
      });
      await sleep(400);
      assert.equal(done, false, "still waiting, past the pool's 100 ms");
      await holder.query('COMMIT');
      assert.deepEqual(await migrating, []);
    } finally {
      await holder.end();
      await db.close();
    }
  });

  test('commits counts what the pool committed: not a read, a failed statement or a rolled-back transaction', async () => {
    const db = await openDatabase(database.location);
    try {
      await db.exec('CREATE TABLE c (n INTEGER NOT NULL CHECK (n > 0))');
      const at = () => db.commits;
      const start = at();
      await db.all('SELECT n FROM c');
      await db.get('  select count(*) AS k FROM c');
      await db.all('WITH x AS (SELECT n FROM c) SELECT * FROM x');
      assert.equal(at(), start, 'reads');
      await db.run('INSERT INTO c (n) VALUES (1)');
      assert.equal(at(), start + 1, 'a statement outside a transaction');
      await assert.rejects(db.run('INSERT INTO c (n) VALUES (-1)'));
      assert.equal(at(), start + 1, 'a statement that failed applied nothing');
      await assert.rejects(
        db.transaction(async (tx) => {
          await tx.run('INSERT INTO c (n) VALUES (2)');
          throw new Error('undone');
        }),
      );
      assert.equal(at(), start + 1, 'rolled back');
      await db.transaction(async (tx) => {
        await tx.run('INSERT INTO c (n) VALUES (3)');
        await tx.all('INSERT INTO c (n) VALUES (4) RETURNING n');
      });
      assert.equal(at(), start + 2, 'a transaction is one commit');
      await db.all('INSERT INTO c (n) VALUES (5) RETURNING n');
      assert.equal(at(), start + 3, 'a write through all');
      await db.all('WITH added AS (INSERT INTO c (n) VALUES (6) RETURNING n) SELECT n FROM added');
      assert.equal(at(), start + 4, 'a write in a WITH');
    } finally {
      await db.close();
    }
  });
});
