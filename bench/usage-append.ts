// What a response waits for on PostgreSQL, without HTTP: the latency of UsageJournal.append at a fixed
// arrival rate, for the path before decision 0021 (the record, its daily sums and its ledger charge in
// one group-commit transaction) and for the record alone (the charge posted just after). Both run in
// this process on a database of their own, alternating, every record charged to a voucher with
// co-payment. Run: node --import tsx bench/usage-append.ts [--rate=1000] [--seconds=6] [--rounds=3]
import { performance } from 'node:perf_hooks';
import {
  applyUsageRecords,
  DatabaseUsageJournal,
  MAX_BATCH,
  type UsageRecord,
} from '../src/billing/usage-journal.ts';
import { type Database, openDatabase } from '../src/storage/database.ts';
import { migrate } from '../src/storage/migrator.ts';
import { createTestDatabase } from '../test/helpers/databases.ts';
import { seedUsageAccounts, usageRecord } from './usage-fixture.ts';

/** The group commit as it was before decision 0021: the record and its charge in one transaction. */
class ChargeInTransaction {
  private queue: { record: UsageRecord; resolve: () => void; reject: (e: unknown) => void }[] = [];
  private flushing: Promise<void> | undefined;
  constructor(private readonly db: Database) {}
  append(record: UsageRecord): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ record, resolve, reject });
      this.flushing ??= this.flush();
    });
  }
  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, MAX_BATCH);
      try {
        await applyUsageRecords(
          this.db,
          batch.map((p) => p.record),
          'bench',
        );
        for (const p of batch) p.resolve();
      } catch (error) {
        for (const p of batch) p.reject(error);
      }
    }
    this.flushing = undefined;
  }
  async close(): Promise<void> {
    while (this.flushing) await this.flushing;
  }
}

const args = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, '').split('=');
    return [k, Number(v)];
  }),
);
const rate = args.rate ?? 1000;
const seconds = args.seconds ?? 6;
const rounds = args.rounds ?? 3;

const database = await createTestDatabase('postgres');
const db = await openDatabase(database.location);
try {
  await migrate(db);
  const voucherId = await seedUsageAccounts(db, { voucher: true });
  let n = 0;
  const record = () => usageRecord(`bench_${n++}`, voucherId);
  const at = (sorted: number[], q: number) =>
    sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
  const results: Record<string, number[][]> = { before: [], after: [] };
  for (let round = 0; round < rounds; round++) {
    for (const mode of round % 2 === 0 ? ['before', 'after'] : ['after', 'before']) {
      const journal = mode === 'before' ? new ChargeInTransaction(db) : new DatabaseUsageJournal(db);
      const latencies: number[] = [];
      const started = performance.now();
      const appends: Promise<void>[] = [];
      for (let i = 0; i < rate * seconds; i++) {
        const wait = started + (i * 1000) / rate - performance.now();
        if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
        const t0 = performance.now();
        appends.push(journal.append(record()).then(() => void latencies.push(performance.now() - t0)));
      }
      await Promise.all(appends);
      await journal.close();
      latencies.sort((a, b) => a - b);
      const row = [at(latencies, 0.5), at(latencies, 0.99), latencies.at(-1)!];
      results[mode]!.push(row);
      console.log(
        `round ${round + 1} ${mode}: p50 ${row[0]!.toFixed(2)} ms, p99 ${row[1]!.toFixed(2)} ms, max ${row[2]!.toFixed(2)} ms`,
      );
    }
  }
  const charges = await db.get<{ n: number }>(
    "SELECT COUNT(*) AS n FROM ledger_transactions WHERE kind = 'charge'",
  );
  console.log(`${n} records, ${charges!.n} charges`);
  for (const mode of ['before', 'after']) {
    const rows = results[mode]!;
    const median = (i: number) => rows.map((r) => r[i]!).sort((a, b) => a - b)[Math.floor(rows.length / 2)]!;
    console.log(`${mode}: median of rounds p50 ${median(0).toFixed(2)} ms, p99 ${median(1).toFixed(2)} ms`);
  }
} finally {
  await db.close();
  await database.drop();
}
