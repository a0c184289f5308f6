// Ingesting a day's usage of 100,000 jobs on PostgreSQL (issue 16's figure: under 10 s). A database of
// its own (dropped at the end): a Slurm pool with 1,000 active allocations (one organisation each),
// and a day of `sacct -a -X -n -P -T` output with 100,000 GPU jobs across their accounts (2 % in
// accounts the hub does not know). Times what UsageService.ingest does after sacct answers: parsing
// the text, storing every job, summing per allocation-day and charging the ledger — first read, then
// the same day read again (every job replaced, nothing new to charge).
//
// Run: node --import tsx bench/compute-usage.ts [--jobs=100000] [--allocations=1000] [--engine=postgres|sqlite]

//      (KAIHUB_TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/test)
// Loopback only; every loop is bounded by its counts.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import type { AuditTrail } from '../src/audit/audit-log.ts';
import { CredentialBox } from '../src/catalog/credentials.ts';
import { parseSacctJobs } from '../src/compute/provisioners/slurm/parse.ts';
import { createComputeServices } from '../src/compute/services.ts';
import { dayIndex, dayStartMs, dayText } from '../src/kst.ts';
import { createLogger } from '../src/observability/logger.ts';
import { type Database, openDatabase } from '../src/storage/database.ts';
import { migrate } from '../src/storage/migrator.ts';

const { values } = parseArgs({
  options: { jobs: { type: 'string' }, allocations: { type: 'string' }, engine: { type: 'string' } },
});
const JOBS = Number(values.jobs ?? 100_000);
const ALLOCATIONS = Number(values.allocations ?? 1000);
const ENGINE = values.engine ?? 'postgres';
const ADMIN_URL = process.env.KAIHUB_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const DAY = dayIndex(Date.parse('2027-03-10T12:00:00+09:00'));
const NOW = dayStartMs(DAY + 1) + 3_600_000;
const noTrail: AuditTrail = async () => {};

const log = (text: string) =>
  process.stdout.write(`[compute-usage ${new Date().toISOString().slice(11, 19)}] ${text}\n`);

async function open(): Promise<{ db: Database; drop: () => Promise<void> }> {
  if (ENGINE === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'kaihub-bench-'));
    return {
      db: await openDatabase(join(dir, 'hub.sqlite')),
      drop: async () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  const name = `kaihub_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    db: await openDatabase(url.toString()),
    drop: async () => {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    },
  };
}

const { db, drop } = await open();
try {
  await migrate(db);
  const compute = createComputeServices(db, new CredentialBox(randomBytes(32)), createLogger('silent'), {
    clock: () => NOW,
    reconciler: { intervalMs: 0, usageEveryMs: 3_600_000, driftEveryMs: 3_600_000 },
  });
  await db.run(
    `INSERT INTO suppliers (id, name, status, created_at, updated_at) VALUES ('sup_b', 'B', 'active', ?, ?)`,
    [NOW, NOW],
  );
  const pool = await compute.pools.create(
    {
      supplierId: 'sup_b',
      name: '슬럼 풀',
      gpuModel: 'H100',
      tfPerGpu: 989,
      gpuCount: ALLOCATIONS * 8,
      region: 'capital',
      pricePerGpuHourKrw: '2950.5',
      provisioner: 'slurm',
      provisionerConfig: { cluster: 'bench', slurmConf: '/etc/slurm/slurm.conf' },
    },
    noTrail,
  );
  const call = await compute.calls.create(
    {
      name: '벤치 공모',
      startsOn: dayText(DAY - 30),
      endsOn: dayText(DAY + 90),
      poolIds: [pool.id],
      tracks: [{ id: 'small', name: 'S', unit: 'gpu', min: 1, max: 8 }],
      eligibleClasses: ['sme'],
      maxGrantDays: 120,
      reviewCriteria: [{ id: 'impact', name: '파급', weight: 100 }],
      capacityGpus: ALLOCATIONS * 8,
      copayPercent: 20,
    },
    noTrail,
  );
  log(`${ALLOCATIONS} active allocations`);
  const accounts: string[] = [];
  await db.transaction(async (tx) => {
    for (let i = 0; i < ALLOCATIONS; i += 200) {
      const n = Math.min(200, ALLOCATIONS - i);
      const orgs: (string | number)[] = [];
      const apps: (string | number)[] = [];
      const allocations: (string | number)[] = [];
      for (let k = 0; k < n; k++) {
        const j = i + k;
        const account = `kh_org_bench${j}`;
        accounts.push(account);
        orgs.push(`org_bench${j}`, `기관 ${j}`, 'sme', 'active', NOW, NOW);
        apps.push(
          `gap_bench${j}`,
          call.id,
          `org_bench${j}`,
          'small',
          pool.id,
          'gpu',
          8,
          8,
          dayStartMs(DAY - 10),
          dayStartMs(DAY + 50),
          'training',
          '계획',
          'capital',
          '[]',
          'selected',
          NOW,
          NOW,
        );
        allocations.push(
          `gal_bench${j}`,
          `gap_bench${j}`,
          call.id,
          pool.id,
          `org_bench${j}`,
          8,
          dayStartMs(DAY - 10),
          dayStartMs(DAY + 50),
          '2950500000',
          2000,
          account,
          '["root"]',
          'active',
          NOW,
          NOW,
        );
      }
      await tx.run(
        `INSERT INTO organizations (id, name, class, status, created_at, updated_at) VALUES ${new Array(n).fill('(?, ?, ?, ?, ?, ?)').join(', ')}`,
        orgs,
      );
      await tx.run(
        `INSERT INTO compute_applications (id, call_id, organization_id, track_id, pool_id, unit, quantity, gpus, starts_at,
           ends_at, purpose, plan, applicant_region, scheduler_users, status, created_at, updated_at)
         VALUES ${new Array(n).fill(`(${new Array(17).fill('?').join(', ')})`).join(', ')}`,
        apps,
      );
      await tx.run(
        `INSERT INTO compute_allocations (id, application_id, call_id, pool_id, organization_id, gpus, starts_at, ends_at,
           price_micro_krw_per_gpu_hour, copay_bp, scheduler_account, scheduler_users, status, created_at, updated_at)
         VALUES ${new Array(n).fill(`(${new Array(15).fill('?').join(', ')})`).join(', ')}`,
        allocations,
      );
    }
  });

  // a day of sacct: 100,000 jobs, 1 to 8 GPUs, a minute to four hours each, 2 % in foreign accounts
  const lines: string[] = [];
  // mulberry32: seeded, so every run reads the same day
  let s = 42;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
  let expectedSeconds = 0;
  for (let i = 0; i < JOBS; i++) {
    const account = next() < 0.02 ? `other_${i % 17}` : accounts[Math.floor(next() * accounts.length)]!;
    const gpus = 1 + Math.floor(next() * 8);
    const elapsed = 60 + Math.floor(next() * 14_340);
    const start = new Date(dayStartMs(DAY) + Math.floor(next() * 72_000_000)).toISOString().slice(0, 19);
    if (!account.startsWith('other_')) expectedSeconds += gpus * elapsed;
    lines.push(
      `${1_000_000 + i}|${account}|user${i % 300}|COMPLETED|${start}|${elapsed}|billing=${gpus},cpu=${gpus * 4},gres/gpu:h100=${gpus},gres/gpu=${gpus},node=1`,
    );
  }
  const text = `${lines.join('\n')}\n`;
  log(`sacct text: ${(text.length / 1e6).toFixed(1)} MB, ${JOBS} jobs`);

  const round = async (label: string) => {
    const t0 = performance.now();
    const jobs = parseSacctJobs(text);
    const t1 = performance.now();
    const result = await compute.usage.store(pool.id, dayText(DAY), NOW, jobs);
    const t2 = performance.now();
    log(
      `${label}: parse ${(t1 - t0).toFixed(0)} ms + store, sum and charge ${(t2 - t1).toFixed(0)} ms = ${(t2 - t0).toFixed(0)} ms; ` +
        `${result.jobs} jobs, ${result.allocations.filter((a) => a.jobs > 0).length} allocations, ${result.charged.length} charges, ` +
        `${result.unattributed.jobs} unattributed`,
    );
    return {
      parseMs: Math.round(t1 - t0),
      storeMs: Math.round(t2 - t1),
      totalMs: Math.round(t2 - t0),
      result,
    };
  };
  const first = await round('first read of the day');
  const again = await round('the same day read again');
  const billed = await db.get<{ s: string }>(
    'SELECT CAST(SUM(gpu_seconds) AS TEXT) AS s FROM compute_charges',
  );
  if (Number(billed?.s) !== expectedSeconds)
    throw new Error(`billed ${billed?.s} GPU-seconds, the jobs of the hub's accounts ran ${expectedSeconds}`);
  log(`billed GPU-seconds = the generated jobs' (${expectedSeconds})`);
  process.stdout.write(
    `${JSON.stringify({
      engine: ENGINE,
      jobs: JOBS,
      allocations: ALLOCATIONS,
      first: {
        parseMs: first.parseMs,
        storeMs: first.storeMs,
        totalMs: first.totalMs,
        charges: first.result.charged.length,
      },
      again: {
        parseMs: again.parseMs,
        storeMs: again.storeMs,
        totalMs: again.totalMs,
        charges: again.result.charged.length,
      },
    })}\n`,
  );
} finally {
  await db.close();
  await drop();
}
