#!/usr/bin/env node
// Gateway overhead benchmark: the same fake upstream, the same load generator,
// one run, three arms:
//   direct  — client → fake upstream
//   proxy   — client → a bare node:http + undici proxy (bench/bare-proxy.mjs) → fake
//             upstream: the floor of the hub's stack, without anything of the hub
//   hub     — client → K-AI Hub (auth + metering on) → fake upstream
//   portkey — client → Portkey gateway (npm @portkey-ai/gateway) → fake upstream
//   baseline — (with --baseline=<git ref>) the hub as it was at that commit, from a
//              temporary git worktree, to compare two versions side by side
//   traced  — the hub with tracing on: every call sampled, spans exported over OTLP/HTTP to a
//             collector sink in its own process (what tracing costs, against the hub arm)
// Reports added latency (gateway percentile minus direct percentile at the same
// fixed arrival rate) and the maximum throughput of each arm.
//
// Every process (upstream, gateways, load generator) gets its own event loop;
// this script only orchestrates. Everything listens on 127.0.0.1 only, and
// every load loop is bounded in count and time.
//
// Run: npm run bench  (or node bench/gateway-overhead.mjs --help)
import { execFileSync, fork, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { log, median, positiveOption, rawOptions } from './cli.mjs';
import {
  CHAT_REQUEST_BODY,
  gitDescribe,
  httpJson,
  prepareBaseline,
  removeWorktrees,
  startHub as startHubArm,
  startOtlpSink,
} from './hub-arm.mjs';
import {
  BENCH_DIR,
  children,
  freePort,
  ipcJobs,
  LOOPBACK,
  REPO_ROOT,
  sleep,
  startListening,
  startProcess,
  stopAll,
  waitFor,
} from './processes.mjs';

const ALL_TARGETS = [
  'direct',
  'proxy',
  'hub',
  'traced',
  'funded',
  'pg',
  'postgres',
  'shared',
  'baseline',
  'portkey',
];
// the arms that are a K-AI Hub: metered, so their 200s are counted and checked against usage records
// Pairs of arms compared in the summary: [key, arm, the arm without what it adds, label]
const COMPARISONS = [
  ['tracedVsHub', 'traced', 'hub', 'Traced − hub (tracing on at 100 % sampling)'],
  [
    'fundedVsHub',
    'funded',
    'hub',
    'Funded − hub (voucher holds, rate limits and ledger charges on every call)',
  ],
  ['pgVsHub', 'pg', 'hub', 'Pg − hub (PostgreSQL instead of SQLite, nothing funded)'],
  [
    'postgresVsHub',
    'postgres',
    'hub',
    'Postgres − hub (the funded hub on PostgreSQL; the hub arm on SQLite)',
  ],
  ['postgresVsPg', 'postgres', 'pg', 'Postgres − pg (holds, limits and charges, both on PostgreSQL)'],
  [
    'sharedVsHub',
    'shared',
    'hub',
    'Shared − hub (funded, PostgreSQL, holds and limits in Redis; the hub arm on SQLite)',
  ],
  [
    'sharedVsPostgres',
    'shared',
    'postgres',
    'Shared − postgres (what Redis adds: both funded, both on PostgreSQL)',
  ],
  [
    'sharedVsPg',
    'shared',
    'pg',
    'Shared − pg (holds, limits and charges with Redis, against the same hub on PostgreSQL with nothing funded)',
  ],
];
const HUB_ARMS = ['hub', 'traced', 'funded', 'pg', 'postgres', 'shared', 'baseline'];

const HELP = `Usage: node bench/gateway-overhead.mjs [options]

  --targets=direct,hub,portkey  arms to run (direct is always included; also proxy,
                                a bare node:http + undici proxy: the stack's floor; and
                                traced, the hub with every call traced to an OTLP sink;
                                and funded, the hub with every call paid by a voucher
                                with co-payment: held, rate-limited and charged; pg, the
                                hub on PostgreSQL (a database of its own) with nothing
                                funded: the hub before vouchers, on that engine; and
                                postgres, the funded hub on PostgreSQL; shared, the same
                                with holds and limits in Redis (REDIS_URL; a key prefix
                                of its own))
  --baseline=<git ref>          add a "baseline" arm: the hub at that commit (a
                                temporary git worktree sharing node_modules), to
                                compare two versions in one run
  --baseline-as=hub             which arm the baseline is set up like: hub, funded, pg,
                                postgres or shared (funded, with a PostgreSQL database of
                                its own, and Redis under a prefix of its own), compared
                                with that arm of this version
  --rates=200,1000              fixed arrival rates for the latency runs (req/s)
  --rounds=4                    interleaved rounds per rate (arm order shuffled each round)
  --round-seconds=5             length of one latency round per arm
  --throughput-rounds=3         interleaved rounds of the max-throughput run
  --throughput-seconds=5        length of one max-throughput round per arm
  --connections=64              concurrent connections for max throughput
  --max-tool=undici             max-throughput generator: undici (default) or wrk
  --warmup-seconds=2            closed-loop warm-up per arm before measuring
  --hub-start-timeout=90        seconds to wait for the hub's /healthz
  --nice=0                      added to the nice value of every thread of every benchmark process
                                (e.g. -10 as root, to be less at the mercy of
                                other work on a shared machine)
  --wait-quiet=0                wait up to this many seconds for other work on the
                                machine to drop below 25 % CPU before measuring
  --hub-script=start            the npm script whose node flags the hub and traced arms get
                                (e.g. start:lean); the baseline keeps its own start
  --hub-cpu-prof                write a V8 CPU profile of the hub and traced arms (node --cpu-prof)
                                to the --out directory, for profiling the hot path
  --seed=<n>                    seed for the round order shuffle (default: time)
  --quick                       smoke run: 2 rounds of 2 s, throughput 2 x 2 s
  --out=bench/results           where the raw JSON goes
`;

// ---------------------------------------------------------------- options --

function parseArgs(argv) {
  const raw = rawOptions(argv, HELP);
  const quick = raw.quick === 'true';
  const num = (k, d) => positiveOption(raw, k, d);
  const targets = (raw.targets ?? ALL_TARGETS.join(','))
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const t of targets) if (!ALL_TARGETS.includes(t)) throw new Error(`unknown target ${t}`);
  if (!targets.includes('direct')) targets.unshift('direct');
  if (raw.baseline !== undefined && !targets.includes('baseline')) targets.push('baseline');
  if (targets.includes('baseline') && (raw.baseline === undefined || raw.baseline === 'true'))
    throw new Error('the baseline arm needs --baseline=<git ref>');
  const opts = {
    targets: ALL_TARGETS.filter((t) => targets.includes(t)),
    baseline: raw.baseline,
    baselineAs: raw['baseline-as'] ?? 'hub',
    rates: (raw.rates ?? '200,1000').split(',').map(Number),
    rounds: num('rounds', quick ? 2 : 4),
    roundSeconds: num('round-seconds', quick ? 2 : 5),
    throughputRounds: num('throughput-rounds', quick ? 2 : 3),
    throughputSeconds: num('throughput-seconds', quick ? 2 : 5),
    connections: num('connections', 64),
    maxTool: raw['max-tool'] ?? 'undici',
    warmupSeconds: num('warmup-seconds', quick ? 1 : 2),
    hubStartTimeout: num('hub-start-timeout', 90),
    waitQuiet: raw['wait-quiet'] !== undefined ? Number(raw['wait-quiet']) : 0,
    hubCpuProf: raw['hub-cpu-prof'] === 'true',
    hubScript: raw['hub-script'] ?? 'start',
    nice: raw.nice !== undefined ? Number(raw.nice) : 0,
    seed: raw.seed !== undefined ? Number(raw.seed) : Date.now() % 1_000_000,
    out: path.resolve(REPO_ROOT, raw.out ?? 'bench/results'),
  };
  for (const r of opts.rates)
    if (!Number.isFinite(r) || r <= 0 || r > 20_000) throw new Error(`bad rate ${r}`);
  if (!['undici', 'wrk'].includes(opts.maxTool)) throw new Error('--max-tool must be undici or wrk');
  if (!['hub', 'funded', 'pg', 'postgres', 'shared'].includes(opts.baselineAs))
    throw new Error('--baseline-as must be hub, funded, pg, postgres or shared');
  return opts;
}

// ---------------------------------------------------------------- helpers --

// Small deterministic PRNG so a run's arm order can be reproduced from its seed.
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffled(list, rand) {
  const a = [...list];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

// ------------------------------------------------------------- processes --

// Raise every thread of a process tree by `nice` (negative: more priority). setpriority() on Linux
// acts per thread, and V8/libuv threads already exist when we get here. Each thread keeps its place
// relative to the others: the hub's journal applier runs at nice 19 so that it yields to the event
// loop, and setting every thread to the same value (as this did until 2026-11-30) made it compete with
// the event loop as an equal, which a hub never does outside the benchmark.
function reniceTree(rootPid, nice) {
  if (!nice) return;
  const pids = [rootPid];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]) === rootPid) pids.push(Number(pid));
    } catch {}
  }
  for (const pid of pids) {
    let tids = [];
    try {
      tids = readdirSync(`/proc/${pid}/task`).map(Number);
    } catch {}
    for (const tid of tids) {
      try {
        os.setPriority(tid, Math.max(-20, Math.min(19, os.getPriority(tid) + nice)));
      } catch (err) {
        log(`cannot renice ${tid}: ${err.message}`);
      }
    }
  }
}

// Machine-wide busy and steal CPU seconds from /proc/stat. Busy time minus the
// benchmark's own processes is what other work on the machine took meanwhile.
function systemCpuSeconds() {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, , , irq, softirq, steal] = f;
    return { busy: (user + nice + system + irq + softirq) / 100, steal: (steal ?? 0) / 100 };
  } catch {
    return undefined;
  }
}

// CPU time of this process's children that have exited and been waited for.
function reapedChildrenCpuSeconds() {
  try {
    const s = readFileSync('/proc/self/stat', 'utf8');
    const fields = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[13]) + Number(fields[14])) / 100;
  } catch {
    return 0;
  }
}

// CPU time of a process and all its descendants, in seconds, from /proc. Used
// to show which process was the bottleneck during the throughput runs.
function treeCpuSeconds(rootPid) {
  const tck = 100; // USER_HZ is 100 on Linux x86-64.
  let entries;
  try {
    entries = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return undefined;
  }
  const stats = new Map();
  for (const pid of entries) {
    try {
      const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = s.slice(s.lastIndexOf(')') + 2).split(' ');
      stats.set(Number(pid), {
        ppid: Number(fields[1]),
        cpu: (Number(fields[11]) + Number(fields[12])) / tck,
      });
    } catch {}
  }
  let total = 0;
  const queue = [rootPid];
  const seen = new Set();
  while (queue.length) {
    const pid = queue.pop();
    if (seen.has(pid)) continue;
    seen.add(pid);
    const st = stats.get(pid);
    if (st) total += st.cpu;
    for (const [p, s] of stats) if (s.ppid === pid) queue.push(p);
  }
  return total;
}

// ----------------------------------------------------------------- arms ----

/** A bench script that prints `{"ready":true,"port":N}` once listening: its process and port. */

const startUpstream = () => startListening('upstream', 'fake-upstream.mjs', []);

async function startProxy(upstreamPort) {
  const { child, port } = await startListening('proxy', 'bare-proxy.mjs', [
    `--upstream=http://${LOOPBACK}:${upstreamPort}`,
  ]);
  return {
    child,
    target: {
      name: 'proxy',
      url: `http://${LOOPBACK}:${port}/v1/chat/completions`,
      headers: { 'content-type': 'application/json', authorization: 'Bearer upstream-key' },
      body: CHAT_REQUEST_BODY,
    },
  };
}

function ensureBenchDeps() {
  if (existsSync(path.join(BENCH_DIR, 'node_modules', '@portkey-ai', 'gateway', 'package.json'))) return;
  const hasLock = existsSync(path.join(BENCH_DIR, 'package-lock.json'));
  log(`bench/node_modules missing: npm --prefix bench ${hasLock ? 'ci' : 'install'}`);
  // Portkey's only install script is `patch-package`, and the published package
  // ships no patches, so npm 11's default of not running install scripts is fine.
  execFileSync('npm', ['--prefix', BENCH_DIR, hasLock ? 'ci' : 'install', '--no-audit', '--no-fund'], {
    stdio: 'inherit',
  });
}

async function startPortkey(upstreamPort) {
  const port = await freePort();
  const pkgDir = path.join(BENCH_DIR, 'node_modules', '@portkey-ai', 'gateway');
  const pkg = JSON.parse(readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
  const entry = path.join(pkgDir, typeof pkg.bin === 'string' ? pkg.bin : Object.values(pkg.bin)[0]);
  const child = startProcess(
    'portkey',
    process.execPath,
    // The preload forces listen() onto 127.0.0.1 (Portkey binds all
    // interfaces). --headless turns off its log UI, the cheapest setup.
    ['--import', path.join(BENCH_DIR, 'listen-loopback.mjs'), entry, `--port=${port}`, '--headless'],
    { cwd: pkgDir, env: { ...process.env, NODE_ENV: 'production' } },
  );
  const base = `http://${LOOPBACK}:${port}`;
  await waitFor('portkey', 20_000, async () => (await fetch(`${base}/`)).ok, child);
  return {
    child,
    version: pkg.version,
    target: {
      name: 'portkey',
      url: `${base}/v1/chat/completions`,
      headers: {
        'content-type': 'application/json',
        authorization: 'Bearer upstream-key',
        'x-portkey-provider': 'openai',
        'x-portkey-custom-host': `http://${LOOPBACK}:${upstreamPort}/v1`,
      },
      body: CHAT_REQUEST_BODY,
    },
  };
}

/** A hub arm and the request the load generator sends it. */
async function startHub(upstreamPort, timeoutS, cpuProfDir, options = {}) {
  const arm = await startHubArm(upstreamPort, timeoutS, cpuProfDir, options);
  return {
    ...arm,
    target: {
      name: options.name ?? 'hub',
      url: `${arm.base}/v1/chat/completions`,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${arm.key}` },
      body: CHAT_REQUEST_BODY,
    },
  };
}

// One request per arm before any load: a misconfigured arm must fail loudly,
// not produce a fast table of 4xx responses.
async function checkTarget(target) {
  const r = await httpJson('POST', target.url, { headers: target.headers, body: JSON.parse(target.body) });
  if (r.status !== 200 || r.json?.object !== 'chat.completion' || !r.json?.usage) {
    throw new Error(`${target.name}: unexpected response ${r.status}: ${r.text.slice(0, 500)}`);
  }
  return r.json;
}

// ----------------------------------------------------------- load runner --

function startLoadgen() {
  const child = fork(path.join(BENCH_DIR, 'loadgen.mjs'), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    // The generator's heap holds up to ~100k samples per job; give it room so
    // a GC pause in the generator does not show up as gateway latency.
    execArgv: ['--max-semi-space-size=32'],
  });
  children.push(child);
  const jobs = ipcJobs(child, 'load generator');
  return {
    child,
    ready: jobs.ready,
    run: jobs.run,
    close() {
      if (child.connected) child.send({ type: 'exit' });
    },
  };
}

async function runWrk(target, connections, seconds, tmpDir, nice) {
  const script = path.join(tmpDir, `${target.name}.lua`);
  const lua = [
    'wrk.method = "POST"',
    `wrk.body = ${JSON.stringify(target.body)}`,
    ...Object.entries(target.headers).map(
      ([k, v]) => `wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`,
    ),
  ].join('\n');
  writeFileSync(script, lua);
  const out = await new Promise((resolve, reject) => {
    const wrkArgs = [
      '-t1',
      `-c${connections}`,
      `-d${seconds}s`,
      '--timeout',
      '10s',
      '-s',
      script,
      target.url,
    ];
    // Through nice(1) so that wrk's threads, created at start, inherit the priority.
    const child = nice
      ? spawn('nice', ['-n', String(nice), 'wrk', ...wrkArgs], { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn('wrk', wrkArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let text = '';
    child.stdout.on('data', (c) => {
      text += c;
    });
    child.stderr.on('data', (c) => {
      text += c;
    });
    child.on('error', reject);
    child.on('exit', () => resolve(text));
  });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const socketErrors = /Socket errors:(.*)/.exec(out)?.[1]?.trim();
  if (!Number.isFinite(rps)) throw new Error(`wrk output not understood:\n${out}`);
  return {
    mode: 'closed',
    tool: 'wrk',
    target: target.name,
    connections,
    durationMs: seconds * 1000,
    throughput: rps,
    errors: non2xx || socketErrors ? { non2xx, socketErrors } : {},
    raw: out,
  };
}

// ------------------------------------------------------------ statistics --

function percentile(sorted, p) {
  if (sorted.length === 0) return Number.NaN;
  // Nearest rank: the smallest sample with at least p of all samples at or below it.
  const rank = Math.max(1, Math.ceil(p * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1];
}

function summarize(samplesUs) {
  const s = Float64Array.from(samplesUs).sort();
  let sum = 0;
  for (const v of s) sum += v;
  const ms = (v) => Math.round(v) / 1000;
  return {
    count: s.length,
    meanMs: s.length ? ms(sum / s.length) : Number.NaN,
    p50Ms: ms(percentile(s, 0.5)),
    p90Ms: ms(percentile(s, 0.9)),
    p99Ms: ms(percentile(s, 0.99)),
    p999Ms: ms(percentile(s, 0.999)),
    maxMs: ms(s.length ? s[s.length - 1] : Number.NaN),
  };
}

const fmt = (v, digits = 3) => (Number.isFinite(v) ? v.toFixed(digits) : 'n/a');
const fmtInt = (v) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : 'n/a');

// ------------------------------------------------------------------ main --

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.hubCpuProf) {
    mkdirSync(opts.out, { recursive: true });
    afterExitNote = `hub CPU profile (open in Chrome DevTools or speedscope): ${path.relative(process.cwd(), opts.out)}/CPU.*.cpuprofile`;
  }
  const rand = mulberry32(opts.seed);
  const startedAt = new Date();
  log(`targets ${opts.targets.join(', ')}; rates ${opts.rates.join(', ')} req/s; seed ${opts.seed}`);
  if (opts.maxTool === 'wrk') {
    try {
      execFileSync('wrk', ['--version'], { stdio: 'ignore' });
    } catch (err) {
      // wrk --version exits 1 but prints; only a missing binary is fatal.
      if (err.code === 'ENOENT')
        throw new Error('--max-tool=wrk but wrk is not installed (apt-get install -y wrk)');
    }
  }
  // only Portkey lives in bench/node_modules (the load generator's undici resolves from the root)
  if (opts.targets.includes('portkey')) ensureBenchDeps();
  const tmpDir = mkdtempSync(path.join(os.tmpdir(), 'gateway-bench-'));

  const upstream = await startUpstream();
  log(`fake upstream on ${LOOPBACK}:${upstream.port}`);
  const arms = {
    direct: {
      child: upstream.child,
      target: {
        name: 'direct',
        url: `http://${LOOPBACK}:${upstream.port}/v1/chat/completions`,
        headers: { 'content-type': 'application/json', authorization: 'Bearer upstream-key' },
        body: CHAT_REQUEST_BODY,
      },
    },
  };
  if (opts.targets.includes('proxy')) arms.proxy = await startProxy(upstream.port);
  if (opts.targets.includes('portkey')) {
    arms.portkey = await startPortkey(upstream.port);
    log(`portkey ${arms.portkey.version} on ${new URL(arms.portkey.target.url).host}`);
  }
  // Taken when the hub starts: the code it loads is the code measured, even if
  // the work tree changes during the run.
  const hubGit = opts.targets.includes('hub') ? gitDescribe() : undefined;
  if (opts.targets.includes('hub')) {
    arms.hub = await startHub(upstream.port, opts.hubStartTimeout, opts.hubCpuProf ? opts.out : undefined, {
      script: opts.hubScript,
    });
    log(`hub on ${arms.hub.base}`);
  }
  if (opts.targets.includes('traced')) {
    const sink = await startOtlpSink();
    arms.traced = await startHub(
      upstream.port,
      opts.hubStartTimeout,
      opts.hubCpuProf ? opts.out : undefined,
      {
        name: 'traced',
        script: opts.hubScript,
        env: { OTEL_EXPORTER_OTLP_ENDPOINT: sink, OTEL_TRACES_SAMPLER: 'always_on' },
      },
    );
    arms.traced.sink = sink;
    log(`traced hub on ${arms.traced.base}, exporting to ${sink}`);
  }
  if (opts.targets.includes('funded')) {
    arms.funded = await startHub(
      upstream.port,
      opts.hubStartTimeout,
      opts.hubCpuProf ? opts.out : undefined,
      {
        name: 'funded',
        script: opts.hubScript,
        funded: true,
      },
    );
    log(`funded hub (prepaid voucher, holds and rate limits on every call) on ${arms.funded.base}`);
  }
  if (opts.targets.includes('pg')) {
    arms.pg = await startHub(upstream.port, opts.hubStartTimeout, opts.hubCpuProf ? opts.out : undefined, {
      name: 'pg',
      script: opts.hubScript,
      env: { KAIHUB_DATABASE: await createBenchDatabase() },
    });
    log(`hub on PostgreSQL, nothing funded, on ${arms.pg.base}`);
  }
  if (opts.targets.includes('postgres')) {
    arms.postgres = await startHub(
      upstream.port,
      opts.hubStartTimeout,
      opts.hubCpuProf ? opts.out : undefined,
      {
        name: 'postgres',
        script: opts.hubScript,
        funded: true,
        env: { KAIHUB_DATABASE: await createBenchDatabase() },
      },
    );
    log(`funded hub on PostgreSQL (no Redis) on ${arms.postgres.base}`);
  }
  if (opts.targets.includes('shared')) {
    const database = await createBenchDatabase();
    arms.shared = await startHub(
      upstream.port,
      opts.hubStartTimeout,
      opts.hubCpuProf ? opts.out : undefined,
      {
        name: 'shared',
        script: opts.hubScript,
        funded: true,
        env: {
          KAIHUB_DATABASE: database,
          REDIS_URL: process.env.KAIHUB_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379',
          KAIHUB_REDIS_PREFIX: `kaihub-bench-${process.pid}`,
        },
      },
    );
    log(`shared hub (PostgreSQL, holds and limits in Redis) on ${arms.shared.base}`);
  }
  let baselineGit;
  if (opts.targets.includes('baseline')) {
    const tree = prepareBaseline(opts.baseline);
    baselineGit = tree.commit;
    // set up like the arm it is compared with: the same funding, database engine and Redis
    const as = opts.baselineAs;
    const env =
      as === 'postgres' || as === 'pg'
        ? { KAIHUB_DATABASE: await createBenchDatabase() }
        : as === 'shared'
          ? {
              KAIHUB_DATABASE: await createBenchDatabase(),
              REDIS_URL: process.env.KAIHUB_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379',
              KAIHUB_REDIS_PREFIX: `kaihub-bench-baseline-${process.pid}`,
            }
          : undefined;
    arms.baseline = await startHub(upstream.port, opts.hubStartTimeout, undefined, {
      root: tree.dir,
      name: 'baseline',
      ...(as !== 'hub' && as !== 'pg' && { funded: true }),
      ...(env !== undefined && { env }),
    });
    log(`baseline hub at ${opts.baseline} (${baselineGit}), set up as ${as}, on ${arms.baseline.base}`);
  }
  for (const name of opts.targets) await checkTarget(arms[name].target);

  const loadgen = startLoadgen();
  await loadgen.ready;
  if (opts.nice) {
    for (const c of children) if (c.exitCode === null) reniceTree(c.pid, opts.nice);
    log(`benchmark processes reniced to ${opts.nice}`);
  }

  // CPU seconds of every process during a job, to tell a saturated gateway
  // from a saturated generator or upstream on this small machine.
  const cpuOf = () => {
    // A wrk run is a child that has exited (been reaped) by the time we look:
    // its CPU time shows up in this process's cutime/cstime instead.
    const out = {
      loadgen: treeCpuSeconds(loadgen.child.pid) + reapedChildrenCpuSeconds(),
      upstream: treeCpuSeconds(upstream.child.pid),
    };
    for (const n of ['proxy', ...HUB_ARMS, 'portkey'])
      if (arms[n]) out[n] = treeCpuSeconds(arms[n].child.pid);
    return out;
  };
  // Every 200 each hub returned, to check afterwards that each one was metered.
  const hubOk = {};
  for (const n of HUB_ARMS) if (arms[n]) hubOk[n] = { served: 1, exact: true }; // the check request
  const countHub = (r) => {
    const count = hubOk[r.target];
    if (!count) return r;
    if (Number.isFinite(r.ok)) count.served += r.ok;
    else count.exact = false; // wrk reports no count of successes
    return r;
  };
  const measured = async (job, seconds) => {
    const before = cpuOf();
    const sysBefore = systemCpuSeconds();
    const t0 = performance.now();
    const result = countHub(await job());
    const wall = Math.max((performance.now() - t0) / 1000, seconds);
    const after = cpuOf();
    const sysAfter = systemCpuSeconds();
    result.cpuPercent = {};
    let ours = 0;
    for (const k of Object.keys(after)) {
      if (before[k] !== undefined && after[k] !== undefined) {
        ours += after[k] - before[k];
        result.cpuPercent[k] = Math.round(((after[k] - before[k]) / wall) * 100);
      }
    }
    if (sysBefore && sysAfter) {
      // Includes this orchestrator (small) and everything else on the machine.
      result.cpuPercent.other = Math.max(
        0,
        Math.round(((sysAfter.busy - sysBefore.busy - ours) / wall) * 100),
      );
      result.cpuPercent.steal = Math.round(((sysAfter.steal - sysBefore.steal) / wall) * 100);
    }
    return result;
  };

  if (opts.waitQuiet > 0) {
    // Our processes are idle here, so busy time is (almost) all other work.
    const deadline = Date.now() + opts.waitQuiet * 1000;
    for (;;) {
      const a = systemCpuSeconds();
      await sleep(2_000);
      const b = systemCpuSeconds();
      const busy = a && b ? ((b.busy - a.busy) / 2) * 100 : 0;
      if (busy < 25) {
        log(`machine quiet (${Math.round(busy)} % CPU busy)`);
        break;
      }
      if (Date.now() > deadline) {
        log(`machine still busy (${Math.round(busy)} % CPU) after ${opts.waitQuiet} s: measuring anyway`);
        break;
      }
      log(`waiting for a quiet machine: ${Math.round(busy)} % CPU busy`);
    }
  }

  // Warm-up: JIT, connection pools, the hub's caches and prepared statements.
  for (const name of opts.targets) {
    log(`warm-up ${name}`);
    countHub(
      await loadgen.run({
        mode: 'closed',
        target: arms[name].target,
        connections: 16,
        durationMs: opts.warmupSeconds * 1000,
      }),
    );
    countHub(
      await loadgen.run({
        mode: 'open',
        target: arms[name].target,
        rate: Math.max(...opts.rates),
        durationMs: 1000,
      }),
    );
  }

  // Latency: fixed arrival rate, rounds interleaved with a fresh random arm
  // order each round so slow drifts of the machine hit every arm alike.
  const latency = {};
  for (const rate of opts.rates) {
    latency[rate] = Object.fromEntries(
      opts.targets.map((n) => [n, { rounds: [], service: [], response: [] }]),
    );
    for (let round = 0; round < opts.rounds; round++) {
      const order = shuffled(opts.targets, rand);
      for (const name of order) {
        const r = await measured(
          () =>
            loadgen.run({
              mode: 'open',
              target: arms[name].target,
              rate,
              durationMs: opts.roundSeconds * 1000,
            }),
          opts.roundSeconds,
        );
        const slot = latency[rate][name];
        // A loop, not push(...xs): long rounds would exceed the argument limit.
        for (const v of r.serviceUs) slot.service.push(v);
        for (const v of r.responseUs) slot.response.push(v);
        const { serviceUs, responseUs, ...rest } = r;
        slot.rounds.push({ round, ...rest, service: summarize(serviceUs), response: summarize(responseUs) });
        log(
          `${rate} req/s round ${round + 1}/${opts.rounds} ${name}: p50 ${fmt(slot.rounds.at(-1).service.p50Ms)} ms, p99 ${fmt(slot.rounds.at(-1).service.p99Ms)} ms, ok ${r.ok}/${r.planned}${r.dropped ? `, dropped ${r.dropped}` : ''}, other cpu ${r.cpuPercent.other ?? '?'}%`,
        );
        await sleep(200);
      }
    }
  }

  // Maximum throughput: closed loop with many connections, interleaved too.
  const throughput = Object.fromEntries(opts.targets.map((n) => [n, []]));
  for (let round = 0; round < opts.throughputRounds; round++) {
    for (const name of shuffled(opts.targets, rand)) {
      const r = await measured(
        () =>
          opts.maxTool === 'wrk'
            ? runWrk(arms[name].target, opts.connections, opts.throughputSeconds, tmpDir, opts.nice)
            : loadgen.run({
                mode: 'closed',
                target: arms[name].target,
                connections: opts.connections,
                durationMs: opts.throughputSeconds * 1000,
              }),
        opts.throughputSeconds,
      );
      throughput[name].push(r);
      log(
        `max throughput round ${round + 1}/${opts.throughputRounds} ${name}: ${fmtInt(r.throughput)} req/s, cpu% ${JSON.stringify(r.cpuPercent)}`,
      );
      await sleep(500);
    }
  }
  loadgen.close();

  // "With metering on" must be true, not assumed: ask the hub how many
  // requests it recorded. The journal may commit in batches, so wait for the
  // count to settle.
  const metering = {};
  for (const name of Object.keys(hubOk)) {
    const arm = arms[name];
    let recorded = -1;
    for (let i = 0; i < 25; i++) {
      const r = await httpJson('GET', `${arm.base}/admin/v1/usage`, {
        headers: { authorization: `Bearer ${arm.adminToken}` },
      }).catch(() => undefined);
      const n = Number(r?.json?.totals?.requests);
      if (Number.isFinite(n) && n === recorded) break;
      if (Number.isFinite(n)) recorded = n;
      await sleep(200);
    }
    const { served, exact } = hubOk[name];
    metering[name] = { served, servedExact: exact, recorded };
    log(`${name} metering: ${recorded} usage records for ${served}${exact ? '' : '+'} successful requests`);
  }
  // the spans the collector received, once the exporter's batches have settled: a call makes several,
  // and spans dropped at saturation (the export queue full) show as fewer a call
  if (arms.traced?.sink && metering.traced) {
    let spans = -1;
    for (let i = 0; i < 40; i++) {
      const r = await httpJson('GET', `${arms.traced.sink}/count`).catch(() => undefined);
      const n = Number(r?.json?.spans);
      if (Number.isFinite(n) && n === spans) break;
      if (Number.isFinite(n)) spans = n;
      await sleep(500);
    }
    metering.traced.spans = spans;
    log(`traced spans received by the collector: ${spans} for ${metering.traced.served} successful requests`);
  }

  // ---------------------------------------------------------------- report --
  const summary = { latency: {}, throughput: {}, metering };
  for (const rate of opts.rates) {
    summary.latency[rate] = {};
    for (const name of opts.targets) {
      const slot = latency[rate][name];
      const errors = slot.rounds.reduce(
        (n, r) => n + Object.values(r.errors).reduce((a, e) => a + e.count, 0),
        0,
      );
      summary.latency[rate][name] = {
        service: summarize(slot.service),
        response: summarize(slot.response),
        errors,
        dropped: slot.rounds.reduce((n, r) => n + r.dropped + r.unfinished, 0),
        maxLagMs: Math.max(...slot.rounds.map((r) => r.maxLagUs)) / 1000,
        achievedRate: median(slot.rounds.map((r) => r.achievedRate)),
        completionRate: median(slot.rounds.map((r) => r.completionRate)),
      };
      const s = summary.latency[rate][name];
      // Over capacity, an open loop's queue (and so its latency) grows for as
      // long as the round lasts: the figure then describes the round length,
      // not the gateway, and is flagged rather than compared.
      s.saturated = s.dropped > 0 || s.completionRate < rate * 0.95;
    }
    const d = summary.latency[rate].direct;
    for (const name of opts.targets.filter((n) => n !== 'direct')) {
      const g = summary.latency[rate][name];
      // Per-round deltas: arm and direct measured minutes apart at most, so
      // their spread is an honest picture of the noise on this machine.
      const rounds = latency[rate][name].rounds;
      const direct = latency[rate].direct.rounds;
      const dP50 = rounds.map((r, i) => r.service.p50Ms - direct[i].service.p50Ms);
      const dP99 = rounds.map((r, i) => r.service.p99Ms - direct[i].service.p99Ms);
      g.addedP50Ms = g.service.p50Ms - d.service.p50Ms;
      g.addedP99Ms = g.service.p99Ms - d.service.p99Ms;
      g.addedP50PerRoundMs = { min: Math.min(...dP50), median: median(dP50), max: Math.max(...dP50) };
      g.addedP99PerRoundMs = { min: Math.min(...dP99), median: median(dP99), max: Math.max(...dP99) };
    }
  }
  for (const name of opts.targets) {
    const rs = throughput[name].map((r) => r.throughput);
    summary.throughput[name] = {
      medianRps: median(rs),
      bestRps: Math.max(...rs),
      rounds: rs,
      errors: throughput[name].reduce(
        (n, r) =>
          n +
          Object.values(r.errors).reduce((a, e) => a + (typeof e === 'object' ? e.count : Number(e) || 0), 0),
        0,
      ),
      cpuPercent: throughput[name].map((r) => r.cpuPercent),
    };
  }
  const others = [
    ...Object.values(latency).flatMap((byArm) =>
      Object.values(byArm).flatMap((x) => x.rounds.map((r) => r.cpuPercent?.other)),
    ),
    ...Object.values(throughput).flatMap((rs) => rs.map((r) => r.cpuPercent?.other)),
  ].filter((v) => v !== undefined);
  summary.otherCpuPercent = { median: median(others), max: Math.max(...others) };
  const t = summary.throughput;
  // Offered rate over the arm's own maximum: latency near 100 % is queueing,
  // and comparing arms at very different loads needs saying so.
  for (const rate of opts.rates) {
    for (const name of opts.targets) summary.latency[rate][name].utilization = rate / t[name].medianRps;
  }
  if (t.hub && t.portkey) summary.hubOverPortkey = t.hub.medianRps / t.portkey.medianRps;
  const versus = opts.baselineAs;
  if (t[versus] && t.baseline) {
    // the two versions side by side: what the change between them costs (or saves)
    summary.hubVsBaseline = {
      arm: versus,
      throughputRatio: t[versus].medianRps / t.baseline.medianRps,
      latency: Object.fromEntries(
        opts.rates.map((rate) => {
          const h = summary.latency[rate][versus];
          const b = summary.latency[rate].baseline;
          return [
            rate,
            { p50DeltaMs: h.service.p50Ms - b.service.p50Ms, p99DeltaMs: h.service.p99Ms - b.service.p99Ms },
          ];
        }),
      ),
    };
  }
  // an arm against the same hub without what it adds: what tracing, holds and limits, or Redis cost
  const difference = (arm, base) => ({
    throughputRatio: t[arm].medianRps / t[base].medianRps,
    latency: Object.fromEntries(
      opts.rates.map((rate) => {
        const h = summary.latency[rate][arm].service;
        const b = summary.latency[rate][base].service;
        return [rate, { p50DeltaMs: h.p50Ms - b.p50Ms, p99DeltaMs: h.p99Ms - b.p99Ms }];
      }),
    ),
  });
  for (const [key, arm, base] of COMPARISONS) if (t[arm] && t[base]) summary[key] = difference(arm, base);
  const topRate = opts.rates.includes(1000) ? 1000 : Math.max(...opts.rates);
  if (summary.latency[topRate]?.hub) {
    const h = summary.latency[topRate].hub;
    summary.targets = {
      rate: topRate,
      addedP50: { limitMs: 0.25, valueMs: h.addedP50Ms, pass: h.addedP50Ms <= 0.25 },
      addedP99: { limitMs: 1, valueMs: h.addedP99Ms, pass: h.addedP99Ms <= 1 },
      throughputRatio:
        summary.hubOverPortkey !== undefined
          ? { limit: 10, value: summary.hubOverPortkey, pass: summary.hubOverPortkey >= 10 }
          : undefined,
    };
  }

  const lines = [];
  lines.push(
    `Hub ${arms.hub ? (hubGit ?? 'unknown commit') : 'not run'}${opts.hubScript !== 'start' ? ` (npm run ${opts.hubScript})` : ''}${arms.baseline ? `; baseline hub ${opts.baseline} (${baselineGit})` : ''}; Portkey ${arms.portkey?.version ?? 'not run'}; Node ${process.version}; ${os.availableParallelism()} × ${os.cpus()[0]?.model ?? 'CPU'}; seed ${opts.seed}${opts.nice ? `; nice ${opts.nice}` : ''}.`,
  );
  lines.push('');
  lines.push(
    `### Latency (fixed arrival rate, ${opts.rounds} × ${opts.roundSeconds} s per arm and rate, interleaved)`,
  );
  lines.push('');
  lines.push(
    '| arm | rate (req/s) | load | p50 (ms) | p99 (ms) | added p50 (ms) | added p99 (ms) | per-round added p50 (ms) | per-round added p99 (ms) | errors |',
  );
  lines.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const rate of opts.rates) {
    for (const name of opts.targets) {
      const s = summary.latency[rate][name];
      const range = (r) => (r ? `${fmt(r.min)} … ${fmt(r.max)}` : '—');
      const sat = s.saturated ? ` (saturated: ${fmtInt(s.completionRate)} req/s served)` : '';
      lines.push(
        `| ${name}${sat} | ${rate} | ${fmt(s.utilization * 100, 0)} % | ${fmt(s.service.p50Ms)} | ${fmt(s.service.p99Ms)} | ${name === 'direct' ? '—' : fmt(s.addedP50Ms)} | ${name === 'direct' ? '—' : fmt(s.addedP99Ms)} | ${range(s.addedP50PerRoundMs)} | ${range(s.addedP99PerRoundMs)} | ${s.errors + s.dropped} |`,
      );
    }
  }
  lines.push('');
  lines.push(
    `### Maximum throughput (closed loop, ${opts.connections} connections, ${opts.maxTool}, median of ${opts.throughputRounds} × ${opts.throughputSeconds} s)`,
  );
  lines.push('');
  lines.push(
    '| arm | req/s (median) | req/s (best) | rounds | median CPU % (loadgen / upstream / gateway / other) | errors |',
  );
  lines.push('| --- | ---: | ---: | --- | --- | ---: |');
  for (const name of opts.targets) {
    const s = summary.throughput[name];
    const cpu = (k) => fmtInt(median(s.cpuPercent.map((c) => c[k]).filter((v) => v !== undefined)));
    const cpuCell = `${cpu('loadgen')} / ${cpu('upstream')} / ${name === 'direct' ? '—' : cpu(name)} / ${cpu('other')}`;
    lines.push(
      `| ${name} | ${fmtInt(s.medianRps)} | ${fmtInt(s.bestRps)} | ${s.rounds.map(fmtInt).join(', ')} | ${cpuCell} | ${s.errors} |`,
    );
  }
  lines.push('');
  if (summary.hubOverPortkey !== undefined)
    lines.push(`Hub / Portkey maximum throughput: **${fmt(summary.hubOverPortkey, 1)}×**`);
  if (t.hub) lines.push(`Hub / direct maximum throughput: ${fmt(t.hub.medianRps / t.direct.medianRps, 2)}`);
  if (t.hub && t.proxy) {
    const over = opts.rates
      .map((rate) => {
        const h = summary.latency[rate].hub.service;
        const b = summary.latency[rate].proxy.service;
        return `${rate} req/s p50 ${fmt(h.p50Ms - b.p50Ms)} ms, p99 ${fmt(h.p99Ms - b.p99Ms)} ms`;
      })
      .join('; ');
    lines.push(
      `Hub over the bare proxy (the stack's floor): ${over}. Hub / bare proxy maximum throughput: ${fmt(t.hub.medianRps / t.proxy.medianRps, 2)}.`,
    );
  }
  if (summary.hubVsBaseline) {
    const v = summary.hubVsBaseline;
    const deltas = opts.rates
      .map(
        (rate) =>
          `${rate} req/s p50 ${fmt(v.latency[rate].p50DeltaMs)} ms, p99 ${fmt(v.latency[rate].p99DeltaMs)} ms`,
      )
      .join('; ');
    const arm = v.arm === 'hub' ? 'Hub' : `${v.arm[0].toUpperCase()}${v.arm.slice(1)} arm`;
    lines.push(
      `${arm} − baseline (${baselineGit}, set up the same) latency: ${deltas}. ${arm} / baseline maximum throughput: ${fmt(v.throughputRatio, 3)}.`,
    );
  }
  for (const [key, arm, base, label] of COMPARISONS) {
    const v = summary[key];
    if (!v) continue;
    const deltas = opts.rates
      .map(
        (rate) =>
          `${rate} req/s p50 ${fmt(v.latency[rate].p50DeltaMs)} ms, p99 ${fmt(v.latency[rate].p99DeltaMs)} ms`,
      )
      .join('; ');
    lines.push(
      `${label}: ${deltas}. ${arm[0].toUpperCase()}${arm.slice(1)} / ${base} maximum throughput: ${fmt(v.throughputRatio, 3)}.`,
    );
  }
  if (t.portkey)
    lines.push(`Portkey / direct maximum throughput: ${fmt(t.portkey.medianRps / t.direct.medianRps, 2)}`);
  for (const [name, m] of Object.entries(metering)) {
    lines.push(
      `${{ hub: 'Hub', traced: 'Traced hub', funded: 'Funded hub', pg: 'PostgreSQL hub (not funded)', postgres: 'PostgreSQL hub', shared: 'Shared hub' }[name] ?? 'Baseline hub'} metering: ${fmtInt(m.recorded)} usage records for ${fmtInt(m.served)}${m.servedExact ? '' : '+'} successful requests.`,
    );
  }
  if (metering.traced?.spans !== undefined)
    lines.push(
      `Traced hub: ${fmtInt(metering.traced.spans)} spans received by the collector, ${fmt(metering.traced.spans / metering.traced.recorded, 2)} a recorded call (a plain call one deployment served makes 5: the call, admission, guard, its attempt, metering; fewer a call: spans were dropped).`,
    );
  lines.push(
    `CPU taken by other work on the machine during measurements: median ${fmtInt(summary.otherCpuPercent.median)} %, max ${fmtInt(summary.otherCpuPercent.max)} % (of ${os.availableParallelism() * 100} %).`,
  );
  if (summary.targets) {
    const tg = summary.targets;
    const mark = (p) => (p ? 'met' : '**missed**');
    lines.push('');
    lines.push(
      `Targets at ${tg.rate} req/s: added p50 ${fmt(tg.addedP50.valueMs)} ms ≤ 0.25 ms: ${mark(tg.addedP50.pass)}; added p99 ${fmt(tg.addedP99.valueMs)} ms ≤ 1 ms: ${mark(tg.addedP99.pass)}${tg.throughputRatio ? `; throughput ≥ 10× Portkey (${fmt(tg.throughputRatio.value, 1)}×): ${mark(tg.throughputRatio.pass)}` : ''}.`,
    );
  }
  const table = lines.join('\n');

  const meta = {
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    command: `node bench/gateway-overhead.mjs ${process.argv.slice(2).join(' ')}`.trim(),
    options: { ...opts, out: path.relative(REPO_ROOT, opts.out) },
    machine: {
      nproc: os.availableParallelism(),
      cpuModel: os.cpus()[0]?.model,
      memGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
      node: process.version,
      platform: `${os.platform()} ${os.release()}`,
      loadavgAtEnd: os.loadavg(),
    },
    versions: { portkey: arms.portkey?.version, hub: arms.hub?.version, hubGit, baselineGit },
  };
  mkdirSync(opts.out, { recursive: true });
  const file = path.join(opts.out, `gateway-overhead-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(
    file,
    `${JSON.stringify({ meta, summary, latencyRounds: mapValues(latency, (byArm) => mapValues(byArm, (s) => s.rounds)), throughputRounds: throughput, table }, null, 2)}\n`,
  );
  process.stdout.write(`${table}\n`);
  log(`raw results: ${path.relative(process.cwd(), file)}`);
  rmSync(tmpDir, { recursive: true, force: true });
}

function mapValues(obj, fn) {
  return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, fn(v)]));
}

// PostgreSQL databases made for the shared arm, dropped at the end
const benchDatabases = [];
const POSTGRES_ADMIN_URL = process.env.KAIHUB_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
async function createBenchDatabase() {
  const { default: pg } = await import('pg');
  const name = `kaihub_bench_${process.pid}_${benchDatabases.length}`;
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  benchDatabases.push(name);
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}
async function dropBenchDatabases() {
  if (benchDatabases.length === 0) return;
  const { default: pg } = await import('pg');
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await admin.connect();
  for (const name of benchDatabases) await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.end();
}

let exiting = false;
let afterExitNote;
async function cleanupAndExit(code) {
  if (exiting) return;
  exiting = true;
  await stopAll();
  await dropBenchDatabases();
  if (afterExitNote) log(afterExitNote);
  for (const c of children) if (c.tmpDir) rmSync(c.tmpDir, { recursive: true, force: true });
  removeWorktrees();
  process.exit(code);
}
process.on('SIGINT', () => cleanupAndExit(130));
process.on('SIGTERM', () => cleanupAndExit(143));

main().then(
  () => cleanupAndExit(0),
  (err) => {
    log(`failed: ${err.stack ?? err}`);
    for (const c of children) {
      if (c.logTail?.length) log(`last output of ${c.benchName}:\n${c.logTail.join('').slice(-3000)}`);
    }
    cleanupAndExit(1);
  },
);
