/**
 * Works on a run: claims items (a few at a time, up to the run's concurrency), asks them through the
 * call layer with retries and jittered backoff on retryable errors, and writes each answer as soon as
 * it is scored. Whoever leaves no item of the run pending writes its result. Several executors — in
 * one process or in many `kaihub eval worker`s — may work on one run at once: the claims keep them
 * from asking the same item.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { NotFoundError } from '../../errors.ts';
import type { Logger } from '../../observability/logger.ts';
import type { ChatMessage } from '../suites/prompts.ts';
import type { CallParameters } from '../suites/suite-spec.ts';
import { type Ask, answerItem, type ItemResult } from './answer-item.ts';
import { ItemWriter } from './item-writer.ts';
import { type Answer, askWithRetries, type ModelAsker } from './model-asker.ts';
import type { ClaimedItem, RunProgress, RunRecord } from './run-records.ts';
import type { RunStore } from './run-store.ts';

export interface ExecutorSettings {
  /** How long a claim lives unless renewed: a dead worker's items wait this long for another. */
  leaseMs: number;
  /** Extra attempts of a call that failed in a way worth retrying (429, 5xx, time-outs). */
  retries: number;
  /** The first pause before a retry; each later one doubles it (jittered). */
  retryBaseMs: number;
}

export interface WorkProgress extends RunProgress {
  total: number;
  /** Items this executor answered (or gave up on) in this call. */
  answeredHere: number;
}

export interface WorkOptions {
  concurrency: number;
  /** Seq range [from, to) of a BullMQ part; the whole run by default. */
  range?: { from: number; to: number };
  signal?: AbortSignal;
  onProgress?: (progress: WorkProgress) => void;
}

function newWorkerId(): string {
  return `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
}

export class RunExecutor {
  readonly workerId = newWorkerId();
  private readonly writer: ItemWriter;

  constructor(
    private readonly store: RunStore,
    /** The asker for a run's calls: made per run, as the evaluation account's caller is read afresh. */
    private readonly askerForRun: () => Promise<ModelAsker>,
    private readonly settings: ExecutorSettings,
    private readonly logger: Logger,
  ) {
    this.writer = new ItemWriter(store);
  }

  /**
   * Asks every item of the range no one else is asking, until none is left; then, if no item of the
   * run is pending, writes its result and returns the finished run (null otherwise, or when stopped).
   */
  async work(runId: string, options: WorkOptions): Promise<RunRecord | null> {
    const run = await this.store.get(runId);
    if (!run) throw new NotFoundError('evaluation run', runId);
    if (run.status === 'completed' || run.status === 'failed') return null;
    const asker = await this.askerForRun();
    const range = options.range ?? { from: 0, to: run.itemCount };
    const signal = options.signal;
    const concurrency = Math.max(1, options.concurrency);
    await this.store.markRunning(runId, Date.now());
    const counts = await this.store.progress(runId, Date.now());
    const progress: WorkProgress = { ...counts, total: run.itemCount, answeredHere: 0 };
    options.onProgress?.({ ...progress });

    const ask: Ask = (model, messages, parameters) =>
      this.askWithRetries(asker, model, messages, parameters, signal);
    // calls in flight hold the concurrency; their writes go on behind them (the item stays claimed
    // until its answer is committed), so a slot is free as soon as its answer is scored
    const inFlight = new Set<Promise<void>>();
    const writes = new Set<Promise<void>>();
    let failure: unknown = null;
    const fail = (error: unknown) => {
      failure ??= error;
    };
    const written = (status: 'done' | 'failed' | 'taken') => {
      progress.pending--;
      if (status === 'done') progress.done++;
      else if (status === 'failed') progress.failed++;
      progress.answeredHere++;
      options.onProgress?.({ ...progress });
    };
    const start = (item: ClaimedItem) => {
      const task = answerItem(item, run.manifest, ask).then((result) => {
        const write = this.record(run, item, result).then(written, fail);
        const trackedWrite = write.finally(() => writes.delete(trackedWrite));
        writes.add(trackedWrite);
      }, fail);
      const tracked = task.finally(() => inFlight.delete(tracked));
      inFlight.add(tracked);
    };
    const renew = setInterval(
      () => {
        this.store
          .renewClaims(runId, this.workerId, this.settings.leaseMs, Date.now())
          .catch((error: unknown) =>
            this.logger.error({ err: error, runId }, 'evaluation claim renewal failed'),
          );
      },
      Math.max(50, Math.floor(this.settings.leaseMs / 3)),
    );
    renew.unref();
    // Claims run ahead of the calls: up to `concurrency` items wait claimed while as many are asked,
    // so a claim's commit (a WAL flush on PostgreSQL) overlaps the calls instead of preceding them.
    // A few at a time, not one per finished item: fewer writes, the same concurrency.
    const batch = Math.max(1, Math.floor(concurrency / 4));
    const ready: ClaimedItem[] = [];
    let claiming: Promise<void> | null = null;
    let exhausted = false;
    const refill = () => {
      const want = 2 * concurrency - inFlight.size - ready.length;
      if (claiming !== null || exhausted || want < batch) return;
      claiming = this.store
        .claim(runId, this.workerId, range, want, this.settings.leaseMs, Date.now())
        .then(
          (claimed) => {
            ready.push(...claimed);
            if (claimed.length < want) exhausted = true;
          },
          (error: unknown) => {
            failure ??= error;
          },
        )
        .finally(() => {
          claiming = null;
        });
    };
    try {
      while (!signal?.aborted && failure === null) {
        // writes slower than answers: wait for them rather than pile answers up in memory
        if (writes.size >= 4 * concurrency) {
          await Promise.race(writes);
          continue;
        }
        while (inFlight.size < concurrency && ready.length > 0) start(ready.shift()!);
        refill();
        if (inFlight.size > 0 || claiming !== null) {
          await Promise.race(claiming === null ? inFlight : [...inFlight, claiming]);
          continue;
        }
        if (ready.length > 0) continue;
        if (writes.size > 0) {
          await Promise.allSettled(writes);
          continue;
        }
        const left = await this.store.progress(runId, Date.now(), range);
        if (left.pending === 0) break;
        // the rest is held by another worker, or by a dead one whose claims have not lapsed yet
        exhausted = false;
        await sleep(Math.min(500, Math.max(20, Math.floor(this.settings.leaseMs / 4))), undefined, {
          signal,
        }).catch(() => {});
      }
      // what is being asked is answered and written, also when stopping; what was claimed but not
      // yet asked is given back below
      await Promise.allSettled(claiming === null ? inFlight : [...inFlight, claiming]);
      await Promise.allSettled(writes);
    } finally {
      clearInterval(renew);
      await this.store.releaseClaims(runId, this.workerId).catch(() => {});
    }
    if (failure !== null) throw failure;
    if (signal?.aborted) return null;
    return this.store.finish(runId, Date.now());
  }

  private async record(
    run: RunRecord,
    item: ClaimedItem,
    result: ItemResult,
  ): Promise<'done' | 'failed' | 'taken'> {
    if (result.ok) {
      const written = await this.writer.write({
        kind: 'answer',
        runId: run.id,
        seq: item.seq,
        outcome: result.outcome,
        conversation: item.request.type === 'conversation',
      });
      return written ? 'done' : 'taken';
    }
    await this.writer.write({
      kind: 'failure',
      runId: run.id,
      seq: item.seq,
      error: result.error,
      requestIds: result.requestIds,
    });
    return 'failed';
  }

  private askWithRetries(
    asker: ModelAsker,
    model: string,
    messages: readonly ChatMessage[],
    parameters: CallParameters,
    signal: AbortSignal | undefined,
  ): Promise<Answer> {
    return askWithRetries(
      asker,
      model,
      messages,
      parameters,
      this.settings,
      signal,
      (answer, attempt, pause) =>
        this.logger.debug({ model, status: answer.status, attempt, pause }, 'evaluation call retried'),
    );
  }
}
