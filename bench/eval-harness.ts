// The evaluation harness's own cost (issue 14's figure: at most 2 ms per item, 500 items/s or more)
// on 1,000 multiple-choice items against an instant fake model (bench/fake-upstream.mjs in its own
// process, answering "정답: B" at once), side by side with promptfoo on the same items and endpoint.
//
// Arms, each `--rounds` times (the median is reported):
//   bare      — a plain HTTP client (undici's request, keep-alive) posting the 1,000 prompts to the
//               fake, `--concurrency` at a time: what any harness pays for the round trips themselves.
//   call layer — the same 1,000 chats asked through the hub's call layer in this process, as the
//               evaluation account, `--concurrency` at a time, without the harness: what every call
//               costs the hub (resolve, admission, routing, metering, settlement).
//   harness   — RunExecutor.work in this process: claims, the call layer (resolve, admission, routing,
//               metering to the evaluation account, settlement), extraction and one database write
//               per item, on a fresh SQLite database (--postgres: a fresh PostgreSQL database).
//   cli       — `kaihub eval run --local` end to end in a child process (start, migrate, load the
//               suite, run, print), as an operator runs it.
//   promptfoo — `promptfoo eval` on the same 1,000 prompts with a regex assertion, same concurrency,
//               cache off, end to end; and with 1 item, so its start-up can be taken out.
//
// Run: node --import tsx bench/eval-harness.ts [--items=1000] [--concurrency=16] [--rounds=3]
//        [--promptfoo=/tmp/promptfoo/node_modules/.bin/promptfoo] [--postgres]
//      (--postgres: KAIHUB_TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/test; a database
//      of its own, dropped at the end)
// Loopback only; every loop is bounded by its counts.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { Agent, request } from 'undici';
import { startHub } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { loadSuiteFile } from '../src/evaluation/suites/suite-load.ts';
import { createLogger } from '../src/observability/logger.ts';

const { values } = parseArgs({
  options: {
    items: { type: 'string' },
    concurrency: { type: 'string' },
    rounds: { type: 'string' },
    promptfoo: { type: 'string' },
    postgres: { type: 'boolean' },
  },
});
const ITEMS = Number(values.items ?? 1000);
const CONCURRENCY = Number(values.concurrency ?? 16);
const ROUNDS = Number(values.rounds ?? 3);
const PROMPTFOO = values.promptfoo ?? '/tmp/promptfoo/node_modules/.bin/promptfoo';
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ADMIN_TOKEN = `bench-admin-${randomBytes(8).toString('hex')}`;

const log = (text: string) =>
  process.stdout.write(`[eval-harness ${new Date().toISOString().slice(11, 19)}] ${text}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function spawnFake(): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(
    process.execPath,
    [join(ROOT, 'bench/fake-upstream.mjs'), '--port=0', '--content=정답: B'],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const line = buf.split('\n').find((l) => l.includes('"ready"'));
      if (line) resolve({ child, port: JSON.parse(line).port as number });
    });
    child.once('exit', (code) => reject(new Error(`fake upstream exited with ${code}`)));
  });
}

/** 1,000 items in the hub's JSONL; every prompt distinct, every right answer B. */
function writeSuite(dir: string): { path: string; prompts: string[] } {
  const lines: string[] = [];
  for (let i = 0; i < ITEMS; i++) {
    lines.push(
      JSON.stringify({
        id: `q${i}`,
        category: `c${i % 10}`,
        question: `문항 ${i}: ${i} 더하기 1은 얼마입니까?`,
        choices: [String(i), String(i + 1), String(i + 2), String(i + 3)],
        answer: 1,
      }),
    );
  }
  writeFileSync(join(dir, 'items.jsonl'), `${lines.join('\n')}\n`);
  const path = join(dir, 'suite.yaml');
  writeFileSync(
    path,
    'name: bench-mc\ndata:\n  file: items.jsonl\n  format: kaihub-mc\nparameters:\n  max_tokens: 8\n',
  );
  // the same suite cut to its first item: what the command costs before it asks anything
  writeFileSync(
    join(dir, 'one.yaml'),
    'name: bench-one\ndata:\n  file: items.jsonl\n  format: kaihub-mc\nlimit: 1\nparameters:\n  max_tokens: 8\n',
  );
  const suite = loadSuiteFile(path);
  const prompts = suite.prepared.map((p) =>
    p.request.type === 'chat' ? p.request.messages.at(-1)!.content : '',
  );
  return { path, prompts };
}

const agent = new Agent({ keepAliveTimeout: 10_000 });

async function bare(port: number, prompts: string[]): Promise<number> {
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < prompts.length) {
      const prompt = prompts[next++]!;
      const res = await request(`http://127.0.0.1:${port}/v1/chat/completions`, {
        method: 'POST',
        dispatcher: agent,
        headers: { 'content-type': 'application/json', authorization: 'Bearer bench' },
        body: JSON.stringify({
          model: 'fake-model',
          messages: [{ role: 'user', content: prompt }],
          temperature: 0,
          max_tokens: 8,
        }),
      });
      const body = (await res.body.json()) as { choices: { message: { content: string } }[] };
      if (!body.choices[0]!.message.content.includes('B')) throw new Error('unexpected answer');
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return performance.now() - started;
}

const PG_ADMIN = process.env.KAIHUB_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const pgName = `kaihub_bench_${randomBytes(4).toString('hex')}`;
let database = '';

async function createDatabase(dir: string): Promise<void> {
  if (!values.postgres) {
    database = join(dir, 'hub.sqlite');
    return;
  }
  const admin = new pg.Client({ connectionString: PG_ADMIN });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${pgName}`);
  await admin.end();
  const url = new URL(PG_ADMIN);
  url.pathname = `/${pgName}`;
  database = url.toString();
}

async function dropDatabase(): Promise<void> {
  if (!values.postgres) return;
  const admin = new pg.Client({ connectionString: PG_ADMIN });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${pgName} WITH (FORCE)`);
  await admin.end();
}

async function seed(url: string, port: number): Promise<void> {
  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${url}/admin/v1${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (res.status !== 201) throw new Error(`${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as { id: string };
  };
  const supplier = await post('/suppliers', { name: `벤치 공급기업 ${randomBytes(3).toString('hex')}` });
  const product = await post('/products', {
    supplierId: supplier.id,
    model: 'bench-model',
    displayName: 'Bench',
    purposes: ['chat'],
    modality: 'text',
    contextWindow: 32768,
    priceInputPer1M: '1000',
    priceOutputPer1M: '3000',
    residency: 'domestic',
  });
  await post('/deployments', {
    productId: product.id,
    adapter: 'openai-compatible',
    baseUrl: `http://127.0.0.1:${port}/v1`,
    apiKey: 'bench',
    upstreamModel: 'fake-model',
  });
}

function hubEnv(dir: string, secret: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    PORT: '0',
    HOST: '127.0.0.1',
    KAIHUB_DATABASE: database,
    KAIHUB_DATA_DIR: dir,
    KAIHUB_SECRET_KEY: secret,
    KAIHUB_ADMIN_TOKEN: ADMIN_TOKEN,
    KAIHUB_CATALOG_SEED: 'none',
    KAIHUB_LOG_LEVEL: 'warn',
  };
}

function runChild(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  cwd?: string,
): Promise<{ ms: number; out: string; err: string; code: number | null }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.once('error', reject);
    child.once('exit', (code) => resolve({ ms: performance.now() - started, out, err, code }));
  });
}

function promptfooConfig(dir: string, port: number, prompts: string[], name: string): string {
  const config = {
    description: 'kaihub eval-harness bench',
    prompts: ['{{question}}'],
    providers: [
      {
        id: 'openai:chat:fake-model',
        config: { apiBaseUrl: `http://127.0.0.1:${port}/v1`, apiKey: 'bench', temperature: 0, max_tokens: 8 },
      },
    ],
    tests: prompts.map((question) => ({
      vars: { question },
      assert: [{ type: 'regex', value: '정답:\\s*B' }],
    })),
  };
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(config));
  return path;
}

const fake = await spawnFake();
const work = mkdtempSync(join(tmpdir(), 'kaihub-eval-bench-'));
const results: Record<string, unknown> = { items: ITEMS, concurrency: CONCURRENCY, rounds: ROUNDS };
try {
  await createDatabase(work);
  const { path: suitePath, prompts } = writeSuite(work);
  log(
    `fake upstream on :${fake.port}; ${ITEMS} items, concurrency ${CONCURRENCY}, ${ROUNDS} rounds, ${values.postgres ? 'PostgreSQL' : 'SQLite'}`,
  );

  // --- bare: the round trips alone -----------------------------------------------------------------
  await bare(fake.port, prompts);
  const bareMs: number[] = [];
  for (let r = 0; r < ROUNDS; r++) bareMs.push(await bare(fake.port, prompts));
  results.bare = { ms: bareMs, itemsPerSecond: (ITEMS * 1000) / median(bareMs) };
  log(
    `bare: ${bareMs.map((m) => m.toFixed(0)).join(', ')} ms → ${((ITEMS * 1000) / median(bareMs)).toFixed(0)} items/s`,
  );

  // --- harness: RunExecutor.work in this process ---------------------------------------------------
  const secret = randomBytes(32).toString('hex');
  const config = loadConfig(hubEnv(work, secret));
  const hub = await startHub(config, { logger: createLogger('silent') });
  try {
    await seed(hub.url, fake.port);
    const suite = loadSuiteFile(suitePath);
    // the call layer alone: the same chats, no claims, no extraction, no item writes
    const asker = await hub.evaluation.asker();
    const layerMs: number[] = [];
    for (let r = 0; r <= ROUNDS; r++) {
      let next = 0;
      const started = performance.now();
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (next < prompts.length) {
            const prompt = prompts[next++]!;
            const answer = await asker.ask('bench-model', [{ role: 'user', content: prompt }], {
              temperature: 0,
              max_tokens: 8,
            });
            if (!answer.ok) throw new Error(answer.message);
          }
        }),
      );
      if (r > 0) layerMs.push(performance.now() - started);
    }
    results.callLayer = { ms: layerMs, itemsPerSecond: (ITEMS * 1000) / median(layerMs) };
    log(
      `call layer: ${layerMs.map((m) => m.toFixed(0)).join(', ')} ms → ${((ITEMS * 1000) / median(layerMs)).toFixed(0)} items/s`,
    );
    const harnessMs: number[] = [];
    const cpuMs: number[] = [];
    const createMs: number[] = [];
    for (let r = 0; r <= ROUNDS; r++) {
      const createStart = performance.now();
      const { run } = await hub.evaluation.service.create(
        {
          suite,
          model: 'bench-model',
          concurrency: CONCURRENCY,
          executor: 'cli',
          createdBy: 'bench',
          resume: false,
        },
        async () => {},
      );
      const created = performance.now() - createStart;
      const cpu = process.cpuUsage();
      const started = performance.now();
      const finished = await hub.evaluation.executor.work(run.id, { concurrency: CONCURRENCY });
      const elapsed = performance.now() - started;
      const used = process.cpuUsage(cpu);
      if (finished?.result?.overall.correct !== ITEMS)
        throw new Error(`round ${r}: ${JSON.stringify(finished?.result?.overall)}`);
      // round 0 warms the process up (JIT, connections) and is not counted
      if (r === 0) continue;
      harnessMs.push(elapsed);
      createMs.push(created);
      cpuMs.push((used.user + used.system) / 1000);
    }
    results.harness = {
      ms: harnessMs,
      itemsPerSecond: (ITEMS * 1000) / median(harnessMs),
      msPerItem: median(harnessMs) / ITEMS,
      cpuMsPerItem: median(cpuMs) / ITEMS,
      addedMsPerItem: (median(harnessMs) - median(bareMs)) / ITEMS,
      addedOverCallLayerMsPerItem: (median(harnessMs) - median(layerMs)) / ITEMS,
      createRunMs: median(createMs),
    };
    log(
      `harness: ${harnessMs.map((m) => m.toFixed(0)).join(', ')} ms → ${((ITEMS * 1000) / median(harnessMs)).toFixed(0)} items/s, ` +
        `${(median(cpuMs) / ITEMS).toFixed(3)} CPU ms/item, +${((median(harnessMs) - median(bareMs)) / ITEMS).toFixed(3)} ms/item over bare, ` +
        `+${((median(harnessMs) - median(layerMs)) / ITEMS).toFixed(3)} ms/item over the call layer; ` +
        `creating the run (1,000 items stored) ${median(createMs).toFixed(0)} ms`,
    );
  } finally {
    await hub.close();
  }

  // --- cli: kaihub eval run --local end to end ----------------------------------------------------
  const cli = (suite: string) =>
    runChild(
      process.execPath,
      [
        join(ROOT, 'bin/kaihub.mjs'),
        'eval',
        'run',
        '--suite',
        suite,
        '--model',
        'bench-model',
        '--local',
        '--new',
        '--json',
        '--concurrency',
        String(CONCURRENCY),
      ],
      hubEnv(work, secret),
    );
  const cliMs: number[] = [];
  const cliOneMs: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const res = await cli(suitePath);
    if (res.code !== 0) throw new Error(`kaihub eval run: ${res.code}\n${res.err}`);
    if (JSON.parse(res.out).overall.correct !== ITEMS) throw new Error('kaihub eval run: wrong result');
    cliMs.push(res.ms);
    cliOneMs.push((await cli(join(work, 'one.yaml'))).ms);
  }
  const cliSteady = median(cliMs) - median(cliOneMs);
  results.cli = {
    ms: cliMs,
    oneItemMs: cliOneMs,
    itemsPerSecond: (ITEMS * 1000) / median(cliMs),
    itemsPerSecondWithoutStartup: ((ITEMS - 1) * 1000) / cliSteady,
  };
  log(
    `kaihub eval run (end to end): ${cliMs.map((m) => m.toFixed(0)).join(', ')} ms → ${((ITEMS * 1000) / median(cliMs)).toFixed(0)} items/s; ` +
      `1 item ${median(cliOneMs).toFixed(0)} ms, so without start-up ${(((ITEMS - 1) * 1000) / cliSteady).toFixed(0)} items/s`,
  );

  // --- promptfoo ------------------------------------------------------------------------------------
  if (existsSync(PROMPTFOO)) {
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: work,
      PROMPTFOO_DISABLE_TELEMETRY: '1',
      PROMPTFOO_DISABLE_UPDATE: '1',
      PROMPTFOO_CONFIG_DIR: join(work, '.promptfoo'),
      OPENAI_API_KEY: 'bench',
    };
    const all = promptfooConfig(work, fake.port, prompts, 'promptfoo-all.json');
    const one = promptfooConfig(work, fake.port, prompts.slice(0, 1), 'promptfoo-one.json');
    const args = (config: string) => [
      'eval',
      '-c',
      config,
      '--max-concurrency',
      String(CONCURRENCY),
      '--no-cache',
      '--no-write',
      '--no-table',
      '--no-progress-bar',
      '-o',
      join(work, 'promptfoo-out.json'),
    ];
    const pfMs: number[] = [];
    const pfOneMs: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const a = await runChild(PROMPTFOO, args(all), env, work);
      if (a.code !== 0 && a.code !== 100)
        throw new Error(`promptfoo: ${a.code}\n${a.err.slice(-2000)}\n${a.out.slice(-2000)}`);
      pfMs.push(a.ms);
      const b = await runChild(PROMPTFOO, args(one), env, work);
      pfOneMs.push(b.ms);
    }
    const steady = median(pfMs) - median(pfOneMs);
    results.promptfoo = {
      ms: pfMs,
      oneItemMs: pfOneMs,
      itemsPerSecond: (ITEMS * 1000) / median(pfMs),
      itemsPerSecondWithoutStartup: ((ITEMS - 1) * 1000) / steady,
    };
    log(
      `promptfoo (end to end): ${pfMs.map((m) => m.toFixed(0)).join(', ')} ms → ${((ITEMS * 1000) / median(pfMs)).toFixed(0)} items/s; ` +
        `1 item ${median(pfOneMs).toFixed(0)} ms, so without start-up ${(((ITEMS - 1) * 1000) / steady).toFixed(0)} items/s`,
    );
  } else {
    log(
      `promptfoo not found at ${PROMPTFOO}: that arm is skipped (npm install promptfoo@0.121.20 in /tmp/promptfoo)`,
    );
  }
  process.stdout.write(`${JSON.stringify(results)}\n`);
} finally {
  fake.child.kill('SIGTERM');
  await agent.close();
  await dropDatabase();
  rmSync(work, { recursive: true, force: true });
}
