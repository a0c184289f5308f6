import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { FileUsageJournal } from '../../src/billing/file-journal.ts';
import {
  applyUsageRecords,
  DatabaseUsageJournal,
  recordToLine,
  type UsageJournal,
  type UsageRecord,
} from '../../src/billing/usage-journal.ts';
import { isStorageBusy, StorageBusyError } from '../../src/storage/busy.ts';
import { type Database, openDatabase } from '../../src/storage/database.ts';
import { migrate, migrations } from '../../src/storage/migrator.ts';
import { openSqlite, STATEMENT_CACHE_CHARS } from '../../src/storage/sqlite.ts';
import { createTestDatabase, type TestDatabase, testEngine } from '../helpers/databases.ts';

let database: TestDatabase;
let db: Database;
const journalDir = () => join(database.dataDir, 'journal');

/** The journal the hub uses on this engine: a file journal on SQLite, group commit on PostgreSQL. */
function openJournal(): UsageJournal {
  return db.dialect === 'sqlite'
    ? new FileUsageJournal(journalDir(), database.location, (m) => assert.fail(m), 50)
    : new DatabaseUsageJournal(db);
}
before(async () => {
  database = await createTestDatabase();
  db = await openDatabase(database.location);
  await migrate(db);
});
after(async () => {
  await db?.close();
  await database?.drop();
});

function record(requestId: string, cost: bigint): UsageRecord {
  return {
    requestId,
    createdAtMs: Date.now(),
    organizationId: 'org_1',
    apiKeyId: 'key_1',
    productId: 'prd_1',
    deploymentId: 'dep_1',
    model: 'm',
    endpoint: 'chat.completions',
    stream: false,
    status: 'ok',
    httpStatus: 200,
    errorCode: null,
    promptTokens: 10,
    completionTokens: 20,
    usageSource: 'upstream',
    priceInputMicroPer1M: 1_000_000_000n,
    priceOutputMicroPer1M: 3_000_000_000n,
    costMicroKrw: cost,
    latencyMs: 5,
    ttftMs: null,
    usageNote: null,
  };
}

test('appends are idempotent by request id and money survives beyond 2^53 exactly', async () => {
  const journal = openJournal();
  const huge = 2n ** 62n + 7n;
  await journal.append(record('req_a', huge));
  await journal.append(record('req_a', 1n));
  await journal.sync();
  const rows = await db.all<{ cost: string }>(
    "SELECT CAST(cost_micro_krw AS TEXT) AS cost FROM usage_events WHERE request_id = 'req_a'",
  );
  assert.deepEqual(rows, [{ cost: huge.toString() }]);
  await journal.close();
});

test('attempts land with their record, in order, and a replay adds none twice', async () => {
  const journal = openJournal();
  const withAttempts: UsageRecord = {
    ...record('req_tried', 5n),
    attempts: [
      {
        productId: 'prd_1',
        model: 'm',
        deploymentId: 'dep_a',
        outcome: 'http',
        httpStatus: 503,
        durationMs: 12,
      },
      {
        productId: 'prd_2',
        model: 'm2',
        deploymentId: 'dep_b',
        outcome: 'ok',
        httpStatus: null,
        durationMs: 3,
      },
    ],
  };
  // mixed with records that have none, in one group: the batch carries both
  await Promise.all([
    journal.append(record('req_plain_1', 1n)),
    journal.append(withAttempts),
    journal.append(record('req_plain_2', 1n)),
  ]);
  await journal.append(withAttempts);
  await journal.sync();
  const rows = await db.all<Record<string, unknown>>(
    "SELECT attempt, product_id, deployment_id, outcome, http_status, duration_ms FROM usage_attempts WHERE request_id = 'req_tried' ORDER BY attempt",
  );
  assert.deepEqual(
    rows.map((r) => [
      Number(r.attempt),
      r.product_id,
      r.deployment_id,
      r.outcome,
      r.http_status === null ? null : Number(r.http_status),
      Number(r.duration_ms),
    ]),
    [
      [1, 'prd_1', 'dep_a', 'http', 503, 12],
      [2, 'prd_2', 'dep_b', 'ok', null, 3],
    ],
  );
  const plain = await db.get<{ n: number }>(
    "SELECT COUNT(*) AS n FROM usage_attempts WHERE request_id LIKE 'req_plain_%'",
  );
  assert.equal(Number(plain?.n), 0, 'a request served at once writes no attempt rows');
  await journal.close();
});

test('many concurrent appends all commit (group commit on PostgreSQL)', async () => {
  const journal = openJournal();
  const ids = Array.from({ length: 500 }, (_, i) => `req_bulk_${i}`);
  await Promise.all(ids.map((id) => journal.append(record(id, 70_000n))));
  await journal.sync();
  const row = await db.get<{ n: number; total: string }>(
    "SELECT COUNT(*) AS n, CAST(SUM(cost_micro_krw) AS TEXT) AS total FROM usage_events WHERE request_id LIKE 'req_bulk_%'",
  );
  assert.equal(Number(row?.n), 500);
  assert.equal(row?.total, (500n * 70_000n).toString());
  await journal.close();
});

test('migrations are recorded and a second run applies nothing', async () => {
  assert.deepEqual(await migrate(db), []);
  const ids = await db.all<{ id: string }>('SELECT id FROM kaihub_migrations ORDER BY id');
  // Every migration the hub ships, each recorded once (the list grows with each issue).
  assert.deepEqual(
    ids.map((r) => r.id),
    migrations.map((m) => m.id).sort(),
  );
  assert.equal(ids[0]?.id, '001-core');
});

test('a journal file left by a killed process is applied on the next start and then deleted', {
  skip: testEngine() !== 'sqlite' && 'the file journal is for SQLite',
}, async () => {
  mkdirSync(journalDir(), { recursive: true });
  // pid 2^22+1 is above Linux's pid_max default: no such process
  const orphan = join(journalDir(), 'usage-4194305-0123456789ab.jsonl');
  const lines = ['req_orphan_1', 'req_orphan_2', 'req_bulk_0']
    .map((id) => recordToLine(record(id, 5n)))
    .join('');
  // the last line was cut off by the kill: its append never resolved, so no client saw it complete
  writeFileSync(orphan, `${lines}{"requestId":"req_torn"`);
  const journal = openJournal();
  await journal.sync();
  const rows = await db.all<{ request_id: string }>(
    "SELECT request_id FROM usage_events WHERE request_id LIKE 'req_orphan_%' OR request_id = 'req_torn' ORDER BY request_id",
  );
  assert.deepEqual(
    rows.map((r) => r.request_id),
    ['req_orphan_1', 'req_orphan_2'],
  );
  assert.ok(!existsSync(orphan), 'the applied orphan file is deleted');
  await journal.close();
  assert.deepEqual(readdirSync(journalDir()), [], 'a cleanly closed journal leaves no file behind');
});

test('a record the database refuses is set aside and reported; the others of its batch still land', async () => {
  const rejected: string[] = [];
  const journal =
    db.dialect === 'sqlite'
      ? new FileUsageJournal(
          journalDir(),
          database.location,
          (m) => assert.fail(m),
          50,
          (r) => rejected.push(r.requestId),
        )
      : new DatabaseUsageJournal(db, (r) => rejected.push(r.requestId));
  const bad = record('req_aside_bad', -5n); // a negative cost: the CHECK refuses it
  const over = { ...record('req_aside_over', 1n), promptTokens: 3e9 }; // beyond INTEGER
  const good = ['req_aside_1', 'req_aside_2', 'req_aside_3'].map((id) => record(id, 7n));
  await Promise.all([
    journal.append(good[0]!),
    journal.append(bad),
    journal.append(over),
    journal.append(good[1]!),
  ]);
  await journal.append(good[2]!);
  await journal.sync();
  const landed = await db.all<{ request_id: string }>(
    "SELECT request_id FROM usage_events WHERE request_id LIKE 'req_aside_%' ORDER BY request_id",
  );
  assert.deepEqual(
    landed.map((r) => r.request_id),
    ['req_aside_1', 'req_aside_2', 'req_aside_3'],
  );
  const aside = await db.all<{ request_id: string; reason: string; record: string }>(
    "SELECT request_id, reason, record FROM usage_rejected WHERE request_id LIKE 'req_aside_%' ORDER BY request_id",
  );
  assert.deepEqual(
    aside.map((r) => r.request_id),
    ['req_aside_bad', 'req_aside_over'],
  );
  assert.equal(JSON.parse(aside[0]!.record).costMicroKrw, '-5', 'kept whole, to be examined and corrected');
  assert.deepEqual(rejected.sort(), ['req_aside_bad', 'req_aside_over']);
  await journal.close();
});

test('a lock refused after some of a batch went in row by row is not reported as busy: busy means nothing applied', async () => {
  const records = ['req_busy_1', 'req_busy_2', 'req_busy_3'].map((id) => record(id, 7n));
  const tried: number[] = [];
  // the batch fails for one record's value, so the records go one by one; the second then meets a lock
  const insert = async (_db: Database, some: readonly UsageRecord[]) => {
    tried.push(some.length);
    if (some.length > 1) throw new RangeError('a value the schema refuses');
    if (some[0]!.requestId === 'req_busy_2')
      throw new StorageBusyError(Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' }));
  };
  const error = await applyUsageRecords(db, records, 'test', insert).then(
    () => assert.fail('the lock refusal must surface'),
    (e: unknown) => e,
  );
  assert.deepEqual(tried, [3, 1, 1]);
  assert.equal(isStorageBusy(error), false, 'one record was applied: not a "nothing applied" refusal');
  assert.match(String(error), /partly applied \(1 of 3\)/);
  // refused before any went in: still busy, and the caller may say so
  tried.length = 0;
  const first = await applyUsageRecords(db, records.slice(1), 'test', insert).then(
    () => assert.fail('the lock refusal must surface'),
    (e: unknown) => e,
  );
  assert.equal(isStorageBusy(first), true);
});

test('an unreadable journal line is set aside; the lines after it are applied and the file finishes', {
  skip: testEngine() !== 'sqlite' && 'the file journal is for SQLite',
}, async () => {
  mkdirSync(journalDir(), { recursive: true });
  const orphan = join(journalDir(), 'usage-4194305-fedcba987654.jsonl');
  writeFileSync(
    orphan,
    `${recordToLine(record('req_unread_1', 5n))}{"this is": "not a usage record"}\nnot json at all\n${recordToLine(record('req_unread_2', 5n))}`,
  );
  const rejected: string[] = [];
  const journal = new FileUsageJournal(
    journalDir(),
    database.location,
    (m) => assert.fail(m),
    50,
    (r) => rejected.push(r.requestId),
  );
  await journal.sync();
  const rows = await db.all<{ request_id: string }>(
    "SELECT request_id FROM usage_events WHERE request_id LIKE 'req_unread_%' ORDER BY request_id",
  );
  assert.deepEqual(
    rows.map((r) => r.request_id),
    ['req_unread_1', 'req_unread_2'],
  );
  assert.equal(rejected.length, 2);
  assert.ok(!existsSync(orphan), 'the file is finished and deleted, not retried for ever');
  await journal.close();
});

test('the applier steps aside between its transactions while the hub waits for the write lock, and goes on after', {
  skip: testEngine() !== 'sqlite' && 'the file journal is for SQLite',
}, async () => {
  const waiters = db.lockWaiters!;
  const applied = async () =>
    Number(
      (
        await db.get<{ n: number }>(
          "SELECT COUNT(*) AS n FROM usage_events WHERE request_id LIKE 'req_stepaside_%'",
        )
      )?.n,
    );
  // applied only when asked (sync), so that all 600 records are read at once
  const journal = new FileUsageJournal(
    journalDir(),
    database.location,
    (m) => assert.fail(m),
    60_000,
    undefined,
    waiters,
  );
  try {
    // past the applier's first look at the files, which could otherwise read the appends half-written
    await journal.sync();
    const ids = Array.from({ length: 600 }, (_, i) => `req_stepaside_${String(i).padStart(4, '0')}`);
    await Promise.all(ids.map((id) => journal.append(record(id, 0n))));
    // as while an admin write waits for the lock (storage/sqlite.ts counts it there)
    Atomics.store(waiters, 0, 1);
    const synced = journal.sync();
    // the applier waits up to 100 ms before each transaction of 250 records: the first lands, then it
    // steps aside again before the second
    const deadline = Date.now() + 10_000;
    while ((await applied()) === 0) {
      assert.ok(Date.now() < deadline, 'the applier still applies, 100 ms at most after each step aside');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assert.equal(await applied(), 250, 'one transaction of 250 records');
    await new Promise((resolve) => setTimeout(resolve, 40));
    assert.equal(await applied(), 250, 'then it steps aside again while the writer waits');
    Atomics.store(waiters, 0, 0);
    Atomics.notify(waiters, 0);
    await synced;
    assert.equal(await applied(), 600, 'every record applied once the writer has gone');
  } finally {
    Atomics.store(waiters, 0, 0);
    await journal.close();
  }
});

test('a settle waiting for its charge on SQLite: told once it is applied, and told so if the applier is gone instead of waiting for ever', {
  skip: testEngine() !== 'sqlite' && 'the file journal is for SQLite',
}, async () => {
  const count = async (id: string) =>
    Number(
      (await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM usage_events WHERE request_id = ?', [id]))?.n,
    );
  // applied only when asked
  const journal = new FileUsageJournal(journalDir(), database.location, () => {}, 60_000);
  try {
    await journal.append(record('req_charged_1', 5n));
    await journal.whenCharged('req_charged_1');
    assert.equal(await count('req_charged_1'), 1, 'in the ledger when the settle is told');
    await journal.append(record('req_charged_2', 5n));
    // the applier thread dies (as on a crash of its own): nothing will answer
    await (journal as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
    await assert.rejects(journal.whenCharged('req_charged_2'), /could not be applied/);
    assert.equal(await count('req_charged_2'), 0);
    // a sync (GET /funds) answers rather than hanging
    await journal.sync();
  } finally {
    await journal.close();
  }
});

test('migration 005 from the 004 schema: bad rows move aside whole, then the database refuses negative amounts', async () => {
  const fresh = await createTestDatabase();
  const old = await openDatabase(fresh.location);
  try {
    const upTo004 = migrations.slice(0, migrations.findIndex((m) => m.id === '004-usage-attempts') + 1);
    await migrate(old, upTo004);
    const insert = (id: string, cost: number, prompt: number) =>
      old.run(
        `INSERT INTO usage_events (request_id, created_at, organization_id, api_key_id, product_id, deployment_id, model,
           endpoint, stream, status, http_status, error_code, prompt_tokens, completion_tokens, usage_source,
           price_input_micro_per_1m, price_output_micro_per_1m, cost_micro_krw, latency_ms, ttft_ms)
         VALUES (?, 1, 'o', 'k', 'p', 'd', 'm', 'chat.completions', 0, 'ok', 200, NULL, ?, 1, 'upstream', 1, 1, ?, 1, NULL)`,
        [id, prompt, cost],
      );
    await insert('req_m_good', 10, 5);
    await insert('req_m_negative_cost', -3000, 5);
    await insert('req_m_negative_tokens', 10, -5);
    await migrate(old);
    const kept = await old.all<{ request_id: string; usage_note: string | null }>(
      'SELECT request_id, usage_note FROM usage_events ORDER BY request_id',
    );
    assert.deepEqual(kept, [{ request_id: 'req_m_good', usage_note: null }]);
    const aside = await old.all<{ request_id: string; source: string; record: string }>(
      'SELECT request_id, source, record FROM usage_rejected ORDER BY request_id',
    );
    assert.deepEqual(
      aside.map((r) => [r.request_id, r.source]),
      [
        ['req_m_negative_cost', 'migration 005'],
        ['req_m_negative_tokens', 'migration 005'],
      ],
    );
    assert.match(aside[0]!.record, /-3000/);
    await assert.rejects(insert('req_m_after', -1, 1), /check|constraint/i);
    await assert.rejects(insert('req_m_after', 1, -1), /check|constraint/i);
    await old.run(
      "INSERT INTO suppliers (id, name, status, created_at, updated_at) VALUES ('s', 's', 'active', 1, 1)",
    );
    await assert.rejects(
      old.run(
        `INSERT INTO products (id, supplier_id, model, display_name, purposes, modality, context_window,
           price_input_micro_per_1m, price_output_micro_per_1m, residency, status, created_at, updated_at)
         VALUES ('p', 's', 'm', 'm', '[]', 'text', 1, -1, 0, 'domestic', 'active', 1, 1)`,
      ),
      /check|constraint|products_prices_nonnegative/i,
    );
  } finally {
    await old.close();
    await fresh.drop();
  }
});

test('applying batches of every size keeps a few prepared shapes of each statement, not one a size', {
  skip: testEngine() !== 'sqlite' && 'prepared statements are kept by the SQLite connection',
}, async () => {
  // the journal applier's own connection to the file, fresh: what it keeps is what applying made
  const applier = openSqlite(database.location, { asyncWaitMs: 0 });
  try {
    let n = 0;
    const apply = async (size: number) => {
      const batch = Array.from({ length: size }, () => record(`req_shapes_${++n}`, 3n));
      assert.deepEqual(await applyUsageRecords(applier, batch, 'test'), []);
    };
    for (let size = 1; size <= 200; size++) await apply(size);
    const shapes = applier.preparedStatements;
    // sizes 1…200 meet every shape rowBatches gives (200 and each power of two below it)
    for (const size of [201, 250, 333, 77, 150, 3, 199]) await apply(size);
    assert.deepEqual(applier.preparedStatements, shapes, 'no new statement for sizes met before in pieces');
    // one statement per size was ≈ 200 × the kinds of multi-row statement; this is ≈ 9 × them
    assert.ok(shapes.count < 100, `${shapes.count} statements, ${shapes.chars} characters of SQL`);
    assert.ok(shapes.chars < STATEMENT_CACHE_CHARS / 2, `${shapes.chars} characters of SQL`);
    const landed = await db.get<{ n: number; cost: string }>(
      `SELECT COUNT(*) AS n, CAST(SUM(cost_micro_krw) AS TEXT) AS cost FROM usage_events WHERE request_id LIKE 'req_shapes_%'`,
    );
    assert.equal(Number(landed?.n), n);
    assert.equal(landed?.cost, String(3 * n));
  } finally {
    await applier.close();
  }
});
