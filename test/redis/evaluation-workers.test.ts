import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type FakeOpenAI, type RecordedRequest, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import { generatedSuite } from '../helpers/eval-suite.ts';
import { seedCatalog, startTestHub, type TestHub } from '../helpers/hub.ts';
import { dropRedisPrefix, testRedisPrefix } from '../helpers/redis.ts';

const BIN = fileURLToPath(new URL('../../bin/kaihub.mjs', import.meta.url));
const REDIS = process.env.KAIHUB_TEST_REDIS_URL;
const SKIP =
  REDIS === undefined
    ? 'needs Redis: set KAIHUB_TEST_REDIS_URL (npm test does when Redis listens on 127.0.0.1:6379)'
    : false;

interface WorkerProcess {
  child: ChildProcess;
  stderr(): string;
  kill9(): Promise<void>;
  stop(): Promise<void>;
}

/** `kaihub eval worker` in its own process, resolved once it says it is ready. */
async function spawnWorker(env: NodeJS.ProcessEnv): Promise<WorkerProcess> {
  const child = spawn(process.execPath, [BIN, 'eval', 'worker'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      if (stderr.includes('ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`worker exited with ${code}:\n${stderr}`)));
    setTimeout(() => reject(new Error(`worker not ready in 30 s:\n${stderr}`)), 30_000).unref();
  });
  return {
    child,
    stderr: () => stderr,
    async kill9() {
      child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

describe('evaluation runs as BullMQ jobs served by kaihub eval worker processes', { skip: SKIP }, () => {
  const suite = generatedSuite(60, 'bullmq-mc');
  const prefix = testRedisPrefix();
  const workers: WorkerProcess[] = [];
  let fake: FakeOpenAI | undefined;
  let t: TestHub | undefined;
  after(async () => {
    for (const w of workers) await w.stop();
    await t?.close();
    await fake?.close();
    if (REDIS !== undefined) await dropRedisPrefix(prefix);
  });

  async function waitForRun(id: string, timeoutMs = 60_000): Promise<any> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await t!.admin('GET', `/evaluation/runs/${id}`);
      if (r.body.status !== 'queued' && r.body.status !== 'running') return r.body;
      assert.ok(
        Date.now() < deadline,
        `run ${id} still ${r.body.status}: ${JSON.stringify(r.body.progress)}`,
      );
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  test('a worker killed (-9) halfway: another takes its job, asks no answered item again, and the scores are those of an uninterrupted run', async () => {
    fake = await startFakeOpenAI({ apiKey: 'upstream-secret', replyFor: (m) => suite.reply(m) });
    const shared = {
      REDIS_URL: REDIS!,
      KAIHUB_REDIS_PREFIX: prefix,
      // a dead worker's job lock and item claims lapse after 1.5 s
      KAIHUB_EVAL_LEASE_MS: '1500',
      KAIHUB_REDIS_TIMEOUT_MS: '2000',
    };
    t = await startTestHub(shared);
    await seedCatalog(t, fake.url);
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      KAIHUB_DATABASE: t.database.location,
      KAIHUB_DATA_DIR: t.database.dataDir,
      KAIHUB_SECRET_KEY: t.secretKey,
      KAIHUB_CATALOG_SEED: 'none',
      KAIHUB_LOG_LEVEL: 'warn',
      ...shared,
    };
    const chats = () => fake!.requests.filter((r) => r.path === '/v1/chat/completions');
    const answered = (requests: RecordedRequest[]) => requests.filter((r) => r.status === 200);
    const body = {
      model: 'hcx-test',
      concurrency: 4,
      resume: false,
      suite: {
        name: 'bullmq-mc',
        data: {
          format: 'kaihub-mc',
          content: (await import('node:fs')).readFileSync(`${suite.dir}/items.jsonl`, 'utf8'),
        },
      },
    };

    const first = await spawnWorker(env);
    workers.push(first);

    // an uninterrupted run, for reference: the hub only queues it, the worker asks
    const whole = await t.admin('POST', '/evaluation/runs', body);
    assert.equal(whole.status, 201, JSON.stringify(whole.body));
    assert.equal(whole.body.executor, 'bullmq');
    const reference = await waitForRun(whole.body.id);
    assert.equal(reference.status, 'completed');
    assert.deepEqual(
      [reference.result.overall.correct, reference.result.overall.wrong, reference.result.overall.unparsed],
      [20, 20, 20],
    );
    assert.equal(answered(chats()).length, 60);

    // the same suite as a new run; the worker is killed once a third is answered
    fake.reset();
    fake.setBehavior('slow:100');
    const killed = await t.admin('POST', '/evaluation/runs', body);
    assert.equal(killed.status, 201, JSON.stringify(killed.body));
    const runId = killed.body.id as string;
    await fake.waitForRequests(20, 60_000);
    fake.setBehavior('hang');
    const deadline = Date.now() + 20_000;
    for (;;) {
      const given = answered(chats()).length;
      const settling = chats().some((r) => r.status === undefined && !r.behavior.includes('hang'));
      const stored = await t.hub.db.get<{ n: number | string }>(
        `SELECT COUNT(*) AS n FROM evaluation_run_items WHERE run_id = ? AND status = 'done'`,
        [runId],
      );
      if (!settling && Number(stored?.n) === given && chats().some((r) => r.behavior.includes('hang'))) break;
      assert.ok(Date.now() < deadline, `stored ${stored?.n}, answered ${given}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const answeredBeforeKill = answered(chats()).length;
    assert.ok(answeredBeforeKill >= 20 && answeredBeforeKill < 60, String(answeredBeforeKill));
    await first.kill9();

    // another worker: BullMQ hands it the stalled job; it asks only what was not answered
    fake.setBehavior('ok');
    workers.push(await spawnWorker(env));
    const run = await waitForRun(runId);
    assert.equal(run.status, 'completed');
    assert.deepEqual(run.result.overall, reference.result.overall);
    assert.deepEqual(run.result.categories, reference.result.categories);

    const perItem = new Map<number, number>();
    for (const r of answered(chats())) {
      const i = suite.itemOf((r.body as { messages: unknown[] }).messages)!;
      perItem.set(i, (perItem.get(i) ?? 0) + 1);
    }
    assert.equal(perItem.size, 60);
    for (const [i, n] of perItem) assert.equal(n, 1, `item ${i} answered ${n} times`);

    // the workers' calls are the evaluation account's usage, in the same database (on SQLite each
    // process's journal file is applied within moments, the dead worker's by a live process)
    let usage: any;
    for (let i = 0; i < 100; i++) {
      usage = (await t.admin('GET', '/usage?organizationId=org_evaluation')).body;
      if (usage.totals.requests >= 120) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.ok(usage.totals.requests >= 120, JSON.stringify(usage.totals));
  });
});
