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
import { applyUsageRecords } from '../src/billing/usage-journal.ts';
import { newRequestId } from '../src/storage/ids.ts';
import { migrate } from '../src/storage/migrator.ts';
import { openSqlite } from '../src/storage/sqlite.ts';
import { positiveOption, rawOptions } from './cli.mjs';
import { seedUsageAccounts, usageRecord } from './usage-fixture.ts';

const args = rawOptions(
  process.argv.slice(2),
  `Usage: node --import tsx bench/journal-apply.ts [options]

  --records=100000     records applied
  --batch=200          records a transaction, as the applier gathers them
  --ids=hub            hub: request ids as the hub makes them (time-ordered); random: random UUIDs
  --voucher            charge every record through a voucher with co-payment
  --pragma=…           SQLite settings to try, separated by ; (e.g. wal_autocheckpoint=8000)
`,
);
if (args.ids !== undefined && args.ids !== 'hub' && args.ids !== 'random')
  throw new Error(`--ids is hub or random, not ${args.ids}`);
const total = positiveOption(args, 'records', 100_000);
const batch = positiveOption(args, 'batch', 200);
const ids = args.ids ?? 'hub';
const BLOCK = 20_000;
const pragmas = (args.pragma ?? '').split(';').filter(Boolean);

const dir = mkdtempSync(join(tmpdir(), 'journal-apply-'));
const db = openSqlite(join(dir, 'hub.sqlite'));
try {
  await migrate(db);
  for (const pragma of pragmas) await db.exec(`PRAGMA ${pragma}`);
  const voucherId = await seedUsageAccounts(db, { voucher: Boolean(args.voucher) });
  const record = () =>
    usageRecord(ids === 'random' ? `req_${randomUUID().replaceAll('-', '')}` : newRequestId(), voucherId);
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
