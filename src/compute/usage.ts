import { z } from 'zod';
import type { AuditTrail } from '../audit/audit-log.ts';
import { formatKrw } from '../billing/money.ts';
import { ConflictError, ValidationError } from '../errors.ts';
import { DAY_MS, dayIndex, dayOfText, dayStartMs, dayText } from '../kst.ts';
import type { Database, SqlExecutor, SqlValue } from '../storage/database.ts';
import { rowBatches } from '../storage/row-batches.ts';
import { parseInput } from '../validation.ts';
import { ALLOCATION_COLUMNS, type AllocationRow, toAllocationRow } from './allocations.ts';
import { type ChargeOutcome, type ChargeTarget, chargeDays } from './charges.ts';
import { recordEvent } from './events.ts';
import type { ComputeLifecycle } from './lifecycle.ts';
import type { PoolService } from './pools.ts';
import type { JobUsage } from './provisioners/provisioner.ts';
import { gpuHoursText } from './units.ts';
import type { Clock } from './values.ts';

const dayInput = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'expected a date, YYYY-MM-DD (KST)');

const ingestInput = z.strictObject({
  /** The KST day to read; default: today so far. */
  day: dayInput.optional(),
});

const reportInput = z.strictObject({
  day: dayInput,
  /** GPU-hours used that day, at most four decimals. */
  gpuHours: z
    .number()
    .min(0)
    .max(1_000_000)
    .refine((h) => Math.abs(h * 10_000 - Math.round(h * 10_000)) < 1e-6, {
      message: 'at most four decimals',
    }),
});

export interface DayUsage {
  allocationId: string;
  gpuSeconds: number;
  gpuHours: string;
  /** Where the scheduler measures utilisation: the GPU-hours the GPUs were busy (Σ utilisation × time). */
  busyGpuHours?: string;
  jobs: number;
}

export interface IngestResult {
  poolId: string;
  day: string;
  /** Up to when the day was read (today: now). */
  readUntil: string;
  jobs: number;
  gpuHours: string;
  allocations: DayUsage[];
  /** Jobs of the hub's accounts that ran outside every allocation (drift, or a limit raised by hand). */
  unattributed: { jobs: number; gpuHours: string };
  charged: { allocationId: string; day: string; gpuHours: string; amountKrw: string }[];
}

const JOB_TUPLE = '(?, ?, ?, ?, ?, ?, ?, ?, ?)';
const JOBS_PER_STATEMENT = 500;

/** Statuses of allocations that may have run jobs. */
const RAN = "('provisioning', 'active', 'ending', 'ended', 'reclaimed')";

const shown = (c: ChargeOutcome) => ({
  allocationId: c.allocationId,
  day: c.day,
  gpuHours: gpuHoursText(c.gpuSeconds),
  amountKrw: formatKrw(c.amountMicroKrw),
});

/**
 * Usage (docs/compute.md "Usage and utilisation"): what each job of the hub's accounts ran, per KST
 * day, read from the scheduler (Slurm's sacct, cut to the day with `-T`; Prometheus on Kubernetes) or,
 * on a manual pool, reported by the compute supplier per allocation and day. Stored per job and per
 * allocation-day; reading a day again replaces it, and what it adds is charged (compute/charges.ts).
 */
export class UsageService {
  constructor(
    private readonly db: Database,
    private readonly pools: PoolService,
    private readonly lifecycle: ComputeLifecycle,
    private readonly clock: Clock,
  ) {}

  /** Reads one day (or today so far) of a pool's usage from its scheduler, stores and charges it. */
  async ingest(poolId: string, input: unknown, trail?: AuditTrail): Promise<IngestResult> {
    const v = parseInput(ingestInput, input);
    const now = this.clock();
    const index = v.day === undefined ? dayIndex(now) : dayOfText(v.day);
    const from = dayStartMs(index);
    const to = Math.min(from + DAY_MS, now);
    if (to <= from) throw ValidationError.of('day', 'has not begun yet (KST)');
    const pool = await this.pools.row(poolId);
    const provisioner = this.lifecycle.provisionerOf(pool);
    if (provisioner.byHand)
      throw new ConflictError(
        'poolId',
        'a manual pool’s usage is reported per allocation by its supplier',
        '수동 풀의 사용량은 공급기업이 배정별로 보고합니다.',
      );
    const accounts = (
      await this.db.all<{ scheduler_account: string }>(
        `SELECT DISTINCT scheduler_account FROM compute_allocations WHERE pool_id = ? AND status IN ${RAN}
           AND starts_at < ? AND COALESCE(ended_at, ends_at) > ?`,
        [poolId, to, from],
      )
    ).map((r) => r.scheduler_account);
    // read before the transaction: the scheduler may take seconds, the database lock must not
    let jobs: JobUsage[];
    try {
      jobs = accounts.length === 0 ? [] : await provisioner.usage(from, to, accounts);
    } catch (error) {
      await recordEvent(
        this.db,
        {
          poolId,
          kind: 'usage_read_failed',
          detail: { day: dayText(index), error: (error as Error).message },
        },
        now,
      );
      throw error;
    }
    return this.store(poolId, dayText(index), to, jobs, trail);
  }

  /**
   * Stores a pool-day's jobs (replacing what an earlier read stored), sums them per allocation and
   * charges what is new, with the pool's allocations of that day locked.
   */
  async store(
    poolId: string,
    day: string,
    readUntil: number,
    jobs: readonly JobUsage[],
    trail?: AuditTrail,
  ): Promise<IngestResult> {
    const from = dayStartMs(dayOfText(day));
    const to = from + DAY_MS;
    const now = this.clock();
    return this.db.transaction(async (tx) => {
      const pool = await this.pools.row(poolId, tx);
      const allocations = (
        await tx.all(
          `SELECT ${ALLOCATION_COLUMNS} FROM compute_allocations l WHERE l.pool_id = ? AND l.status IN ${RAN}
             AND l.starts_at < ? AND COALESCE(l.ended_at, l.ends_at) > ? ORDER BY l.id${this.db.dialect === 'postgres' ? ' FOR UPDATE' : ''}`,
          [poolId, to, from],
        )
      ).map(toAllocationRow);
      const byAccount = new Map<string, AllocationRow[]>();
      for (const a of allocations) byAccount.set(a.account, [...(byAccount.get(a.account) ?? []), a]);
      const sums = new Map<string, { seconds: number; busy: number; jobs: number }>(
        allocations.map((a) => [a.id, { seconds: 0, busy: 0, jobs: 0 }]),
      );
      // where the scheduler measures the GPUs' utilisation, a day without jobs was 0 % busy
      let measured = this.lifecycle.provisionerOf(pool).reportsUtilisation === true;
      let total = 0;
      let unattributedJobs = 0;
      let unattributedSeconds = 0;
      const rows: SqlValue[][] = [];
      await tx.run('DELETE FROM compute_jobs WHERE pool_id = ? AND day = ?', [poolId, day]);
      for (const job of jobs) {
        const owner = byAccount
          .get(job.account)
          ?.find((a) => job.startMs >= Math.min(a.startsAt, from) && job.startMs < (a.endedAt ?? a.endsAt));
        total += job.gpuSeconds;
        if (owner) {
          const s = sums.get(owner.id)!;
          s.seconds += job.gpuSeconds;
          s.jobs += 1;
          if (job.busyGpuSeconds === undefined) measured = false;
          else s.busy += job.busyGpuSeconds;
        } else {
          unattributedJobs += 1;
          unattributedSeconds += job.gpuSeconds;
        }
        rows.push([
          poolId,
          job.jobId,
          day,
          job.account,
          job.user,
          owner?.id ?? null,
          job.gpus,
          job.gpuSeconds,
          job.state,
        ]);
      }
      for (const batch of rowBatches(rows, JOBS_PER_STATEMENT))
        await tx.run(
          `INSERT INTO compute_jobs (pool_id, job_id, day, account, username, allocation_id, gpus, gpu_seconds, state)
           VALUES ${new Array(batch.length).fill(JOB_TUPLE).join(', ')}`,
          batch.flat(),
        );
      const source = pool.provisioner;
      for (const [allocationId, s] of sums)
        await tx.run(
          `INSERT INTO compute_usage_daily (allocation_id, day, gpu_seconds, jobs, source, updated_at, read_until,
             busy_gpu_seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (allocation_id, day) DO UPDATE SET gpu_seconds = excluded.gpu_seconds, jobs = excluded.jobs,
             source = excluded.source, updated_at = excluded.updated_at, read_until = excluded.read_until,
             busy_gpu_seconds = excluded.busy_gpu_seconds`,
          [
            allocationId,
            day,
            s.seconds,
            s.jobs,
            source,
            now,
            Math.min(readUntil, to),
            measured ? s.busy : null,
          ],
        );
      const targets = new Map<string, ChargeTarget>(
        allocations.map((a) => [a.id, chargeTarget(a, pool.supplierId)]),
      );
      const { charged, shrank } = await chargeDays(
        tx,
        this.db.dialect,
        targets,
        allocations.map((a) => ({ allocationId: a.id, day })),
        now,
      );
      for (const s of shrank)
        await recordEvent(
          tx,
          { allocationId: s.allocationId, poolId, kind: 'usage_shrank', detail: shown(s) },
          now,
        );
      if (unattributedJobs > 0)
        await recordEvent(
          tx,
          {
            poolId,
            kind: 'usage_unattributed',
            detail: { day, jobs: unattributedJobs, gpuSeconds: unattributedSeconds },
          },
          now,
        );
      const result: IngestResult = {
        poolId,
        day,
        readUntil: new Date(readUntil).toISOString(),
        jobs: jobs.length,
        gpuHours: gpuHoursText(total),
        allocations: [...sums].map(([allocationId, s]) => ({
          allocationId,
          gpuSeconds: s.seconds,
          gpuHours: gpuHoursText(s.seconds),
          ...(measured && { busyGpuHours: gpuHoursText(s.busy) }),
          jobs: s.jobs,
        })),
        unattributed: { jobs: unattributedJobs, gpuHours: gpuHoursText(unattributedSeconds) },
        charged: charged.map(shown),
      };
      if (trail)
        await trail(tx, {
          entityId: poolId,
          after: { ...result, allocations: result.allocations.length, charged: result.charged.length },
        });
      return result;
    });
  }

  /** A manual pool's supplier reports an allocation's GPU-hours of a day. */
  async report(allocationId: string, input: unknown, trail: AuditTrail): Promise<DayUsage & { day: string }> {
    const v = parseInput(reportInput, input);
    const now = this.clock();
    const index = dayOfText(v.day);
    if (index > dayIndex(now)) throw ValidationError.of('day', 'is in the future (KST)');
    return this.db.transaction(async (tx) => {
      const a = await lockedAllocation(tx, this.db.dialect, allocationId);
      const pool = await this.pools.row(a.poolId, tx);
      if (pool.provisioner !== 'manual')
        throw new ConflictError(
          'allocationId',
          'usage on this pool is read from its scheduler',
          '스케줄러에서 읽는 풀입니다.',
        );
      const from = dayStartMs(index);
      if (
        !['active', 'ending', 'ended', 'reclaimed'].includes(a.status) ||
        from < dayStartMs(dayIndex(a.startsAt)) ||
        from >= (a.endedAt ?? a.endsAt)
      )
        throw ValidationError.of('day', 'the allocation did not hold GPUs that day');
      const seconds = Math.round(v.gpuHours * 3600);
      if (seconds > a.gpus * 86_400)
        throw ValidationError.of(
          'gpuHours',
          `at most ${a.gpus * 24} (the allocation's ${a.gpus} GPUs all day)`,
        );
      const before = await tx.get(
        'SELECT gpu_seconds, jobs FROM compute_usage_daily WHERE allocation_id = ? AND day = ?',
        [allocationId, v.day],
      );
      await tx.run(
        `INSERT INTO compute_usage_daily (allocation_id, day, gpu_seconds, jobs, source, updated_at) VALUES (?, ?, ?, 0, 'manual', ?)
         ON CONFLICT (allocation_id, day) DO UPDATE SET gpu_seconds = excluded.gpu_seconds, source = excluded.source,
           updated_at = excluded.updated_at`,
        [allocationId, v.day, seconds, now],
      );
      const { shrank } = await chargeDays(
        tx,
        this.db.dialect,
        new Map([[a.id, chargeTarget(a, pool.supplierId)]]),
        [{ allocationId, day: v.day }],
        now,
      );
      for (const s of shrank)
        await recordEvent(
          tx,
          { allocationId, poolId: a.poolId, kind: 'usage_shrank', detail: shown(s) },
          now,
        );
      const after = {
        allocationId,
        day: v.day,
        gpuSeconds: seconds,
        gpuHours: gpuHoursText(seconds),
        jobs: 0,
      };
      await trail(tx, { entityId: allocationId, before, after });
      return after;
    });
  }

  /** An allocation's usage per day, what was charged for it, and its totals. */
  async ofAllocation(allocationId: string) {
    const days = await this.db.all<{
      day: string;
      s: string;
      b: string | null;
      jobs: number;
      source: string;
      read_until: number | string | null;
    }>(
      `SELECT day, CAST(gpu_seconds AS TEXT) AS s, CAST(busy_gpu_seconds AS TEXT) AS b, jobs, source, read_until
       FROM compute_usage_daily WHERE allocation_id = ? ORDER BY day`,
      [allocationId],
    );
    const charges = await this.db.all<{ day: string; s: string; a: string; p: string; o: string }>(
      `SELECT day, CAST(SUM(gpu_seconds) AS TEXT) AS s, CAST(SUM(amount_micro_krw) AS TEXT) AS a,
         CAST(SUM(programme_micro_krw) AS TEXT) AS p, CAST(SUM(organization_micro_krw) AS TEXT) AS o
       FROM compute_charges WHERE allocation_id = ? GROUP BY day`,
      [allocationId],
    );
    const byDay = new Map(charges.map((c) => [c.day, c]));
    let used = 0n;
    let billedSeconds = 0n;
    let amount = 0n;
    let programme = 0n;
    let organization = 0n;
    for (const c of charges) {
      billedSeconds += BigInt(c.s);
      amount += BigInt(c.a);
      programme += BigInt(c.p);
      organization += BigInt(c.o);
    }
    return {
      allocationId,
      days: days.map((d) => {
        used += BigInt(d.s);
        const c = byDay.get(d.day);
        return {
          day: d.day,
          gpuSeconds: Number(d.s),
          gpuHours: gpuHoursText(BigInt(d.s)),
          busyGpuHours: d.b === null ? null : gpuHoursText(BigInt(d.b)),
          readUntil: d.read_until === null ? null : new Date(Number(d.read_until)).toISOString(),
          jobs: Number(d.jobs),
          source: d.source,
          chargedKrw: formatKrw(BigInt(c?.a ?? '0')),
        };
      }),
      totals: {
        gpuSeconds: Number(used),
        gpuHours: gpuHoursText(used),
        billedGpuSeconds: Number(billedSeconds),
        billedGpuHours: gpuHoursText(billedSeconds),
        chargedKrw: formatKrw(amount),
        programmeKrw: formatKrw(programme),
        organizationKrw: formatKrw(organization),
      },
    };
  }

  /**
   * What the scheduler has counted against an allocation's GPU-hour budget (Slurm: sshare's GrpTRESRaw,
   * whole GPU-minutes since the grant's start); null without a budget or a scheduler that keeps one.
   */
  async schedulerBudget(
    allocationId: string,
  ): Promise<
    { gpuHourBudget: number; usedGpuHours: string; limitGpuMinutes: number | null } | { error: string } | null
  > {
    const a = await this.db.get<{
      pool_id: string;
      scheduler_account: string;
      gpu_hour_budget: number | null;
      status: string;
    }>('SELECT pool_id, scheduler_account, gpu_hour_budget, status FROM compute_allocations WHERE id = ?', [
      allocationId,
    ]);
    if (!a || a.gpu_hour_budget === null || a.status !== 'active') return null;
    const provisioner = this.lifecycle.provisionerOf(await this.pools.row(a.pool_id));
    if (!provisioner.budgetUse) return null;
    try {
      const use = await provisioner.budgetUse(a.scheduler_account);
      if (!use) return null;
      return {
        gpuHourBudget: Number(a.gpu_hour_budget),
        usedGpuHours: gpuHoursText(use.gpuMinutesUsed * 60),
        limitGpuMinutes: use.gpuMinutesLimit,
      };
    } catch (error) {
      // the stored usage still answers; the scheduler's own count is what is missing
      return { error: error instanceof Error ? error.message : String(error) };
    }
  }

  /** The jobs stored for an allocation (newest day first). */
  async jobsOf(allocationId: string, limit = 1000) {
    const rows = await this.db.all<Record<string, unknown>>(
      `SELECT job_id, day, account, username, gpus, CAST(gpu_seconds AS TEXT) AS s, state FROM compute_jobs
       WHERE allocation_id = ? ORDER BY day DESC, job_id LIMIT ${limit}`,
      [allocationId],
    );
    return rows.map((r) => ({
      jobId: r.job_id as string,
      day: r.day as string,
      account: r.account as string,
      user: r.username as string,
      gpus: Number(r.gpus),
      gpuSeconds: Number(r.s),
      state: r.state as string,
    }));
  }
}

export function chargeTarget(a: AllocationRow, supplierId: string): ChargeTarget {
  return {
    allocationId: a.id,
    organizationId: a.organizationId,
    supplierId,
    priceMicroKrwPerGpuHour: a.priceMicroKrwPerGpuHour,
    copayBp: a.copayBp,
    fundingProgrammeId: a.fundingProgrammeId,
  };
}

async function lockedAllocation(tx: SqlExecutor, dialect: string, id: string): Promise<AllocationRow> {
  const row = await tx.get(
    `SELECT ${ALLOCATION_COLUMNS} FROM compute_allocations l WHERE l.id = ?${dialect === 'postgres' ? ' FOR UPDATE' : ''}`,
    [id],
  );
  if (!row) throw ValidationError.of('allocationId', `no allocation ${id}`);
  return toAllocationRow(row);
}
