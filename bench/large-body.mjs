#!/usr/bin/env node
// Large request bodies: how long a 16 MB chat body holds the hub's event loop, and where that time goes.
//
// 1. "parts": in this process, the main-thread cost of each step the hub takes with a 16 MB body
//    (joining the socket chunks, decoding, JSON.parse, the limits walk, validation, the prompt
//    estimate, JSON.stringify for the upstream and its UTF-8 encoding on the socket), and of taking
//    a body back from a parse worker in pieces, for three shapes: one base64 image, one long
//    document, a long conversation.
// 2. "stall": the hub in its own process (and, with --baseline=<git ref>, the hub at that commit),
//    a sink upstream that drains bodies without parsing them, small chat requests every 10 ms on
//    other connections while one 16 MB body goes through; the slowest small request is the stall.
//    `parse` mode ends the big request with a 400 after it is parsed and validated (max_tokens: 0 at
//    the end); `full` mode serves it to the upstream.
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import { log, median, rawOptions } from './cli.mjs';
import {
  freePort,
  LOOPBACK,
  REPO_ROOT,
  sleep,
  startFlagsOf,
  startProcess,
  stopAll,
  waitFor,
} from './processes.mjs';

const HELP = `node bench/large-body.mjs [options]
  --shapes=image,document,conversation   body shapes (each ≈ 16 MB)
  --modes=parse,full                     stall scenarios (see the header of this file)
  --rounds=3                             rounds per arm, shape and mode (after one warm-up)
  --interval-ms=10                       gap between two small requests
  --parts-only | --stall-only            run one half
  --baseline=<git ref>                   also measure the hub at that commit
  --hub-cpu-prof=<dir>                   write the hub's CPU profile(s) there
  --hub-flags=<flags>                    extra node flags for the hub, space-separated (e.g. --trace-gc)
  --hub-log=<file>                       append the hub's output there
  --wait-quiet=<seconds>                 first wait up to that long for the 1-minute load average to
                                         fall below 1.5 (this machine is shared)
`;

const raw = rawOptions(process.argv.slice(2), HELP);
const opts = {
  shapes: (raw.shapes ?? 'image,document,conversation').split(','),
  modes: (raw.modes ?? 'parse,full').split(','),
  rounds: Number(raw.rounds ?? 3),
  intervalMs: Number(raw['interval-ms'] ?? 10),
  parts: raw['stall-only'] === undefined,
  stall: raw['parts-only'] === undefined,
  baseline: raw.baseline,
  cpuProfDir: raw['hub-cpu-prof'],
  hubFlags: raw['hub-flags'] ? raw['hub-flags'].split(' ') : [],
  hubLog: raw['hub-log'],
  waitQuietS: Number(raw['wait-quiet'] ?? 0),
};

const TARGET_BYTES = 16 * 1024 * 1024 - 4096;
const LINE =
  '대한민국의 초거대 AI 생태계는 공급기업과 수요기관을 잇는다. The hub meters every token exactly. ';

/** The body of a shape as JSON text, without its closing brace (a mode adds its own ending). */
function shapeText(shape) {
  if (shape === 'image') {
    const b64 = 'iVBORw0KGgoAAAANSUhEUgAA'.repeat(Math.ceil(TARGET_BYTES / 24)).slice(0, TARGET_BYTES - 400);
    const content = [
      { type: 'text', text: '이 그림을 설명해 주세요.' },
      { type: 'image_url', image_url: { url: `data:image/png;base64,${b64}` } },
    ];
    return JSON.stringify({ model: 'bench-model', messages: [{ role: 'user', content }] }).slice(0, -1);
  }
  if (shape === 'document') {
    const text = LINE.repeat(Math.floor((TARGET_BYTES - 300) / Buffer.byteLength(LINE)));
    const messages = [
      { role: 'system', content: '다음 문서를 요약하세요.' },
      { role: 'user', content: text },
    ];
    return JSON.stringify({ model: 'bench-model', messages }).slice(0, -1);
  }
  if (shape === 'conversation') {
    const messages = [];
    for (let i = 0, bytes = 0; bytes < TARGET_BYTES - 300; i++) {
      const message = { role: i % 2 ? 'assistant' : 'user', content: `${i}: ${LINE}` };
      bytes += Buffer.byteLength(JSON.stringify(message)) + 1;
      messages.push(message);
    }
    return JSON.stringify({ model: 'bench-model', messages }).slice(0, -1);
  }
  throw new Error(`unknown shape ${shape}`);
}

const ms = (x) => Number(x.toFixed(1));

/** Part 1: the main-thread cost of each step, in this process, median of rounds. */
async function measureParts() {
  const { register } = await import('tsx/esm/api');
  register();
  const src = (p) => import(path.join(REPO_ROOT, 'src', p));
  const { findJsonLimitViolation } = await src('http/json-limits.mjs');
  const { splitIntoPieces, PieceAssembler, DEFAULT_PIECE_WEIGHT, encodePiece, decodePiece } =
    await src('http/json-pieces.mjs');
  const { checkChatRequest } = await src('http/openai/validate.ts');
  const { estimatePromptTokens } = await src('billing/token-estimate.ts');
  const rows = [];
  for (const shape of opts.shapes) {
    const bytes = Buffer.from(`${shapeText(shape)}}`);
    const chunks = [];
    for (let i = 0; i < bytes.length; i += 65_536) chunks.push(Buffer.from(bytes.subarray(i, i + 65_536)));
    const steps = {};
    const record = (name, value) => {
      steps[name] ??= [];
      steps[name].push(value);
    };
    const time = (name, fn) => {
      const start = performance.now();
      const result = fn();
      record(name, performance.now() - start);
      return result;
    };
    for (let round = 0; round < opts.rounds + 1; round++) {
      const joined = time('concat', () => Buffer.concat(chunks, bytes.length));
      const text = time('decode', () => joined.toString('utf8'));
      const body = time('JSON.parse', () => JSON.parse(text));
      time('limits walk', () => findJsonLimitViolation(body));
      time('validate', () => checkChatRequest(body));
      time('estimate', () => estimatePromptTokens(body));
      const upstreamText = time('stringify', () => JSON.stringify({ ...body, model: 'upstream-model' }));
      // what writing that string to the upstream's socket costs: one UTF-8 encoding of it
      time('encode', () => Buffer.from(upstreamText, 'utf8'));
      // the pieces a parse worker sends (v8.serialize is what postMessage does), taken back as the
      // event loop takes them
      const serialised = [];
      splitIntoPieces(body, DEFAULT_PIECE_WEIGHT, (piece, long) =>
        serialised.push(v8.serialize(encodePiece(piece, long))),
      );
      const assembler = new PieceAssembler();
      const perPiece = [];
      time('pieces (sum)', () => {
        for (const s of serialised) {
          const start = performance.now();
          assembler.apply(decodePiece(v8.deserialize(s)));
          perPiece.push(performance.now() - start);
        }
      });
      record('largest piece', Math.max(...perPiece));
      record('pieces', serialised.length);
      if (round === 0) for (const k of Object.keys(steps)) steps[k] = []; // warm-up round
    }
    const row = { shape, megabytes: ms(bytes.length / 1024 / 1024) };
    for (const [name, xs] of Object.entries(steps)) row[name] = ms(median(xs));
    rows.push(row);
    log(`parts ${shape}: ${JSON.stringify(row)}`);
  }
  return rows;
}

/** A sink upstream: drains request bodies without parsing them, answers a fixed completion. */
function startSink() {
  const answer = JSON.stringify({
    id: 'chatcmpl-sink',
    object: 'chat.completion',
    created: 1_700_000_000,
    model: 'fake-model',
    choices: [
      { index: 0, message: { role: 'assistant', content: '네' }, finish_reason: 'stop', logprobs: null },
    ],
    usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 },
  });
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(answer);
    });
  });
  return new Promise((resolve) => server.listen(0, LOOPBACK, () => resolve(server)));
}

async function startHub(name, root, upstreamPort) {
  const port = await freePort();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'kaihub-bench-'));
  const adminToken = `bench-admin-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
  const prof = opts.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(opts.cpuProfDir, name)}`] : [];
  const args = [
    ...startFlagsOf(root),
    ...opts.hubFlags,
    ...prof,
    path.join(root, 'bin', 'kaihub.mjs'),
    'start',
  ];
  const child = startProcess(name, process.execPath, args, {
    cwd: root,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: LOOPBACK,
      KAIHUB_DATABASE: path.join(tmp, 'hub.sqlite'),
      KAIHUB_ADMIN_TOKEN: adminToken,
      KAIHUB_LOG_LEVEL: 'warn',
      NODE_ENV: 'production',
    },
  });
  child.tmpDir = tmp;
  if (opts.hubLog) {
    const write = (chunk) => appendFileSync(opts.hubLog, `[${name}] ${chunk}`);
    child.stdout.on('data', write);
    child.stderr.on('data', write);
  }
  const base = `http://${LOOPBACK}:${port}`;
  await waitFor(name, 90_000, async () => (await fetch(`${base}/healthz`)).ok, child);
  const admin = async (p, body) => {
    const r = await fetch(`${base}/admin/v1${p}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (!r.ok) throw new Error(`${name} admin POST ${p} -> ${r.status}: ${await r.text()}`);
    return r.json();
  };
  const supplier = await admin('/suppliers', { name: 'Bench Supplier' });
  const product = await admin('/products', {
    supplierId: supplier.id,
    model: 'bench-model',
    displayName: 'Bench',
    purposes: ['chat'],
    modality: 'text',
    contextWindow: 8192,
    priceInputPer1M: '1000',
    priceOutputPer1M: '3000',
    residency: 'domestic',
  });
  await admin('/deployments', {
    productId: product.id,
    adapter: 'openai-compatible',
    baseUrl: `http://${LOOPBACK}:${upstreamPort}/v1`,
    apiKey: 'upstream-key',
    upstreamModel: 'fake-model',
  });
  const org = await admin('/organizations', { name: 'Bench Org', class: 'sme' });
  const key = await admin(`/organizations/${org.id}/keys`, { name: 'bench' });
  return { name, child, base, key: key.key };
}

const agent = new http.Agent({ keepAlive: true });

function post(hub, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(`${hub.base}/v1/chat/completions`, {
      method: 'POST',
      agent,
      headers: {
        authorization: `Bearer ${hub.key}`,
        'content-type': 'application/json',
        'content-length': String(body.length),
      },
    });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const SMALL = Buffer.from(
  JSON.stringify({ model: 'bench-model', messages: [{ role: 'user', content: '안녕' }] }),
);

/** One big request with small ones every interval from 100 ms before to 100 ms after it. */
async function stallRound(hub, big, expectedStatus) {
  const latencies = [];
  const pending = [];
  let ticking = true;
  const ticker = (async () => {
    while (ticking) {
      const sentAt = performance.now();
      pending.push(
        post(hub, SMALL).then((status) => {
          if (status !== 200) throw new Error(`small request: ${status}`);
          latencies.push(performance.now() - sentAt);
        }),
      );
      await sleep(opts.intervalMs);
    }
  })();
  await sleep(100);
  const start = performance.now();
  const status = await post(hub, big);
  const bigMs = performance.now() - start;
  if (status !== expectedStatus)
    throw new Error(`${hub.name}: big request answered ${status}, expected ${expectedStatus}`);
  await sleep(100);
  ticking = false;
  await ticker;
  await Promise.all(pending);
  latencies.sort((a, b) => a - b);
  return { bigMs, slowest: latencies.at(-1), p50: median(latencies), count: latencies.length };
}

async function measureStall() {
  const sink = await startSink();
  const upstreamPort = sink.address().port;
  const hubs = [await startHub('hub', REPO_ROOT, upstreamPort)];
  let baselineDir;
  if (opts.baseline) {
    baselineDir = mkdtempSync(path.join(os.tmpdir(), 'kaihub-baseline-'));
    execFileSync('git', ['worktree', 'add', '--detach', baselineDir, opts.baseline], {
      cwd: REPO_ROOT,
      stdio: 'ignore',
    });
    symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(baselineDir, 'node_modules'), 'dir');
    hubs.push(await startHub('baseline', baselineDir, upstreamPort));
  }
  const rows = [];
  try {
    for (const shape of opts.shapes) {
      const text = shapeText(shape);
      for (const mode of opts.modes) {
        const big = Buffer.from(mode === 'parse' ? `${text},"max_tokens":0}` : `${text}}`);
        const expected = mode === 'parse' ? 400 : 200;
        for (const hub of hubs) await stallRound(hub, big, expected); // warm-up (starts parse workers)
        const results = Object.fromEntries(hubs.map((h) => [h.name, []]));
        for (let round = 0; round < opts.rounds; round++) {
          // arms alternate, so a busy moment of the machine hits both
          for (const hub of round % 2 ? [...hubs].reverse() : hubs)
            results[hub.name].push(await stallRound(hub, big, expected));
        }
        for (const hub of hubs) {
          const r = results[hub.name];
          const row = {
            arm: hub.name,
            shape,
            mode,
            'slowest small (ms, median of rounds)': ms(median(r.map((x) => x.slowest))),
            'slowest small (ms, per round)': r.map((x) => ms(x.slowest)).join(', '),
            'small p50 (ms)': ms(median(r.map((x) => x.p50))),
            'big request (ms)': ms(median(r.map((x) => x.bigMs))),
          };
          rows.push(row);
          log(`stall ${JSON.stringify(row)}`);
        }
      }
    }
  } finally {
    await stopAll();
    for (const hub of hubs) rmSync(hub.child.tmpDir, { recursive: true, force: true });
    if (baselineDir)
      execFileSync('git', ['worktree', 'remove', '--force', baselineDir], {
        cwd: REPO_ROOT,
        stdio: 'ignore',
      });
    sink.close();
    agent.destroy();
  }
  return rows;
}

function table(rows) {
  if (rows.length === 0) return '';
  const keys = Object.keys(rows[0]);
  return [
    `| ${keys.join(' | ')} |`,
    `| ${keys.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${keys.map((k) => r[k]).join(' | ')} |`),
  ].join('\n');
}

const machine = `${os.availableParallelism()} × ${os.cpus()[0]?.model ?? 'CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
log(`machine: ${machine}; options ${JSON.stringify(opts)}`);
const parts = opts.parts ? await measureParts() : [];
const stall = opts.stall ? await measureStall() : [];
process.stdout.write(
  `\n${machine}\n\nMain-thread time per step (ms, median of ${opts.rounds}):\n\n${table(parts)}\n\nStall:\n\n${table(stall)}\n`,
);
