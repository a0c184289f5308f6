import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { FileUsageJournal } from '../../src/billing/file-journal.ts';
import {
  DatabaseUsageJournal,
  recordToLine,
  type UsageJournal,
  type UsageRecord,
} from '../../src/billing/usage-journal.ts';
import { type Database, openDatabase } from '../../src/storage/database.ts';
import { migrate, migrations } from '../../src/storage/migrator.ts';
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
