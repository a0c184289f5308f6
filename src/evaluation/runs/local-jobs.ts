/**
 * Runs as jobs in one process: a FIFO served by this process's executor, a few runs at a time. What it
 * had not finished when the process stopped is taken up again at the next start (`resume`), from the
 * per-item cache: answered items are not asked again.
 */
import type { Logger } from '../../observability/logger.ts';
import type { EvaluationJobs } from './jobs.ts';
import type { RunExecutor } from './run-executor.ts';
import type { RunRecord } from './run-records.ts';
import type { RunStore } from './run-store.ts';

export class LocalJobs implements EvaluationJobs {
  readonly kind = 'hub' as const;
  private readonly waiting: string[] = [];
  private readonly active = new Map<string, Promise<void>>();
  private readonly stopping = new AbortController();

  constructor(
    private readonly store: RunStore,
    private readonly executor: RunExecutor,
    private readonly logger: Logger,
    private readonly onFinished: (run: RunRecord) => void,
    /** Runs worked on at once; each asks up to its own concurrency. */
    private readonly maxRuns = 2,
  ) {}

  async enqueue(run: { id: string }): Promise<void> {
    if (this.stopping.signal.aborted) return;
    if (this.active.has(run.id) || this.waiting.includes(run.id)) return;
    this.waiting.push(run.id);
    this.next();
  }

  /** Runs of this queue a stopped (or killed) hub left unfinished. */
  async resume(): Promise<number> {
    const runs = await this.store.unfinished('hub');
    for (const run of runs) await this.enqueue(run);
    return runs.length;
  }

  private next(): void {
    while (this.active.size < this.maxRuns && this.waiting.length > 0) {
      const runId = this.waiting.shift()!;
      const work = this.work(runId).finally(() => {
        this.active.delete(runId);
        this.next();
      });
      this.active.set(runId, work);
    }
  }

  private async work(runId: string): Promise<void> {
    try {
      const run = await this.store.get(runId);
      if (!run) return;
      const finished = await this.executor.work(runId, {
        concurrency: run.concurrency,
        signal: this.stopping.signal,
      });
      if (finished) this.onFinished(finished);
    } catch (error) {
      this.logger.error({ err: error, runId }, 'evaluation run failed');
      await this.store.failRun(runId, String((error as Error)?.message ?? error), Date.now()).catch(() => {});
    }
  }

  /** Stops taking items; what is being asked is answered and written first. */
  async close(): Promise<void> {
    this.stopping.abort();
    this.waiting.length = 0;
    await Promise.allSettled(this.active.values());
  }
}
