/**
 * Runs as BullMQ jobs (with REDIS_URL): a run is split into parts of consecutive items, one job each,
 * served by any number of `kaihub eval worker` processes. A worker killed mid-part stops renewing its
 * job's lock; BullMQ's stalled-job check hands the job to another worker, whose executor finds the
 * answered items in the database and asks only the rest, once the dead worker's item claims lapse.
 * BullMQ and its Redis client are loaded only here.
 */
import type { Job, Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../../observability/logger.ts';
import type { EvaluationJobs } from './jobs.ts';
import type { RunExecutor } from './run-executor.ts';
import type { RunRecord } from './run-records.ts';
import type { RunStore } from './run-store.ts';

export const EVALUATION_QUEUE = 'evaluation';
/** Items per job: enough to keep a worker busy, small enough that many workers share a run. */
export const PART_SIZE = 200;

export interface BullSettings {
  redisUrl: string;
  /** The hub's Redis key prefix (KAIHUB_REDIS_PREFIX); BullMQ's keys go under `<prefix>bull`. */
  redisPrefix: string;
  /** A job's lock and the stalled check: how soon a dead worker's job goes to another. */
  leaseMs: number;
}

interface PartData {
  runId: string;
  from: number;
  to: number;
}

export function runParts(itemCount: number, size = PART_SIZE): { from: number; to: number }[] {
  const parts: { from: number; to: number }[] = [];
  for (let from = 0; from < itemCount; from += size)
    parts.push({ from, to: Math.min(itemCount, from + size) });
  return parts;
}

async function connect(url: string): Promise<Redis> {
  const { Redis } = await import('ioredis');
  // BullMQ's blocking commands wait as long as they must: no per-command time-out, no retry limit
  return new Redis(url, { maxRetriesPerRequest: null, enableOfflineQueue: true });
}

const prefixOf = (settings: BullSettings) => `${settings.redisPrefix}bull`;

export class BullJobs implements EvaluationJobs {
  readonly kind = 'bullmq' as const;

  private constructor(
    private readonly queue: Queue<PartData>,
    private readonly connection: Redis,
  ) {}

  static async open(settings: BullSettings): Promise<BullJobs> {
    const { Queue } = await import('bullmq');
    const connection = await connect(settings.redisUrl);
    connection.on('error', () => {});
    const queue = new Queue<PartData>(EVALUATION_QUEUE, { connection, prefix: prefixOf(settings) });
    return new BullJobs(queue, connection);
  }

  async enqueue(run: { id: string; itemCount: number }): Promise<void> {
    // a resumed run gets new jobs; duplicates are harmless (claims), lost ones would not be
    const nonce = Date.now().toString(36);
    await this.queue.addBulk(
      runParts(run.itemCount).map((part) => ({
        name: 'run-part',
        data: { runId: run.id, ...part },
        opts: {
          jobId: `${run.id}-${part.from}-${nonce}`,
          attempts: 10,
          backoff: { type: 'exponential', delay: 1000 },
          removeOnComplete: true,
          removeOnFail: 1000,
        },
      })),
    );
  }

  async close(): Promise<void> {
    await this.queue.close();
    await this.connection.quit().catch(() => this.connection.disconnect());
  }
}

/** `kaihub eval worker`: takes parts off the queue and works on them with this process's executor. */
export class BullWorker {
  private constructor(
    private readonly worker: Worker<PartData>,
    private readonly connection: Redis,
    private readonly stopping: AbortController,
  ) {}

  static async start(
    settings: BullSettings,
    deps: {
      store: RunStore;
      executor: RunExecutor;
      logger: Logger;
      onFinished: (run: RunRecord) => void;
      /** Items asked at once per part; default: the run's own concurrency. */
      concurrency?: number;
      /** Parts worked on at once by this process. */
      parts?: number;
    },
  ): Promise<BullWorker> {
    const { Worker } = await import('bullmq');
    const connection = await connect(settings.redisUrl);
    connection.on('error', () => {});
    const stopping = new AbortController();
    const processor = async (job: Job<PartData>) => {
      const { runId, from, to } = job.data;
      const run = await deps.store.get(runId);
      if (!run || run.status === 'completed' || run.status === 'failed') return;
      const finished = await deps.executor.work(runId, {
        range: { from, to },
        concurrency: deps.concurrency ?? run.concurrency,
        signal: stopping.signal,
      });
      if (finished) deps.onFinished(finished);
      // stopped before the part was done: the job goes back for another worker
      if (stopping.signal.aborted) throw new Error('worker stopping before the part was done');
    };
    const worker = new Worker<PartData>(EVALUATION_QUEUE, processor, {
      connection,
      prefix: prefixOf(settings),
      concurrency: deps.parts ?? 1,
      lockDuration: Math.max(1000, settings.leaseMs),
      stalledInterval: Math.max(1000, settings.leaseMs),
      maxStalledCount: 1000,
    });
    worker.on('failed', (job, error) =>
      deps.logger.warn({ runId: job?.data.runId, err: error }, 'evaluation job failed; it will be retried'),
    );
    worker.on('error', (error) => deps.logger.error({ err: error }, 'evaluation worker error'));
    return new BullWorker(worker, connection, stopping);
  }

  async close(): Promise<void> {
    this.stopping.abort();
    await this.worker.close();
    await this.connection.quit().catch(() => this.connection.disconnect());
  }
}
