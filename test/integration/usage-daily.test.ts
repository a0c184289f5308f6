import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { costOf } from '../../src/billing/money.ts';
import { insertUsageRecords, type UsageRecord } from '../../src/billing/usage-journal.ts';
import { queryUsage } from '../../src/billing/usage-query.ts';
import { type Database, openDatabase } from '../../src/storage/database.ts';
import { migrate, migrations } from '../../src/storage/migrator.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/databases.ts';
import { seededRandom } from '../helpers/seeded-random.ts';

/**
 * The daily rollup answers usage queries over whole days; the records themselves the partial days at
 * the edges. Whatever the range, filters and grouping, the answer must be the records' own sums —
 * including records that existed before the rollup (the migration backfills them) and records applied
 * twice (a replay adds nothing).
 */

let database: TestDatabase;
let db: Database;
const random = seededRandom(7);
const DAY = 86_400_000;
const START = Date.parse('2026-09-28T00:00:00+09:00');

function record(i: number): UsageRecord {
  const org = `org_${1 + Math.floor(random() * 3)}`;
  const product = `prd_${1 + Math.floor(random() * 2)}`;
  const prompt = Math.floor(random() * 500);
  const completion = Math.floor(random() * 500);
  const prices = { inputMicroPer1M: 1_000_000_000n, outputMicroPer1M: 3_000_000_000n };
  return {
    requestId: `daily-${i}`,
    createdAtMs: START + Math.floor(random() * 10 * DAY),
    organizationId: org,
    apiKeyId: `key_${org}_${Math.floor(random() * 2)}`,
    productId: product,
    deploymentId: null,
    model: `model-${product}`,
    endpoint: 'chat.completions',
    stream: false,
    status: 'ok',
    httpStatus: 200,
    errorCode: null,
    promptTokens: prompt,
    completionTokens: completion,
    usageSource: 'upstream',
    priceInputMicroPer1M: prices.inputMicroPer1M,
    priceOutputMicroPer1M: prices.outputMicroPer1M,
    costMicroKrw: costOf(prompt, completion, prices),
    latencyMs: 1,
    ttftMs: null,
    usageNote: null,
    voucherId: null,
  };
}

before(async () => {
  database = await createTestDatabase();
  db = await openDatabase(database.location);
  // records from before the rollup existed: the migration must bring them in
  const upTo019 = migrations.filter((m) => m.id < '020');
  await migrate(db, upTo019);
  const early = Array.from({ length: 400 }, (_, i) => record(i));
  await db.transaction(async (tx) => {
    for (const r of early) {
      // straight into the table, as the hub before migration 020 did (no rollup then)
      await tx.run(
        `INSERT INTO usage_events (request_id, created_at, organization_id, api_key_id, product_id, deployment_id, model,
           endpoint, stream, status, http_status, error_code, prompt_tokens, completion_tokens, usage_source,
           price_input_micro_per_1m, price_output_micro_per_1m, cost_micro_krw, latency_ms, ttft_ms)
         VALUES (?, ?, ?, ?, ?, NULL, ?, 'chat.completions', 0, 'ok', 200, NULL, ?, ?, 'upstream', ?, ?, ?, 1, NULL)`,
        [
          r.requestId,
          r.createdAtMs,
          r.organizationId,
          r.apiKeyId,
          r.productId,
          r.model,
          r.promptTokens,
          r.completionTokens,
          r.priceInputMicroPer1M,
          r.priceOutputMicroPer1M,
          r.costMicroKrw,
        ],
      );
    }
  });
  await migrate(db);
  const later = Array.from({ length: 1600 }, (_, i) => record(400 + i));
  for (let i = 0; i < later.length; i += 300)
    await db.transaction((tx) => insertUsageRecords(tx, later.slice(i, i + 300), db.dialect));
  // a replay of some of them adds nothing
  await db.transaction((tx) => insertUsageRecords(tx, later.slice(100, 700), db.dialect));
});
after(async () => {
  await db?.close();
  await database?.drop();
});

async function raw(
  filter: { from?: number; to?: number; organizationId?: string; productId?: string },
  groupBy?: string,
) {
  const where: string[] = [];
  const params: (string | number)[] = [];
  if (filter.from !== undefined) {
    where.push('created_at >= ?');
    params.push(filter.from);
  }
  if (filter.to !== undefined) {
    where.push('created_at < ?');
    params.push(filter.to);
  }
  if (filter.organizationId) {
    where.push('organization_id = ?');
    params.push(filter.organizationId);
  }
  if (filter.productId) {
    where.push('product_id = ?');
    params.push(filter.productId);
  }
  const column =
    groupBy === 'day'
      ? `(created_at + ${9 * 3600_000}) / ${DAY}`
      : groupBy === 'organization'
        ? 'organization_id'
        : groupBy === 'product'
          ? 'product_id'
          : groupBy === 'key'
            ? 'api_key_id'
            : null;
  return db.all<{ g: string; requests: number; prompt: number; cost: string }>(
    `SELECT ${column ?? 'NULL'} AS g, COUNT(*) AS requests, SUM(prompt_tokens) AS prompt,
       CAST(SUM(cost_micro_krw) AS TEXT) AS cost
     FROM usage_events ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
     ${column ? `GROUP BY ${column} ORDER BY ${column}` : ''}`,
    params,
  );
}

test('usage over whole days, partial days and no range equals the records’ own sums', async () => {
  const iso = (ms: number) => new Date(ms).toISOString();
  const ranges: { from?: number; to?: number; label: string }[] = [
    { label: 'everything' },
    { from: START + 2 * DAY, to: START + 6 * DAY, label: 'whole KST days' },
    { from: START + 2 * DAY + 3_600_123, to: START + 6 * DAY - 5_000, label: 'partial first and last days' },
    { from: START + 3 * DAY + 1000, to: START + 3 * DAY + 50_000_000, label: 'within one day' },
    { from: START + 5 * DAY + 17, label: 'open end' },
    { to: START + 4 * DAY + 999, label: 'open start' },
  ];
  for (const range of ranges) {
    for (const groupBy of [undefined, 'day', 'organization', 'product', 'key'] as const) {
      for (const extra of [{}, { organizationId: 'org_2' }, { productId: 'prd_1' }] as Record<
        string,
        string
      >[]) {
        const input: Record<string, string> = { ...extra };
        if (range.from !== undefined) input.from = iso(range.from);
        if (range.to !== undefined) input.to = iso(range.to);
        if (groupBy) input.groupBy = groupBy;
        const answer = await queryUsage(db, input);
        const expected = await raw({ ...range, ...extra }, groupBy);
        const total = expected.reduce((s, r) => s + Number(r.requests), 0);
        const cost = expected.reduce((s, r) => s + BigInt(r.cost), 0n);
        const label = `${range.label} ${groupBy ?? ''} ${JSON.stringify(extra)}`;
        assert.equal(answer.totals.requests, total, label);
        assert.equal(answer.totals.costMicroKrw, cost.toString(), label);
        if (groupBy) {
          assert.equal(answer.rows.length, expected.length, label);
          assert.deepEqual(
            answer.rows.map((r) => r.requests),
            expected.map((r) => Number(r.requests)),
            label,
          );
        }
      }
    }
  }
});
