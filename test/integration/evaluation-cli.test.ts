import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type FakeOpenAI, type RecordedRequest, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import { runKaihub } from '../helpers/cli.ts';
import { generatedSuite } from '../helpers/eval-suite.ts';
import { seedCatalog, startTestHub, type TestHub } from '../helpers/hub.ts';
import { spawnHub } from '../helpers/hub-process.ts';

const BIN = fileURLToPath(new URL('../../bin/kaihub.mjs', import.meta.url));
const FIXTURES = fileURLToPath(new URL('../fixtures/eval/', import.meta.url));

/**
 * `kaihub eval run` as an operator runs it: a child process working in-process against the hub's
 * database (no hub needed), killed with SIGKILL halfway in one test.
 */
describe('kaihub eval (CLI, in-process against the configured database)', () => {
  const suite = generatedSuite(60);
  let fake: FakeOpenAI;
  let t: TestHub;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    fake = await startFakeOpenAI({ apiKey: 'upstream-secret', replyFor: (m) => suite.reply(m) });
    t = await startTestHub();
    await seedCatalog(t, fake.url);
    env = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      KAIHUB_DATABASE: t.database.location,
      KAIHUB_DATA_DIR: t.database.dataDir,
      KAIHUB_SECRET_KEY: t.secretKey,
      KAIHUB_CATALOG_SEED: 'none',
      KAIHUB_LOG_LEVEL: 'warn',
      // a killed run's claims lapse after a second, so the resumed run need not wait long
      KAIHUB_EVAL_LEASE_MS: '1000',
    };
  });
  after(async () => {
    await t?.close();
    await fake?.close();
  });

  const chats = () => fake.requests.filter((r) => r.path === '/v1/chat/completions');
  const answered = (requests: RecordedRequest[]) => requests.filter((r) => r.status === 200);

  /** Waits until every answer the fake gave is written in the run's items, and a request hangs. */
  async function answersStored(runId: string): Promise<void> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const given = answered(chats()).length;
      const settling = chats().some((r) => r.status === undefined && !r.behavior.includes('hang'));
      const stored = await t.hub.db.get<{ n: number | string }>(
        `SELECT COUNT(*) AS n FROM evaluation_run_items WHERE run_id = ? AND status = 'done'`,
        [runId],
      );
      if (!settling && Number(stored?.n) === given && chats().some((r) => r.behavior.includes('hang')))
        return;
      assert.ok(Date.now() < deadline, `stored ${stored?.n}, answered ${given}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Each of the suite's items was answered by the fake exactly once. */
  function answeredOnce(): void {
    const perItem = new Map<number, number>();
    for (const r of answered(chats())) {
      const i = suite.itemOf((r.body as { messages: unknown[] }).messages)!;
      perItem.set(i, (perItem.get(i) ?? 0) + 1);
    }
    assert.equal(perItem.size, suite.items);
    for (const [i, n] of perItem) assert.equal(n, 1, `item ${i} answered ${n} times`);
  }

  test('run --json prints overall and per-category scores, intervals and the unparsed count; progress on stderr; runs list and get', async () => {
    fake.reset();
    const r = await runKaihub(
      ['eval', 'run', '--suite', `${FIXTURES}kmmlu.suite.yaml`, '--model', 'hcx-test', '--json'],
      env,
    );
    // no reply was set for these prompts: the echo names no choice, so every answer is unparsed
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout);
    assert.equal(result.status, 'completed');
    assert.equal(result.suite.name, 'kmmlu-sample');
    assert.match(result.suite.hash, /^[0-9a-f]{64}$/);
    assert.deepEqual([result.overall.n, result.overall.correct, result.unparsed], [10, 0, 10]);
    assert.deepEqual(Object.keys(result.categories), ['Arithmetic', 'Geography']);
    assert.equal(result.manifest.seed, 7);
    assert.match(r.stderr, /시작 \/ starting evr_/);
    assert.match(r.stderr, /10\/10 100% · [\d.]+ items\/s · ETA/);
    assert.equal(chats().length, 10);

    const list = await runKaihub(['eval', 'runs', 'list'], env);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, new RegExp(`${result.runId}\\s+kmmlu-sample\\s+hcx-test\\s+completed\\s+10`));
    const get = await runKaihub(['eval', 'runs', 'get', result.runId, '--json'], env);
    assert.equal(JSON.parse(get.stdout).overall.unparsed, 10);
    const table = await runKaihub(['eval', 'runs', 'get', result.runId], env);
    assert.match(table.stdout, /파싱 실패 unparsed/);
    assert.match(table.stdout, /전체 overall\s+10\s+0\s+0\s+10\s+0/);
  });

  test('a malformed data file: exit 1 naming the line and field, before anything is asked', async () => {
    fake.reset();
    const dir = generatedSuite(1).dir;
    const { writeFileSync } = await import('node:fs');
    writeFileSync(
      `${dir}/bad.yaml`,
      `name: bad\ndata:\n  file: ${FIXTURES}malformed/kmmlu-bad-answer.csv\n  format: kmmlu\n`,
    );
    const r = await runKaihub(['eval', 'run', '--suite', `${dir}/bad.yaml`, '--model', 'hcx-test'], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /kmmlu-bad-answer\.csv 4행 필드 "answer".*line 4, field "answer"/);
    assert.equal(chats().length, 0);
    const model = await runKaihub(['eval', 'run', '--suite', suite.path, '--model', 'nope'], env);
    assert.equal(model.code, 1);
    assert.match(model.stderr, /model: .*nope/);
  });

  test('kill -9 halfway: the resumed run asks no answered item again and ends with the scores of an uninterrupted run', async () => {
    // the uninterrupted run, for reference
    fake.reset();
    const whole = await runKaihub(
      ['eval', 'run', '--suite', suite.path, '--model', 'hcx-test', '--json'],
      env,
    );
    assert.equal(whole.code, 0, whole.stderr);
    const reference = JSON.parse(whole.stdout);
    assert.equal(answered(chats()).length, 60);
    // 20 right, 20 wrong, 20 unparsed by construction
    assert.deepEqual(
      [reference.overall.correct, reference.overall.wrong, reference.overall.unparsed],
      [20, 20, 20],
    );

    // the same suite again, as a new run, killed once a third of it is answered
    fake.reset();
    fake.setBehavior('slow:100');
    const child = spawn(
      process.execPath,
      [BIN, 'eval', 'run', '--suite', suite.path, '--model', 'hcx-test', '--new', '--concurrency', '4'],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    await fake.waitForRequests(20, 60_000);
    // from now on the fake never answers: what was asked after this is asked, not answered
    fake.setBehavior('hang');
    const runId = /starting (evr_[A-Za-z0-9_-]+)/.exec(stderr)?.[1];
    assert.ok(runId, stderr);
    // every answer the fake gave is in the run's items before the kill
    await answersStored(runId);
    const answeredBeforeKill = answered(chats()).length;
    assert.ok(answeredBeforeKill >= 20 && answeredBeforeKill < 60, String(answeredBeforeKill));
    child.kill('SIGKILL');
    await exited;

    // the same command again resumes the killed run
    fake.setBehavior('ok');
    const resumed = await runKaihub(
      ['eval', 'run', '--suite', suite.path, '--model', 'hcx-test', '--json'],
      env,
    );
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, new RegExp(`이어서 / resuming ${runId}`));
    const result = JSON.parse(resumed.stdout);
    assert.equal(result.runId, runId);
    assert.deepEqual(result.overall, reference.overall);
    assert.deepEqual(result.categories, reference.categories);

    // no item the fake answered was asked again: each of the 60 answered exactly once
    answeredOnce();
    // what was asked again is exactly what had been asked and left hanging at the kill
    const hung = chats().filter((r) => r.behavior.includes('hang')).length;
    assert.equal(chats().length, 60 + hung);
  });

  test("the hub's in-process queue: a hub killed (-9) halfway takes its run up again at the next start", async () => {
    fake.reset();
    fake.setBehavior('slow:100');
    const hubEnv = {
      KAIHUB_DATABASE: t.database.location,
      KAIHUB_DATA_DIR: t.database.dataDir,
      KAIHUB_EVAL_LEASE_MS: '1000',
    };
    const first = await spawnHub(hubEnv, t.secretKey);
    const created = await first.admin('POST', '/evaluation/runs', {
      model: 'hcx-test',
      concurrency: 4,
      resume: false,
      suite: {
        name: 'hub-queue',
        data: { format: 'kaihub-mc', content: readFileSync(`${suite.dir}/items.jsonl`, 'utf8') },
      },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.executor, 'hub');
    const runId = created.body.id as string;
    await fake.waitForRequests(20, 60_000);
    fake.setBehavior('hang');
    await answersStored(runId);
    await first.kill9();

    fake.setBehavior('ok');
    const second = await spawnHub(hubEnv, t.secretKey);
    try {
      const deadline = Date.now() + 60_000;
      let run: any;
      for (;;) {
        run = (await second.admin('GET', `/evaluation/runs/${runId}`)).body;
        if (run.status !== 'running' && run.status !== 'queued') break;
        assert.ok(Date.now() < deadline, JSON.stringify(run.progress));
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.equal(run.status, 'completed');
      assert.deepEqual(
        [run.result.overall.correct, run.result.overall.wrong, run.result.overall.unparsed],
        [20, 20, 20],
      );
      answeredOnce();
    } finally {
      await second.stop();
    }
  });
});
