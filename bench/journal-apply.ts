// What applying a usage record costs the journal applier (SQLite, off the request path), as the tables
// grow: records as the hub journals them (charged to the organisation's wallet, optionally through a
// voucher), applied in batches like the applier's, with request ids made the way the hub makes them or
// at random (as before 2026-11-30). Prints µs a record for each block of 20,000 and CPU µs a record.
// With --batch=varied the transactions take every size from 1 to 250 in turn, as traffic gives the applier,
// and the process's RSS before and after shows what its connection keeps (decision 0036).
// Run: node --import tsx bench/journal-apply.ts [--records=100000] [--batch=200|varied] [--ids=hub|random]
//      [--voucher] [--pragma='wal_autocheckpoint=4000'] (repeatable with ;)
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
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
  --batch=200          records a transaction, as the applier gathers them; varied: 1, 38, 75, … (every
                       size from 1 to 250 in turn), with the process's RSS before and after
  --ids=hub            hub: request ids as the hub makes them (time-ordered); random: random UUIDs
  --voucher            charge every record through a voucher with co-payment
  --pragma=…           SQLite settings to try, separated by ; (e.g. wal_autocheckpoint=8000)
`,
);
if (args.ids !== undefined && args.ids !== 'hub' && args.ids !== 'random')
  throw new Error(`--ids is hub or random, not ${args.ids}`);
const total = positiveOption(args, 'records', 100_000);
const varied = args.batch === 'varied';
const batch = varied ? 0 : positiveOption(args, 'batch', 200);
/** 37 and 250 share no factor: 250 transactions in a row take every size from 1 to 250 once. */
const sizeOf = (n: number) => (varied ? ((n * 37) % 250) + 1 : batch);
const rssMiB = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]) / 1024;
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
  const rssBefore = rssMiB();
  for (let n = 0; applied < total; n++) {
    const size = sizeOf(n);
    await applyUsageRecords(db, Array.from({ length: size }, record), 'bench');
    applied += size;
    if (applied - blockFrom >= BLOCK) {
      const t = performance.now();
      blocks.push(((t - blockStart) * 1000) / (applied - blockFrom));
      blockStart = t;
      blockFrom = applied;
    }
  }
  const cpu = process.cpuUsage(cpuBefore);
  console.log(
    `ids ${ids}, batch ${varied ? '1…250 in turn' : batch}${voucherId ? ', through a voucher' : ''}: µs a record per ${BLOCK.toLocaleString()} ` +
      `applied: ${blocks.map((b) => b.toFixed(1)).join(', ')}; CPU µs a record ${((cpu.user + cpu.system) / applied).toFixed(1)}; RSS ` +
      `${rssBefore.toFixed(1)} → ${rssMiB().toFixed(1)} MiB`,
  );
} finally {
  await db.close();
  rmSync(dir, { recursive: true, force: true });
}
