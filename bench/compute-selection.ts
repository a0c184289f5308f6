// Ranking and selecting 2,000 applications against a 10,000-GPU pool with time windows (issue 16's
// figure: under 1 s). On a database of its own (PostgreSQL, dropped at the end, or a SQLite file): a
// pool, a call, 2,000 submitted applications of 1 to 64 GPUs over windows of 30 to 120 days within
// half a year, two reviews each. Times the hub's own code: the ranking and fill alone (in memory), a
// dry run of ComputeSelectionService.run (reads under the locks, decides, writes nothing) and the run
// that commits (allocations, decisions, the audit entry), the state reset between repeats.
//
// Run: node --import tsx bench/compute-selection.ts [--engine=postgres|sqlite] [--applications=2000]

//      [--gpus=10000] [--repeat=5]   (KAIHUB_TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/test)
// Loopback only; every loop is bounded by its counts.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import type { AuditTrail } from '../src/audit/audit-log.ts';
import { CredentialBox } from '../src/catalog/credentials.ts';
import { commitments } from '../src/compute/capacity.ts';
import { limitsOf } from '../src/compute/grants.ts';
import { type Candidate, fill, Ledger, rank } from '../src/compute/ranking.ts';
import { createComputeServices } from '../src/compute/services.ts';
import { dayIndex, dayStartMs, dayText } from '../src/kst.ts';
import { createLogger } from '../src/observability/logger.ts';
import { type Database, openDatabase } from '../src/storage/database.ts';
import { migrate } from '../src/storage/migrator.ts';

const { values } = parseArgs({
  options: {
    engine: { type: 'string' },
    applications: { type: 'string' },
    gpus: { type: 'string' },
    repeat: { type: 'string' },
  },
});
const ENGINE = values.engine ?? 'postgres';
const APPLICATIONS = Number(values.applications ?? 2000);
const POOL_GPUS = Number(values.gpus ?? 10_000);
const REPEAT = Math.min(Number(values.repeat ?? 5), 50);
const ADMIN_URL = process.env.KAIHUB_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const NOW = Date.parse('2027-01-01T09:00:00+09:00');
const clock = () => NOW;
const noTrail: AuditTrail = async () => {};

const log = (text: string) =>
  process.stdout.write(`[compute-selection ${new Date().toISOString().slice(11, 19)}] ${text}\n`);

/** A small seeded generator, so every run draws the same applications. */
function random(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function open(): Promise<{ db: Database; drop: () => Promise<void> }> {
  if (ENGINE === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'kaihub-bench-'));
    const db = await openDatabase(join(dir, 'hub.sqlite'));
    return { db, drop: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  const name = `kaihub_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const db = await openDatabase(url.toString());
  return {
    db,
    drop: async () => {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    },
  };
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  const result = await fn();
  return [result, performance.now() - start];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const { db, drop } = await open();
try {
  await migrate(db);
  const compute = createComputeServices(db, new CredentialBox(randomBytes(32)), createLogger('silent'), {
    clock,
    reconciler: { intervalMs: 0, usageEveryMs: 3_600_000, driftEveryMs: 3_600_000 },
  });
  await db.run(
    `INSERT INTO suppliers (id, name, status, created_at, updated_at) VALUES ('sup_b', 'B', 'active', ?, ?)`,
    [NOW, NOW],
  );
  const pool = await compute.pools.create(
    {
      supplierId: 'sup_b',
      name: '국가 GPU 풀',
      gpuModel: 'H100',
      tfPerGpu: 989,
      gpuCount: POOL_GPUS,
      region: 'non_capital',
      pricePerGpuHourKrw: '3000',
    },
    noTrail,
  );
  const call = await compute.calls.create(
    {
      name: '벤치 공모',
      startsOn: '2027-01-01',
      endsOn: '2027-12-31',
      poolIds: [pool.id],
      tracks: [
        { id: 'small', name: '1–4 GPU', unit: 'gpu', min: 1, max: 4 },
        { id: 'server', name: '서버', unit: 'server', min: 1, max: 8 },
      ],
      eligibleClasses: ['sme', 'university', 'research'],
      maxGrantDays: 120,
      reviewCriteria: [
        { id: 'impact', name: '파급', weight: 60 },
        { id: 'readiness', name: '준비', weight: 40 },
      ],
      bonuses: { nonCapitalRegion: 5 },
      tieBreak: ['non_capital_first', 'criterion:impact', 'earlier_submission'],
      capacityGpus: POOL_GPUS,
    },
    noTrail,
  );
  log(`generating ${APPLICATIONS} applications with 2 reviews each (${ENGINE})`);
  const next = random(16);
  const first = dayIndex(NOW) + 1;
  let demand = 0;
  await db.transaction(async (tx) => {
    for (let i = 0; i < APPLICATIONS; i += 200) {
      const n = Math.min(200, APPLICATIONS - i);
      const orgs: (string | number)[] = [];
      const apps: (string | number | null)[] = [];
      const reviews: (string | number)[] = [];
      for (let k = 0; k < n; k++) {
        const j = i + k;
        const org = `org_bench${j}`;
        orgs.push(org, `기관 ${j}`, 'sme', 'active', NOW, NOW);
        const roll = next();
        const [track, unit, quantity, gpus] =
          roll < 0.4
            ? (() => {
                const q = 1 + Math.floor(next() * 4);
                return ['small', 'gpu', q, q] as const;
              })()
            : (() => {
                const q = roll < 0.8 ? 1 + Math.floor(next() * 2) : 4 + Math.floor(next() * 5);
                return ['server', 'server', q, q * 8] as const;
              })();
        demand += gpus;
        const start = first + Math.floor(next() * 180);
        const length = 30 + Math.floor(next() * 91);
        apps.push(
          `gap_bench${j}`,
          call.id,
          org,
          track,
          pool.id,
          unit,
          quantity,
          gpus,
          dayStartMs(start),
          dayStartMs(start + length),
          'training',
          '계획',
          next() < 0.3 ? 'non_capital' : 'capital',
          '[]',
          'submitted',
          NOW - (APPLICATIONS - j) * 1000,
          NOW,
          NOW,
        );
        for (const reviewer of ['r1', 'r2']) {
          const impact = Math.floor(next() * 101);
          const readiness = Math.floor(next() * 101);
          reviews.push(
            `gap_bench${j}`,
            reviewer,
            JSON.stringify({ impact, readiness }),
            impact * 60 + readiness * 40,
            NOW,
            NOW,
          );
        }
      }
      await tx.run(
        `INSERT INTO organizations (id, name, class, status, created_at, updated_at) VALUES ${new Array(n).fill('(?, ?, ?, ?, ?, ?)').join(', ')}`,
        orgs,
      );
      await tx.run(
        `INSERT INTO compute_applications (id, call_id, organization_id, track_id, pool_id, unit, quantity, gpus, starts_at,
           ends_at, purpose, plan, applicant_region, scheduler_users, status, submitted_at, created_at, updated_at)
         VALUES ${new Array(n).fill(`(${new Array(18).fill('?').join(', ')})`).join(', ')}`,
        apps,
      );
      await tx.run(
        `INSERT INTO compute_reviews (application_id, reviewer_id, scores, weighted_centipoints, created_at, updated_at)
         VALUES ${new Array(n * 2).fill('(?, ?, ?, ?, ?, ?)').join(', ')}`,
        reviews,
      );
    }
  });
  log(`${APPLICATIONS} applications asking ${demand} GPUs in all, from ${dayText(first)} over 180 days`);

  // the ranking and the fill alone, on candidates as the service builds them
  const terms = await compute.calls.terms(call.id);
  const poolRow = await compute.pools.row(pool.id);
  const rows = await db.all<Record<string, unknown>>(
    `SELECT a.id, a.organization_id, a.pool_id, a.track_id, a.gpus, a.starts_at, a.ends_at, a.applicant_region,
       a.submitted_at, r.scores, r.weighted_centipoints FROM compute_applications a JOIN compute_reviews r ON r.application_id = a.id`,
  );
  const byId = new Map<string, Candidate>();
  for (const r of rows) {
    const c = byId.get(r.id as string) ?? {
      id: r.id as string,
      organizationId: r.organization_id as string,
      poolId: r.pool_id as string,
      trackId: r.track_id as string,
      gpus: Number(r.gpus),
      startDay: dayIndex(Number(r.starts_at)),
      endDay: dayIndex(Number(r.ends_at) - 1) + 1,
      region: r.applicant_region as 'capital' | 'non_capital',
      submittedAt: Number(r.submitted_at),
      reviews: 0,
      totalCentipoints: 0,
      criterionMeans: {},
    };
    c.reviews += 1;
    c.totalCentipoints += Number(r.weighted_centipoints);
    for (const [k, v] of Object.entries(JSON.parse(r.scores as string) as Record<string, number>))
      c.criterionMeans[k] = (c.criterionMeans[k] ?? 0) + v / 2;
    byId.set(c.id, c);
  }
  const candidates = [...byId.values()];
  const memory: number[] = [];
  let selectedInMemory = 0;
  for (let i = 0; i < REPEAT * 4; i++) {
    const start = performance.now();
    const ranked = rank(candidates, terms.bonuses, terms.tieBreak);
    const ledger = new Ledger(
      limitsOf(terms, [poolRow]),
      first,
      first + 400,
      await commitments(db, [pool.id], call.id, dayStartMs(first), dayStartMs(first + 400)),
    );
    selectedInMemory = fill(ranked, ledger, call.id).filter((o) => o.decision === 'selected').length;
    memory.push(performance.now() - start);
  }
  log(`rank + fill in memory: median ${median(memory).toFixed(1)} ms (${selectedInMemory} selected)`);

  const dry: number[] = [];
  for (let i = 0; i < REPEAT; i++)
    dry.push((await timed(() => compute.selection.run(call.id, { dryRun: true }, noTrail)))[1]);
  log(`dry run (read under the locks, rank, fill): median ${median(dry).toFixed(1)} ms`);

  const commit: number[] = [];
  let outcome: Awaited<ReturnType<typeof compute.selection.run>> | undefined;
  for (let i = 0; i < REPEAT; i++) {
    const [result, ms] = await timed(() => compute.selection.run(call.id, {}, noTrail));
    commit.push(ms);
    outcome = result;
    // back to where it was, for the next repeat
    await db.run('DELETE FROM compute_allocations WHERE call_id = ?', [call.id]);
    await db.run(
      "UPDATE compute_applications SET status = 'submitted', rank = NULL, score_centipoints = NULL, decided_at = NULL, decision_reason = NULL WHERE call_id = ?",
      [call.id],
    );
  }
  const count = (d: string) => outcome!.decisions.filter((x) => x.decision === d).length;
  log(
    `selection run, committed: median ${median(commit).toFixed(1)} ms (max ${Math.max(...commit).toFixed(1)}): ` +
      `${count('selected')} selected, ${count('waitlisted')} waitlisted, ${count('rejected')} rejected`,
  );
  process.stdout.write(
    `${JSON.stringify({
      engine: ENGINE,
      applications: APPLICATIONS,
      poolGpus: POOL_GPUS,
      demandGpus: demand,
      memoryMedianMs: Number(median(memory).toFixed(1)),
      dryRunMedianMs: Number(median(dry).toFixed(1)),
      commitMedianMs: Number(median(commit).toFixed(1)),
      commitMaxMs: Number(Math.max(...commit).toFixed(1)),
      selected: count('selected'),
      waitlisted: count('waitlisted'),
      rejected: count('rejected'),
    })}\n`,
  );
} finally {
  await db.close();
  await drop();
}
