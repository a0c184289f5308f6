/**
 * `kaihub eval run | worker | runs`: evaluation from the command line. These commands run in-process
 * against the hub's configured database (the same KAIHUB_DATABASE, KAIHUB_SECRET_KEY and REDIS_URL as
 * `kaihub start`), with no hub needed: a run calls products through this process's own call layer —
 * the same resolve, admission, routing and metering as the hub's — as the evaluation account.
 * docs/evaluation.md says why.
 */
import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { AuditLog } from '../audit/audit-log.ts';
import { loadConfig } from '../config.ts';
import { ValidationError } from '../errors.ts';
import type { RunView } from '../evaluation/runs/evaluation-service.ts';
import type { RunStatus } from '../evaluation/runs/run-records.ts';
import { RunStore } from '../evaluation/runs/run-store.ts';
import type { ScoreSummary } from '../evaluation/scoring/aggregate.ts';
import { loadSuiteFile } from '../evaluation/suites/suite-load.ts';
import { createLogger } from '../observability/logger.ts';
import { openDatabase } from '../storage/database.ts';
import { migrate } from '../storage/migrator.ts';
import { ProgressBar } from './progress-bar.ts';
import { renderTable } from './table.ts';

export const EVAL_USAGE = `kaihub eval — 평가 / evaluation (허브 없이, 설정된 데이터베이스에 직접 / in-process, against the configured database)

  kaihub eval run --suite <file> --model <model> [--concurrency N] [--json] [--new] [--local] [--private]
        스위트를 실행하고 진행률(stderr)과 결과를 출력합니다. 같은 명령을 다시 실행하면 중단된 실행을 이어서 합니다.
        Runs a suite; progress on stderr, the result on stdout (--json: overall and per-category scores,
        intervals, unparsed count). Running the same command again resumes an unfinished run (--new: start over).
        --private: 점수를 카탈로그에 보이지 않습니다(차수용 실행) / the score never shows in the catalogue (a run for a round).
        REDIS_URL이 있으면 BullMQ에 넣고 작업자(kaihub eval worker)를 기다립니다(--local: 이 프로세스에서 실행).
        With REDIS_URL the run goes to BullMQ for kaihub eval worker processes (--local: run it here).
  kaihub eval worker [--concurrency N] [--parts N]
        REDIS_URL의 평가 작업을 처리합니다 / serves evaluation jobs from REDIS_URL's BullMQ queue
  kaihub eval runs list [--model M] [--suite S] [--status S] [--limit N] [--json]
  kaihub eval runs get <runId> [--json]

  종료 코드 / exit codes: 0 완료 completed, 3 일부 항목 실패 incomplete (다시 실행하면 재시도 / rerun retries them), 1 오류 error
`;

function whoRuns(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return 'cli';
  }
}

interface Output {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream & { isTTY?: boolean };
}

const fixed = (n: number | null | undefined, digits = 4) =>
  n === null || n === undefined ? '' : n.toFixed(digits);

/** What `--json` prints: the result, for scripts. */
export function runSummary(run: RunView) {
  return {
    runId: run.id,
    status: run.status,
    model: run.model,
    suite: run.suite,
    private: run.private,
    metric: run.result?.metric ?? null,
    range: run.result?.range ?? null,
    overall: run.result?.overall ?? null,
    categories: run.result?.categories ?? {},
    unparsed: run.result?.overall.unparsed ?? 0,
    failed: run.result?.overall.failed ?? run.progress.failed,
    progress: run.progress,
    manifest: run.manifest,
    createdAt: run.createdAt,
    finishedAt: run.finishedAt,
  };
}

function resultTable(run: RunView): string {
  const result = run.result;
  const head = `평가 결과 / result: ${run.suite.name} · ${run.model} · ${run.id} · ${run.status}\n`;
  if (result === null) return head;
  const rows: { name: string; s: ScoreSummary }[] = [
    { name: '전체 overall', s: result.overall },
    ...Object.entries(result.categories).map(([name, s]) => ({ name, s })),
  ];
  const accuracy = result.metric === 'accuracy';
  const table = renderTable(
    [
      { header: '범주 category', value: (r) => r.name },
      { header: 'n', value: (r) => r.s.n, align: 'right' },
      ...(accuracy
        ? [
            {
              header: '정답 correct',
              value: (r: (typeof rows)[number]) => r.s.correct,
              align: 'right' as const,
            },
            { header: '오답 wrong', value: (r: (typeof rows)[number]) => r.s.wrong, align: 'right' as const },
          ]
        : []),
      { header: '파싱 실패 unparsed', value: (r) => r.s.unparsed, align: 'right' },
      { header: '실패 failed', value: (r) => r.s.failed, align: 'right' },
      { header: accuracy ? '정확도 accuracy' : '점수 score', value: (r) => fixed(r.s.score), align: 'right' },
      { header: '표준오차 SE', value: (r) => fixed(r.s.stderr), align: 'right' },
      {
        header: '95% 구간 interval',
        value: (r) => (r.s.interval ? `[${fixed(r.s.interval[0])}, ${fixed(r.s.interval[1])}]` : ''),
      },
    ],
    rows,
  );
  return head + table;
}

async function headlessHub(env: NodeJS.ProcessEnv) {
  const config = loadConfig(env);
  // the hub's log goes to stderr, warnings and worse: stdout is the result's
  const logger = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel, process.stderr);
  const { startHub } = await import('../app.ts');
  const hub = await startHub(config, { listen: false, logger });
  return { config, hub };
}

async function runCommand(args: string[], env: NodeJS.ProcessEnv, io: Output): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      suite: { type: 'string' },
      model: { type: 'string' },
      concurrency: { type: 'string' },
      json: { type: 'boolean' },
      new: { type: 'boolean' },
      local: { type: 'boolean' },
      private: { type: 'boolean' },
    },
  });
  if (!values.suite || !values.model) {
    io.err.write(
      `kaihub eval run: --suite와 --model이 필요합니다 / --suite and --model are required\n\n${EVAL_USAGE}`,
    );
    return 1;
  }
  let concurrency: number | undefined;
  if (values.concurrency !== undefined) {
    concurrency = Number(values.concurrency);
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256) {
      io.err.write('kaihub eval run: --concurrency는 1–256 사이의 정수 / must be an integer 1–256\n');
      return 1;
    }
  }
  // a broken suite is refused before the hub starts
  const suite = loadSuiteFile(values.suite);
  const { config, hub } = await headlessHub(env);
  const evaluation = hub.evaluation;
  const queued = config.redisUrl !== undefined && !values.local;
  const stop = new AbortController();
  const onSignal = () => {
    if (stop.signal.aborted) process.exit(130);
    io.err.write(
      '\n중단합니다. 같은 명령을 다시 실행하면 이어서 합니다 / stopping: run the same command again to resume\n',
    );
    stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const actorId = whoRuns();
    const auditLog = new AuditLog(hub.db);
    const { run, resumed } = await evaluation.service.create(
      {
        suite,
        model: values.model,
        concurrency: concurrency ?? config.evalConcurrency,
        executor: queued ? 'bullmq' : 'cli',
        createdBy: actorId,
        resume: !values.new,
        private: Boolean(values.private),
      },
      (tx, change) =>
        auditLog.record(
          { actorId, source: 'cli', action: 'create', entityType: 'evaluation_run', ...change },
          tx,
        ),
    );
    io.err.write(
      `${resumed ? '이어서 / resuming' : '시작 / starting'} ${run.id}: ${suite.name} (${run.itemCount} items, ` +
        `hash ${suite.hash.slice(0, 12)}) · ${run.model} · concurrency ${run.concurrency}` +
        `${queued ? ' · BullMQ (kaihub eval worker)' : ''}\n`,
    );
    const bar = new ProgressBar(io.err, suite.name);
    if (queued) {
      await evaluation.jobs.enqueue(run);
      await follow(run.id, hub.evaluation.service, bar, stop.signal);
    } else {
      const finished = await evaluation.executor.work(run.id, {
        concurrency: run.concurrency,
        signal: stop.signal,
        onProgress: (p) => bar.update(p),
      });
      if (finished) evaluation.finished(finished);
    }
    bar.end();
    const view = await evaluation.service.view(run.id);
    if (stop.signal.aborted && view.result === null) return 130;
    if (values.json) io.out.write(`${JSON.stringify(runSummary(view), null, 2)}\n`);
    else io.out.write(resultTable(view));
    if (view.status === 'completed') return 0;
    if (view.status === 'incomplete') return 3;
    // another process holds the rest of the items (or finished it first): its result shows when done
    if (view.status === 'running' || view.status === 'queued') return 0;
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await hub.close();
  }
}

/** A run worked on elsewhere (BullMQ workers): its progress read from the database until it ends. */
async function follow(
  runId: string,
  service: { view(id: string): Promise<RunView> },
  bar: ProgressBar,
  signal: AbortSignal,
): Promise<void> {
  const start = await service.view(runId);
  const startDone = start.progress.done + start.progress.failed;
  while (!signal.aborted) {
    const view = await service.view(runId);
    const p = view.progress;
    bar.update({
      total: view.itemCount,
      done: p.done,
      failed: p.failed,
      answeredHere: p.done + p.failed - startDone,
    });
    if (view.status !== 'queued' && view.status !== 'running') return;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

async function workerCommand(args: string[], env: NodeJS.ProcessEnv, io: Output): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: { concurrency: { type: 'string' }, parts: { type: 'string' } },
  });
  const number = (text: string | undefined, name: string) => {
    if (text === undefined) return undefined;
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1 || n > 256) throw ValidationError.of(name, 'an integer 1–256');
    return n;
  };
  const concurrency = number(values.concurrency, '--concurrency');
  const parts = number(values.parts, '--parts');
  const config = loadConfig(env);
  if (config.redisUrl === undefined) {
    io.err.write('kaihub eval worker: REDIS_URL이 필요합니다 / needs REDIS_URL (the BullMQ queue)\n');
    return 1;
  }
  const { hub } = await headlessHub(env);
  const { BullWorker } = await import('../evaluation/runs/bullmq-jobs.ts');
  const worker = await BullWorker.start(
    { redisUrl: config.redisUrl, redisPrefix: config.redisPrefix, leaseMs: config.evalLeaseMs },
    {
      store: hub.evaluation.store,
      executor: hub.evaluation.executor,
      logger: hub.logger,
      onFinished: (run) => hub.evaluation.finished(run),
      ...(concurrency !== undefined && { concurrency }),
      ...(parts !== undefined && { parts }),
    },
  );
  io.err.write(`kaihub eval worker: 대기 중 / ready (${hub.evaluation.executor.workerId})\n`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  io.err.write('kaihub eval worker: 멈추는 중 / stopping\n');
  await worker.close();
  await hub.close();
  return 0;
}

async function runsCommand(args: string[], env: NodeJS.ProcessEnv, io: Output): Promise<number> {
  const [verb, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest,
    strict: true,
    allowPositionals: true,
    options: {
      model: { type: 'string' },
      suite: { type: 'string' },
      status: { type: 'string' },
      limit: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  const config = loadConfig(env);
  const db = await openDatabase(config.database, { lockWaitMs: config.databaseLockWaitMs });
  try {
    await migrate(db);
    const store = new RunStore(db);
    if (verb === 'list') {
      const statuses: readonly RunStatus[] = ['queued', 'running', 'completed', 'incomplete', 'failed'];
      const status = values.status as RunStatus | undefined;
      if (status !== undefined && !statuses.includes(status)) {
        io.err.write(`kaihub eval runs list: --status ${statuses.join(' | ')}\n`);
        return 1;
      }
      const limit = values.limit === undefined ? 50 : Number(values.limit);
      const runs = await store.list({
        model: values.model,
        suite: values.suite,
        status,
        limit: Number.isInteger(limit) && limit > 0 ? Math.min(limit, 500) : 50,
      });
      if (values.json) {
        io.out.write(`${JSON.stringify({ data: runs }, null, 2)}\n`);
        return 0;
      }
      if (runs.length === 0) {
        io.out.write('(없음 / none)\n');
        return 0;
      }
      io.out.write(
        renderTable(
          [
            { header: 'id', value: (r) => r.id },
            { header: 'suite', value: (r) => r.suite.name },
            { header: 'model', value: (r) => r.model },
            { header: 'status', value: (r) => r.status },
            { header: 'items', value: (r) => r.itemCount, align: 'right' },
            { header: 'score', value: (r) => fixed(r.result?.overall.score), align: 'right' },
            { header: 'SE', value: (r) => fixed(r.result?.overall.stderr), align: 'right' },
            { header: 'unparsed', value: (r) => r.result?.overall.unparsed ?? '', align: 'right' },
            { header: 'created', value: (r) => r.createdAt },
          ],
          runs,
        ),
      );
      return 0;
    }
    if (verb === 'get' && positionals.length === 1) {
      const run = await store.get(positionals[0]!);
      if (!run) {
        io.err.write(`kaihub eval runs get: 없음 / no run ${positionals[0]}\n`);
        return 1;
      }
      const { manifestHash: _hash, ...rest } = run;
      const view: RunView = { ...rest, progress: await store.progress(run.id, Date.now()) };
      io.out.write(values.json ? `${JSON.stringify(runSummary(view), null, 2)}\n` : resultTable(view));
      return 0;
    }
    io.err.write(EVAL_USAGE);
    return 1;
  } finally {
    await db.close();
  }
}

export async function runEvalCommand(
  args: string[],
  env: NodeJS.ProcessEnv,
  io: Output = { out: process.stdout, err: process.stderr },
): Promise<number> {
  const [command, ...rest] = args;
  try {
    if (command === 'run') return await runCommand(rest, env, io);
    if (command === 'worker') return await workerCommand(rest, env, io);
    if (command === 'runs') return await runsCommand(rest, env, io);
    (command === undefined || command === 'help' || command === '--help' ? io.out : io.err).write(EVAL_USAGE);
    return command === undefined || command === 'help' || command === '--help' ? 0 : 1;
  } catch (error) {
    // a bad suite or a product that does not exist: one clear message, exit 1
    if (error instanceof ValidationError) {
      io.err.write(`kaihub eval: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}
