// Billing at scale on PostgreSQL (issue 13's figures): usage queries over 10M usage records (p95 under
// 200 ms) and closing a month of 1M charges (under 30 s). Generates the data with SQL in a database of
// its own (dropped at the end), then times the hub's own code: queryUsage and SettlementService.close.
//
// Run: node --import tsx bench/billing-scale.ts [--usage=10000000] [--charges=1000000] [--repeat=30]
//      (KAIHUB_TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/test)
// Loopback only; every loop is bounded by its counts.
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { SettlementService } from '../src/billing/settlement.ts';
import { queryUsage } from '../src/billing/usage-query.ts';
import { openDatabase } from '../src/storage/database.ts';
import { migrate } from '../src/storage/migrator.ts';

const { values } = parseArgs({
  options: { usage: { type: 'string' }, charges: { type: 'string' }, repeat: { type: 'string' } },
});
const USAGE = Number(values.usage ?? 10_000_000);
const CHARGES = Number(values.charges ?? 1_000_000);
const REPEAT = Number(values.repeat ?? 30);
const ADMIN_URL = process.env.KAIHUB_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const KST = 9 * 3600_000;
const DAY = 86_400_000;
// 90 days of usage ending with September 2026; the month closed is October 2026
const USAGE_START = Date.parse('2026-07-03T00:00:00+09:00');
const MONTH = '2026-10';
const MONTH_START = Date.parse('2026-10-01T00:00:00+09:00');
const MONTH_MS = Date.parse('2026-11-01T00:00:00+09:00') - MONTH_START;

const log = (text: string) =>
  process.stdout.write(`[billing-scale ${new Date().toISOString().slice(11, 19)}] ${text}\n`);

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  const result = await fn();
  return [result, performance.now() - start];
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const name = `kaihub_bench_${randomBytes(4).toString('hex')}`;
const admin = new pg.Client({ connectionString: ADMIN_URL });
await admin.connect();
await admin.query(`CREATE DATABASE ${name}`);
const url = new URL(ADMIN_URL);
url.pathname = `/${name}`;
const db = await openDatabase(url.toString());
const results: Record<string, unknown> = { usage: USAGE, charges: CHARGES, repeat: REPEAT };
try {
  await migrate(db);
  const now = Date.now();
  await db.run(
    `INSERT INTO suppliers (id, name, status, created_at, updated_at) VALUES ('sup_a', 'A', 'active', ?, ?)`,
    [now, now],
  );
  for (let p = 0; p < 10; p++) {
    await db.run(
      `INSERT INTO products (id, supplier_id, model, display_name, purposes, modality, context_window,
         price_input_micro_per_1m, price_output_micro_per_1m, residency, status, created_at, updated_at)
       VALUES (?, 'sup_a', ?, ?, '["chat"]', 'text', 8192, 1000000000, 3000000000, 'domestic', 'active', ?, ?)`,
      [`prd_${p}`, `model-${p}`, `model-${p}`, now, now],
    );
  }
  for (let o = 0; o < 50; o++) {
    await db.run(
      `INSERT INTO organizations (id, name, class, status, created_at, updated_at) VALUES (?, ?, 'sme', 'active', ?, ?)`,
      [`org_${o}`, `org ${o}`, now, now],
    );
  }

  // 10M usage records over 90 days: 50 organisations, 10 products, 4 keys each
  const [, generateMs] = await timed(() =>
    db.run(
      `INSERT INTO usage_events (request_id, created_at, organization_id, api_key_id, product_id, deployment_id, model,
         endpoint, stream, status, http_status, error_code, prompt_tokens, completion_tokens, usage_source,
         price_input_micro_per_1m, price_output_micro_per_1m, cost_micro_krw, latency_ms, ttft_ms)
       SELECT 'u' || i, ${USAGE_START} + (i::bigint * 2654435761) % ${90 * DAY}, 'org_' || (i % 50), 'key_' || (i % 50) || '_' || (i % 4),
         'prd_' || (i % 10), NULL, 'model-' || (i % 10), 'chat.completions', 0, 'ok', 200, NULL, 100 + i % 400,
         50 + i % 300, 'upstream', 1000000000, 3000000000, (100 + i % 400) * 1000 + (50 + i % 300) * 3000, 100, NULL
       FROM generate_series(1, ${USAGE}) AS i`,
    ),
  );
  const [, rollupMs] = await timed(() =>
    db.run(
      `INSERT INTO usage_daily (day_number, organization_id, product_id, model, api_key_id, requests, prompt_tokens,
         completion_tokens, cost_micro_krw)
       SELECT (created_at + ${KST}) / ${DAY}, organization_id, product_id, model, api_key_id, COUNT(*), SUM(prompt_tokens),
         SUM(completion_tokens), SUM(cost_micro_krw)
       FROM usage_events GROUP BY 1, 2, 3, 4, 5`,
    ),
  );
  await db.exec('ANALYZE');
  log(
    `${USAGE.toLocaleString('en')} usage records in ${(generateMs / 1000).toFixed(1)} s, rollup ${(rollupMs / 1000).toFixed(1)} s`,
  );

  const iso = (ms: number) => new Date(ms).toISOString();
  const queries: [string, Record<string, string>][] = [
    ['operator: 90 days by day', { from: '2026-07-03', to: '2026-10-01', groupBy: 'day' }],
    [
      'operator: one month by organisation',
      { from: '2026-08-01', to: '2026-09-01', groupBy: 'organization' },
    ],
    [
      'organisation: one month by product',
      { organizationId: 'org_7', from: '2026-09-01', to: '2026-10-01', groupBy: 'product' },
    ],
    [
      'key: a range to the millisecond',
      {
        keyId: 'key_7_3',
        from: iso(USAGE_START + 5 * DAY + 12_345),
        to: iso(USAGE_START + 40 * DAY - 999),
        groupBy: 'day',
      },
    ],
    ['product: all of it', { productId: 'prd_3' }],
  ];
  const usageResults: Record<string, unknown>[] = [];
  for (const [label, input] of queries) {
    const times: number[] = [];
    let requests = 0;
    for (let i = 0; i < REPEAT; i++) {
      const [answer, ms] = await timed(() => queryUsage(db, input));
      times.push(ms);
      requests = answer.totals.requests;
    }
    times.sort((a, b) => a - b);
    const row = {
      label,
      requests,
      p50Ms: percentile(times, 50),
      p95Ms: percentile(times, 95),
      maxMs: times.at(-1),
    };
    usageResults.push(row);
    log(
      `${label}: ${requests.toLocaleString('en')} requests, p50 ${row.p50Ms.toFixed(1)} ms, p95 ${row.p95Ms.toFixed(1)} ms`,
    );
  }
  results.usageQueries = usageResults;

  // 1M charges in October: usage records, charge transactions, and entries (voucher 80 %, wallet, payable)
  const [, chargesMs] = await timed(async () => {
    await db.run(
      `INSERT INTO usage_events (request_id, created_at, organization_id, api_key_id, product_id, deployment_id, model,
         endpoint, stream, status, http_status, error_code, prompt_tokens, completion_tokens, usage_source,
         price_input_micro_per_1m, price_output_micro_per_1m, cost_micro_krw, latency_ms, ttft_ms)
       SELECT 'c' || i, ${MONTH_START} + (i::bigint * 2654435761) % ${MONTH_MS}, 'org_' || (i % 50), 'key_' || (i % 50) || '_0',
         'prd_' || (i % 10), NULL, 'model-' || (i % 10), 'chat.completions', 0, 'ok', 200, NULL, 100, 100, 'upstream',
         1000000000, 3000000000, 400000, 100, NULL
       FROM generate_series(1, ${CHARGES}) AS i`,
    );
    await db.run(
      `INSERT INTO ledger_accounts (id, kind, owner_id, balance_micro_krw, never_negative, created_at)
       SELECT 'wallet:org_' || o, 'wallet', 'org_' || o, 0, 0, 0 FROM generate_series(0, 49) AS o
       UNION ALL SELECT 'payable:sup_a', 'supplier_payable', 'sup_a', 0, 0, 0`,
    );
    await db.run(`INSERT INTO settlement_months (month, status) VALUES ('${MONTH}', 'open')`);
    await db.run(
      `INSERT INTO ledger_transactions (id, kind, request_id, created_at, settlement_month)
       SELECT 'ltx_c' || i, 'charge', 'c' || i, ${MONTH_START} + (i::bigint * 2654435761) % ${MONTH_MS}, '${MONTH}'
       FROM generate_series(1, ${CHARGES}) AS i`,
    );
    await db.run(
      `INSERT INTO ledger_entries (transaction_id, account_id, amount_micro_krw, created_at)
       SELECT 'ltx_c' || i, 'wallet:org_' || (i % 50), -400000, 0 FROM generate_series(1, ${CHARGES}) AS i
       UNION ALL
       SELECT 'ltx_c' || i, 'payable:sup_a', 400000, 0 FROM generate_series(1, ${CHARGES}) AS i`,
    );
    await db.exec('ANALYZE');
  });
  log(`${CHARGES.toLocaleString('en')} charges generated in ${(chargesMs / 1000).toFixed(1)} s`);
  const settlement = new SettlementService(db);
  const [summary, closeMs] = await timed(() => settlement.close({ month: MONTH }, async () => {}, 'bench'));
  log(
    `closed ${MONTH}: ${summary.totals?.charges.toLocaleString('en')} charges, ${summary.statements.length} statements in ${(closeMs / 1000).toFixed(2)} s`,
  );
  results.close = {
    charges: summary.totals?.charges,
    statements: summary.statements.length,
    seconds: closeMs / 1000,
  };
  process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
} finally {
  await db.close();
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.end();
}
