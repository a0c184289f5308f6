#!/usr/bin/env node
// Local model benchmark: tokens/s of the hub's in-process model (the `local`
// adapter, node-llama-cpp) against node-llama-cpp's own bare generation, on the
// same random-weights GGUF, one thread each, greedy sampling.
//
//   bare — a child process: getLlama (as src/providers/local/runtime.ts opens
//          it), loadModel, one context, LlamaChat.generateResponse
//   hub  — the hub (`npm start` flags), a `local` deployment of the same file,
//          POST /v1/chat/completions with stream: true and include_usage
//
// Rounds are interleaved (order alternates each round) to spread machine noise.
// Everything listens on 127.0.0.1; every loop is bounded.
//
// Run: npm run bench:local  (or node bench/local-model.mjs --help)
import { fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { log, median, rawOptions } from './cli.mjs';
import {
  BENCH_DIR,
  children,
  freePort,
  ipcJobs,
  LOOPBACK,
  REPO_ROOT,
  startFlagsOf,
  startProcess,
  stopAll,
  waitFor,
} from './processes.mjs';

const MODEL_FILE = 'bench-local.gguf';
// Random weights: greedy decoding of the seed-42 file hits EOS early for some prompts; this one runs
// to max_tokens (128), so both arms measure a full-length generation. Check "completion tokens".
const PROMPT = 'Tell me about Seoul.';

const HELP = `Usage: node bench/local-model.mjs [options]

  --tokens=128        max_tokens per generation
  --rounds=5          measured rounds per arm (interleaved, order alternates)
  --warmup=1          unmeasured rounds per arm first (model load, caches)
  --layers=8 --embedding=512 --heads=8 --ff=1408 --ctx=512   model shape
  --threads=1         CPU threads of both arms (KAIHUB_LOCAL_THREADS)
  --bare-callback=token  what the bare arm listens to: token (onToken, cheapest)
                      or text (onTextChunk, as the hub's local adapter does: the
                      difference is node-llama-cpp's detokenising, not the hub)
  --seed=42           weights seed and sampling seed
  --hub-start-timeout=90
  --out=bench/results where the raw JSON goes
`;

function parseArgs(argv) {
  const raw = rawOptions(argv, HELP);
  const int = (k, d, min = 1, max = 1e6) => {
    const v = raw[k] === undefined ? d : Number(raw[k]);
    if (!Number.isInteger(v) || v < min || v > max)
      throw new Error(`--${k} must be an integer in ${min}..${max}`);
    return v;
  };
  return {
    tokens: int('tokens', 128, 1, 4096),
    rounds: int('rounds', 5, 1, 100),
    warmup: int('warmup', 1, 0, 10),
    layers: int('layers', 8, 1, 64),
    embedding: int('embedding', 512, 16, 8192),
    heads: int('heads', 8, 1, 128),
    ff: int('ff', 1408, 16, 32768),
    ctx: int('ctx', 512, 64, 32768),
    threads: int('threads', 1, 1, 256),
    seed: int('seed', 42, 0, 2 ** 31),
    hubStartTimeout: int('hub-start-timeout', 90, 1, 600),
    bareCallback: (() => {
      const v = raw['bare-callback'] ?? 'token';
      if (v !== 'token' && v !== 'text') throw new Error('--bare-callback must be token or text');
      return v;
    })(),
    out: path.resolve(REPO_ROOT, raw.out ?? 'bench/results'),
  };
}

const fmt = (n, d = 1) => (n === undefined || Number.isNaN(n) ? '—' : n.toFixed(d));

// ------------------------------------------------------------ bare worker --

async function bareWorker() {
  const { getLlama, LlamaChat, LlamaLogLevel } = await import('node-llama-cpp');
  const threads = Number(process.env.BENCH_THREADS);
  // the same options as src/providers/local/runtime.ts
  const llama = await getLlama({
    gpu: false,
    build: 'never',
    progressLogs: false,
    logLevel: LlamaLogLevel.error,
    maxThreads: threads,
  });
  const model = await llama.loadModel({ modelPath: process.env.BENCH_MODEL, gpuLayers: 0 });
  const context = await model.createContext({
    sequences: 1,
    contextSize: Math.min(model.trainContextSize, 4096),
    threads,
  });
  const sequence = context.getSequence();
  const chat = new LlamaChat({ contextSequence: sequence });
  process.on('message', async (m) => {
    if (m?.cmd === 'exit') {
      await llama.dispose();
      process.exit(0);
    }
    try {
      const history = [
        { type: 'user', text: m.prompt },
        { type: 'model', response: [] },
      ];
      const before = sequence.tokenMeter.getState();
      let first;
      const t0 = performance.now();
      const response = await chat.generateResponse(history, {
        maxTokens: m.tokens,
        temperature: 0,
        seed: m.seed,
        ...(process.env.BENCH_BARE_CALLBACK === 'text'
          ? {
              onTextChunk: () => {
                first ??= performance.now();
              },
            }
          : {
              onToken: () => {
                first ??= performance.now();
              },
            }),
      });
      const t1 = performance.now();
      const tokens = sequence.tokenMeter.diff(before).usedOutputTokens;
      process.send({
        id: m.id,
        result: { tokens, wallMs: t1 - t0, ttftMs: (first ?? t1) - t0, text: response.response },
      });
    } catch (err) {
      process.send({ id: m.id, error: String(err?.stack ?? err) });
    }
  });
  process.send({ ready: true, trainContextSize: model.trainContextSize });
}

// ---------------------------------------------------------------- helpers --

async function writeModel(dir, opts) {
  // the TS writer of the tests, through tsx's loader
  const { register } = await import('tsx/esm/api');
  const unregister = register();
  const { writeTinyGguf } = await import(
    pathToFileURL(path.join(REPO_ROOT, 'test', 'fakes', 'tiny-gguf.ts')).href
  );
  await unregister();
  const file = path.join(dir, MODEL_FILE);
  await writeTinyGguf(file, {
    layers: opts.layers,
    embedding: opts.embedding,
    heads: opts.heads,
    feedForward: opts.ff,
    contextLength: opts.ctx,
    seed: opts.seed,
  });
  return file;
}

function startBare(modelFile, threads, callback) {
  const child = fork(fileURLToPath(import.meta.url), ['--bare-worker'], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: ['--import', pathToFileURL(path.join(BENCH_DIR, 'exit-with-parent.mjs')).href],
    env: {
      ...process.env,
      BENCH_PARENT_PID: String(process.pid),
      BENCH_MODEL: modelFile,
      BENCH_THREADS: String(threads),
      BENCH_BARE_CALLBACK: callback,
    },
  });
  children.push(child);
  return { child, ...ipcJobs(child, 'bare worker') };
}

async function startHub(modelsDir, opts) {
  const port = await freePort();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'kaihub-bench-local-'));
  const adminToken = `bench-admin-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
  const child = startProcess(
    'hub',
    process.execPath,
    [...startFlagsOf(), path.join(REPO_ROOT, 'bin', 'kaihub.mjs'), 'start'],
    {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        PORT: String(port),
        HOST: LOOPBACK,
        KAIHUB_DATABASE: path.join(tmp, 'hub.sqlite'),
        KAIHUB_ADMIN_TOKEN: adminToken,
        KAIHUB_LOG_LEVEL: 'warn',
        KAIHUB_MODELS_DIR: modelsDir,
        KAIHUB_LOCAL_THREADS: String(opts.threads),
        KAIHUB_LOCAL_PARALLEL: '1',
        NODE_ENV: 'production',
      },
    },
  );
  child.tmpDir = tmp;
  const base = `http://${LOOPBACK}:${port}`;
  await waitFor('hub', opts.hubStartTimeout * 1000, async () => (await fetch(`${base}/healthz`)).ok, child);
  const admin = async (p, body) => {
    const res = await fetch(`${base}/admin/v1${p}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${adminToken}` },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`hub admin POST ${p} -> ${res.status}: ${text.slice(0, 500)}`);
    const json = JSON.parse(text);
    return json.data ?? json;
  };
  const supplier = await admin('/suppliers', { name: 'Bench Local' });
  const product = await admin('/products', {
    supplierId: supplier.id,
    model: 'bench-local',
    displayName: 'Bench local',
    purposes: ['chat'],
    modality: 'text',
    contextWindow: opts.ctx,
    priceInputPer1M: '0',
    priceOutputPer1M: '0',
    residency: 'domestic',
  });
  await admin('/deployments', {
    productId: product.id,
    adapter: 'local',
    baseUrl: 'local:',
    upstreamModel: MODEL_FILE,
  });
  const org = await admin('/organizations', { name: 'Bench Org', class: 'sme' });
  const key = await admin(`/organizations/${org.id}/keys`, { name: 'bench' });
  const secret = key.key ?? key.secret ?? key.apiKey;
  if (!secret) throw new Error(`hub key response without a key: ${JSON.stringify(key)}`);
  return { child, base, secret };
}

// One streamed chat completion: wall time, time to first content, usage.
async function hubRound(hub, opts) {
  const t0 = performance.now();
  const res = await fetch(`${hub.base}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${hub.secret}` },
    body: JSON.stringify({
      model: 'bench-local',
      messages: [{ role: 'user', content: PROMPT }],
      max_tokens: opts.tokens,
      temperature: 0,
      seed: opts.seed,
      stream: true,
      stream_options: { include_usage: true },
    }),
    signal: AbortSignal.timeout(300_000),
  });
  if (res.status !== 200) throw new Error(`hub: ${res.status} ${(await res.text()).slice(0, 500)}`);
  const decoder = new TextDecoder();
  let buf = '';
  let first;
  let usage;
  let text = '';
  let done = false;
  for await (const chunk of res.body) {
    buf += decoder.decode(chunk, { stream: true });
    let i = buf.indexOf('\n\n');
    while (i >= 0) {
      const event = buf.slice(0, i);
      buf = buf.slice(i + 2);
      i = buf.indexOf('\n\n');
      for (const line of event.split('\n')) {
        if (!line.startsWith('data:')) continue;
        const data = line.slice(5).trim();
        if (data === '[DONE]') {
          done = true;
          continue;
        }
        const json = JSON.parse(data);
        if (json.error) throw new Error(`hub stream error: ${data}`);
        const delta = json.choices?.[0]?.delta?.content;
        if (delta) {
          first ??= performance.now();
          text += delta;
        }
        if (json.usage) usage = json.usage;
      }
    }
  }
  const t1 = performance.now();
  if (!done) throw new Error('hub stream ended without [DONE]');
  if (!usage) throw new Error('hub stream without a usage chunk');
  return {
    tokens: usage.completion_tokens,
    promptTokens: usage.prompt_tokens,
    wallMs: t1 - t0,
    ttftMs: (first ?? t1) - t0,
    text,
  };
}

// ------------------------------------------------------------------- main --

function stats(rounds) {
  const tps = rounds.map((r) => r.tokens / (r.wallMs / 1000));
  // decode rate after the first token: excludes prompt evaluation and setup
  const decode = rounds.map((r) => (r.tokens - 1) / ((r.wallMs - r.ttftMs) / 1000));
  return {
    medianTokensPerSecond: median(tps),
    tokensPerSecond: tps,
    medianDecodeTokensPerSecond: median(decode),
    medianTtftMs: median(rounds.map((r) => r.ttftMs)),
    medianWallMs: median(rounds.map((r) => r.wallMs)),
    tokens: rounds.map((r) => r.tokens),
  };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const startedAt = new Date();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kaihub-local-model-'));
  children.tmpModelDir = dir;
  log(
    `writing the GGUF (${opts.layers} layers, embedding ${opts.embedding}, ${opts.heads} heads, FF ${opts.ff}, ctx ${opts.ctx})`,
  );
  const modelFile = await writeModel(dir, opts);
  const modelBytes = statSync(modelFile).size;
  log(`model: ${(modelBytes / 2 ** 20).toFixed(1)} MiB`);

  const bare = startBare(modelFile, opts.threads, opts.bareCallback);
  await bare.ready;
  const hub = await startHub(dir, opts);
  log('bare worker and hub ready');

  const arms = {
    bare: () => bare.run({ prompt: PROMPT, tokens: opts.tokens, seed: opts.seed }),
    hub: () => hubRound(hub, opts),
  };
  for (let w = 0; w < opts.warmup; w++) {
    for (const name of ['bare', 'hub']) {
      const r = await arms[name]();
      log(`warm-up ${name}: ${r.tokens} tokens in ${fmt(r.wallMs, 0)} ms`);
    }
  }
  const results = { bare: [], hub: [] };
  for (let round = 0; round < opts.rounds; round++) {
    const order = round % 2 === 0 ? ['bare', 'hub'] : ['hub', 'bare'];
    for (const name of order) {
      const r = await arms[name]();
      results[name].push(r);
      log(
        `round ${round + 1} ${name}: ${r.tokens} tokens in ${fmt(r.wallMs, 0)} ms = ${fmt(r.tokens / (r.wallMs / 1000))} tok/s, first token ${fmt(r.ttftMs, 1)} ms`,
      );
    }
  }

  const summary = { bare: stats(results.bare), hub: stats(results.hub) };
  summary.overheadPercent =
    (1 - summary.hub.medianTokensPerSecond / summary.bare.medianTokensPerSecond) * 100;
  summary.decodeOverheadPercent =
    (1 - summary.hub.medianDecodeTokensPerSecond / summary.bare.medianDecodeTokensPerSecond) * 100;
  summary.addedTtftMs = summary.hub.medianTtftMs - summary.bare.medianTtftMs;
  summary.sameText =
    results.hub.every((r) => r.text === results.bare[0].text) &&
    results.bare.every((r) => r.text === results.bare[0].text);
  summary.hubPromptTokens = results.hub[0]?.promptTokens;
  summary.pass = summary.overheadPercent < 5;

  const lines = [
    `Node ${process.version}; ${os.availableParallelism()} × ${os.cpus()[0]?.model ?? 'CPU'}; node-llama-cpp ${JSON.parse(readFileSync(path.join(REPO_ROOT, 'node_modules', 'node-llama-cpp', 'package.json'), 'utf8')).version}; model ${opts.layers} layers, embedding ${opts.embedding}, ${opts.heads} heads, FF ${opts.ff}, ctx ${opts.ctx}, F32, ${(modelBytes / 2 ** 20).toFixed(0)} MiB; ${opts.threads} thread(s); bare arm on ${opts.bareCallback === 'text' ? 'onTextChunk' : 'onToken'}; max_tokens ${opts.tokens}; ${opts.rounds} rounds per arm, interleaved.`,
    '',
    '| arm | tokens/s (median) | per round | decode tok/s after 1st token (median) | TTFT (median ms) | wall (median ms) | completion tokens |',
    '| --- | ---: | --- | ---: | ---: | ---: | --- |',
  ];
  for (const name of ['bare', 'hub']) {
    const s = summary[name];
    lines.push(
      `| ${name} | ${fmt(s.medianTokensPerSecond)} | ${s.tokensPerSecond.map((v) => fmt(v)).join(', ')} | ${fmt(s.medianDecodeTokensPerSecond)} | ${fmt(s.medianTtftMs)} | ${fmt(s.medianWallMs, 0)} | ${[...new Set(s.tokens)].join(', ')} |`,
    );
  }
  lines.push('');
  lines.push(
    `Hub overhead (tokens/s): **${fmt(summary.overheadPercent, 2)} %** (target < 5 %: ${summary.pass ? 'met' : '**missed**'}); decode-only ${fmt(summary.decodeOverheadPercent, 2)} %; added TTFT ${fmt(summary.addedTtftMs, 1)} ms. Same generated text in both arms: ${summary.sameText ? 'yes' : 'no'}.`,
  );
  const table = lines.join('\n');
  mkdirSync(opts.out, { recursive: true });
  const file = path.join(opts.out, `local-model-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  const strip = (rs) => rs.map(({ text, ...r }) => ({ ...r, textChars: text.length }));
  writeFileSync(
    file,
    `${JSON.stringify(
      {
        meta: {
          startedAt: startedAt.toISOString(),
          finishedAt: new Date().toISOString(),
          command: `node bench/local-model.mjs ${process.argv.slice(2).join(' ')}`.trim(),
          options: { ...opts, out: path.relative(REPO_ROOT, opts.out) },
          modelBytes,
          machine: { nproc: os.availableParallelism(), cpuModel: os.cpus()[0]?.model, node: process.version },
        },
        summary,
        rounds: { bare: strip(results.bare), hub: strip(results.hub) },
        table,
      },
      null,
      2,
    )}\n`,
  );
  process.stdout.write(`${table}\n`);
  log(`raw results: ${path.relative(process.cwd(), file)}`);
  bare.child.send({ cmd: 'exit' });
}

async function cleanupAndExit(code) {
  await stopAll();
  for (const child of children) if (child.tmpDir) rmSync(child.tmpDir, { recursive: true, force: true });
  if (children.tmpModelDir) rmSync(children.tmpModelDir, { recursive: true, force: true });
  process.exit(code);
}

if (process.argv.includes('--bare-worker')) {
  bareWorker().catch((err) => {
    process.stderr.write(`bare worker failed: ${err?.stack ?? err}\n`);
    process.exit(1);
  });
} else {
  process.on('SIGINT', () => cleanupAndExit(130));
  process.on('SIGTERM', () => cleanupAndExit(143));
  main().then(
    () => cleanupAndExit(0),
    (err) => {
      log(`failed: ${err.stack ?? err}`);
      for (const c of children)
        if (c.logTail?.length) log(`last output of ${c.benchName}:\n${c.logTail.join('').slice(-3000)}`);
      cleanupAndExit(1);
    },
  );
}
