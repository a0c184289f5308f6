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
import { type Ask, answerItem } from './answer-item.ts';
import type { Answer, ModelAsker } from './model-asker.ts';
import type { ClaimedItem, RunProgress, RunRecord, RunStore } from './run-store.ts';

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

  constructor(
    private readonly store: RunStore,
    /** The asker for a run's calls: made per run, as the evaluation account's caller is read afresh. */
    private readonly askerForRun: () => Promise<ModelAsker>,
    private readonly settings: ExecutorSettings,
    private readonly logger: Logger,
  ) {}

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
    const inFlight = new Set<Promise<void>>();
    let failure: unknown = null;
    const start = (item: ClaimedItem) => {
      const task = this.answer(run, item, ask).then(
        (status) => {
          progress.pending--;
          if (status === 'done') progress.done++;
          else if (status === 'failed') progress.failed++;
          progress.answeredHere++;
          options.onProgress?.({ ...progress });
        },
        (error: unknown) => {
          failure ??= error;
        },
      );
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
    // claim a few at a time rather than one per finished item: fewer writes, same concurrency
    const batch = Math.max(1, Math.floor(concurrency / 4));
    let exhausted = false;
    try {
      while (!signal?.aborted && failure === null) {
        const free = concurrency - inFlight.size;
        if (free >= batch && (!exhausted || inFlight.size === 0)) {
          const claimed = await this.store.claim(
            runId,
            this.workerId,
            range,
            free,
            this.settings.leaseMs,
            Date.now(),
          );
          for (const item of claimed) start(item);
          exhausted = claimed.length < free;
          if (claimed.length > 0) continue;
        }
        if (inFlight.size > 0) {
          await Promise.race(inFlight);
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
      // what is being asked is answered and written, also when stopping
      await Promise.allSettled(inFlight);
    } finally {
      clearInterval(renew);
      await this.store.releaseClaims(runId, this.workerId).catch(() => {});
    }
    if (failure !== null) throw failure;
    if (signal?.aborted) return null;
    return this.store.finish(runId, Date.now());
  }

  private async answer(run: RunRecord, item: ClaimedItem, ask: Ask): Promise<'done' | 'failed' | 'taken'> {
    const result = await answerItem(item, run.manifest, ask);
    if (result.ok) {
      const written = await this.store.recordAnswer(
        run.id,
        item.seq,
        result.outcome,
        Date.now(),
        item.request.type === 'conversation',
      );
      return written ? 'done' : 'taken';
    }
    await this.store.recordFailure(run.id, item.seq, result.error, result.requestIds);
    return 'failed';
  }

  private async askWithRetries(
    asker: ModelAsker,
    model: string,
    messages: readonly ChatMessage[],
    parameters: CallParameters,
    signal: AbortSignal | undefined,
  ): Promise<Answer> {
    for (let attempt = 0; ; attempt++) {
      const answer = await asker.ask(model, messages, parameters);
      if (answer.ok || !answer.retryable || attempt >= this.settings.retries || signal?.aborted)
        return answer;
      const pause = this.settings.retryBaseMs * 2 ** attempt * (0.5 + Math.random() / 2);
      this.logger.debug(
        { model, status: answer.status, attempt: attempt + 1, pause },
        'evaluation call retried',
      );
      await sleep(pause, undefined, { signal }).catch(() => {});
    }
  }
}
