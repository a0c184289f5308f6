// What applying a usage record costs the journal applier (SQLite, off the request path), as the tables
// grow: records as the hub journals them (charged to the organisation's wallet, optionally through a
// voucher), applied in batches like the applier's, with request ids made the way the hub makes them or
// at random (as before 2026-11-30). Prints µs a record for each block of 20,000 and CPU µs a record.
// Run: node --import tsx bench/journal-apply.ts [--records=100000] [--batch=200] [--ids=hub|random]
//      [--voucher] [--pragma='wal_autocheckpoint=4000'] (repeatable with ;)
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { AuditTrail } from '../src/audit/audit-log.ts';
import { ProgrammeService } from '../src/billing/programmes.ts';
import { applyUsageRecords, type UsageRecord } from '../src/billing/usage-journal.ts';
import { newRequestId } from '../src/storage/ids.ts';
import { migrate } from '../src/storage/migrator.ts';
import { openSqlite } from '../src/storage/sqlite.ts';

const args = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const [k, ...v] = a.replace(/^--/, '').split('=');
    return [k, v.join('=') || 'true'];
  }),
);
const total = Number(args.records ?? 100_000);
const batch = Number(args.batch ?? 200);
const ids = args.ids ?? 'hub';
const BLOCK = 20_000;
const pragmas = (args.pragma ?? '').split(';').filter(Boolean);

const dir = mkdtempSync(join(tmpdir(), 'journal-apply-'));
const db = openSqlite(join(dir, 'hub.sqlite'));
try {
  await migrate(db);
  for (const pragma of pragmas) await db.exec(`PRAGMA ${pragma}`);
  const now = Date.now();
  await db.run(
    `INSERT INTO suppliers (id, name, status, created_at, updated_at) VALUES ('sup', 'S', 'active', ?, ?)`,
    [now, now],
  );
  await db.run(
    `INSERT INTO products (id, supplier_id, model, display_name, purposes, modality, context_window,
       price_input_micro_per_1m, price_output_micro_per_1m, residency, status, created_at, updated_at)
     VALUES ('prd', 'sup', 'm', 'm', '["chat"]', 'text', 8192, 1, 1, 'domestic', 'active', ?, ?)`,
    [now, now],
  );
  await db.run(
    `INSERT INTO organizations (id, name, class, status, created_at, updated_at) VALUES ('org', 'o', 'sme', 'active', ?, ?)`,
    [now, now],
  );
  let voucherId: string | null = null;
  if (args.voucher) {
    const noTrail: AuditTrail = async () => {};
    const programmes = new ProgrammeService(db);
    const programme = await programmes.create(
      {
        name: 'bench',
        startsOn: '2026-01-01',
        endsOn: '2099-12-31',
        budgetKrw: '100000000',
        copayPercent: { sme: 20 },
        onExhausted: 'self-pay',
      },
      noTrail,
      'bench',
    );
    voucherId = (
      await programmes.issueVoucher(
        programme.id,
        { organizationId: 'org', amountKrw: '50000000' },
        noTrail,
        'bench',
      )
    ).id;
  }
  const record = (): UsageRecord => ({
    requestId: ids === 'random' ? `req_${randomUUID().replaceAll('-', '')}` : newRequestId(),
    createdAtMs: Date.now(),
    organizationId: 'org',
    apiKeyId: 'key',
    productId: 'prd',
    deploymentId: 'dep',
    model: 'm',
    endpoint: 'chat.completions',
    stream: false,
    status: 'ok',
    httpStatus: 200,
    errorCode: null,
    promptTokens: 20,
    completionTokens: 10,
    usageSource: 'upstream',
    priceInputMicroPer1M: 1_000_000_000n,
    priceOutputMicroPer1M: 3_000_000_000n,
    costMicroKrw: 50_000n,
    latencyMs: 1,
    ttftMs: null,
    usageNote: null,
    voucherId,
  });
  const blocks: number[] = [];
  const cpuBefore = process.cpuUsage();
  let applied = 0;
  let blockStart = performance.now();
  let blockFrom = 0;
  while (applied < total) {
    await applyUsageRecords(db, Array.from({ length: batch }, record), 'bench');
    applied += batch;
    if (applied - blockFrom >= BLOCK) {
      const t = performance.now();
      blocks.push(((t - blockStart) * 1000) / (applied - blockFrom));
      blockStart = t;
      blockFrom = applied;
    }
  }
  const cpu = process.cpuUsage(cpuBefore);
  console.log(
    `ids ${ids}, batch ${batch}${voucherId ? ', through a voucher' : ''}: µs a record per ${BLOCK.toLocaleString()} ` +
      `applied: ${blocks.map((b) => b.toFixed(1)).join(', ')}; CPU µs a record ${((cpu.user + cpu.system) / total).toFixed(1)}`,
  );
} finally {
  await db.close();
  rmSync(dir, { recursive: true, force: true });
}
