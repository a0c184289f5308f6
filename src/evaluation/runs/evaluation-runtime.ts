/**
 * The evaluation side of a hub process, assembled once by the composition root: the store, the
 * executor that asks through this process's call layer as the evaluation account, the queue runs go
 * to (in-process, or BullMQ with REDIS_URL), and the latest scores the catalogue shows.
 */
import type { AuditLog } from '../../audit/audit-log.ts';
import type { CallLayer } from '../../calls/call-layer.ts';
import type { Config } from '../../config.ts';
import type { Logger } from '../../observability/logger.ts';
import type { Database } from '../../storage/database.ts';
import { BullJobs } from './bullmq-jobs.ts';
import { EvaluationAccount } from './evaluation-account.ts';
import { EvaluationService } from './evaluation-service.ts';
import type { EvaluationJobs } from './jobs.ts';
import { LatestScores } from './latest-scores.ts';
import { LocalJobs } from './local-jobs.ts';
import { CallLayerAsker, type ModelAsker } from './model-asker.ts';
import { RunExecutor } from './run-executor.ts';
import type { RunRecord } from './run-records.ts';
import { RunStore } from './run-store.ts';

export interface Evaluation {
  service: EvaluationService;
  store: RunStore;
  executor: RunExecutor;
  /** What the executor asks through: this process's call layer, as the evaluation account. */
  asker(): Promise<ModelAsker>;
  /** The model name of the product `model` means for the evaluation account; null when none. */
  product(model: string): Promise<string | null>;
  scores: LatestScores;
  /** Where runs created here go: this process's queue, or BullMQ. */
  jobs: EvaluationJobs;
  /** A run finished in this process: the catalogue's scores are read again. */
  finished(run: RunRecord): void;
  /** A serving hub takes up the runs its own queue left unfinished (it stopped or was killed). */
  resumeQueue(): Promise<void>;
  close(): Promise<void>;
}

export async function openEvaluation(
  config: Config,
  deps: { db: Database; auditLog: AuditLog; calls: CallLayer; logger: Logger },
  /** false: a CLI run or worker, which serves no catalogue — its scores are neither read nor polled. */
  serving = true,
): Promise<Evaluation> {
  const { db, auditLog, calls, logger } = deps;
  const logError = (error: unknown) => logger.error({ err: error }, 'evaluation background task failed');
  const store = new RunStore(db);
  const account = new EvaluationAccount(db, auditLog);
  const asker = async (): Promise<ModelAsker> => {
    const caller = await account.caller();
    return new CallLayerAsker(calls, () => caller);
  };
  const executor = new RunExecutor(
    store,
    asker,
    { leaseMs: config.evalLeaseMs, retries: config.evalRetries, retryBaseMs: config.evalRetryBaseMs },
    logger,
  );
  const scores = new LatestScores(store, logError);
  if (serving) {
    await scores.refresh();
    scores.start();
  }
  const finished = (run: RunRecord) => {
    logger.info(
      { runId: run.id, model: run.model, suite: run.suite.name, status: run.status },
      'evaluation run finished',
    );
    if (serving) scores.refresh().catch(logError);
  };
  const jobs: EvaluationJobs =
    config.redisUrl === undefined
      ? new LocalJobs(store, executor, logger, finished)
      : await BullJobs.open({
          redisUrl: config.redisUrl,
          redisPrefix: config.redisPrefix,
          leaseMs: config.evalLeaseMs,
        });
  const service = new EvaluationService(
    db,
    store,
    account,
    (caller, model) => calls.resolve(caller, model),
    config.evalConcurrency,
  );
  return {
    service,
    store,
    executor,
    asker,
    async product(model) {
      return calls.resolve(await account.caller(), model)?.model ?? null;
    },
    scores,
    jobs,
    finished,
    async resumeQueue() {
      if (!(jobs instanceof LocalJobs)) return;
      const resumed = await jobs.resume();
      if (resumed > 0) logger.info({ runs: resumed }, 'unfinished evaluation runs resumed');
    },
    async close() {
      scores.stop();
      await jobs.close();
    },
  };
}
