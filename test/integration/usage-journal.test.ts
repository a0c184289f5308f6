import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { UsageJournal, type UsageRecord } from '../../src/billing/usage-journal.ts';
import { type Database, openDatabase } from '../../src/storage/database.ts';
import { migrate } from '../../src/storage/migrator.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/databases.ts';

let database: TestDatabase;
let db: Database;
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
  const journal = new UsageJournal(db);
  const huge = 2n ** 62n + 7n;
  await journal.append(record('req_a', huge));
  await journal.append(record('req_a', 1n));
  const rows = await db.all<{ cost: string }>(
    "SELECT CAST(cost_micro_krw AS TEXT) AS cost FROM usage_events WHERE request_id = 'req_a'",
  );
  assert.deepEqual(rows, [{ cost: huge.toString() }]);
});

test('many concurrent appends all commit (group commit on PostgreSQL)', async () => {
  const journal = new UsageJournal(db);
  const ids = Array.from({ length: 500 }, (_, i) => `req_bulk_${i}`);
  await Promise.all(ids.map((id) => journal.append(record(id, 70_000n))));
  const row = await db.get<{ n: number; total: string }>(
    "SELECT COUNT(*) AS n, CAST(SUM(cost_micro_krw) AS TEXT) AS total FROM usage_events WHERE request_id LIKE 'req_bulk_%'",
  );
  assert.equal(Number(row?.n), 500);
  assert.equal(row?.total, (500n * 70_000n).toString());
});

test('migrations are recorded and a second run applies nothing', async () => {
  assert.deepEqual(await migrate(db), []);
  const ids = await db.all<{ id: string }>('SELECT id FROM kaihub_migrations ORDER BY id');
  assert.deepEqual(
    ids.map((r) => r.id),
    ['001-core'],
  );
});
