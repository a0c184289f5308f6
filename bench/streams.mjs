#!/usr/bin/env node
// Many concurrent streams through one hub to a slow supplier: how long after the supplier's first byte
// each client's first byte comes, and what the hub's memory holds with them all open.
//
// The supplier (bench/fake-upstream.mjs) answers every stream with a first chunk at once, stamped with
// its send time, then one chunk a second for 12 s. The client (bench/stream-client.mjs, its own
// process) opens --streams streams at an even rate over --ramp-seconds, so that they are all open
// together for the last seconds, and reads each to its end. Per stream: first-byte delay = client's
// first content byte − the supplier's send time of it (both epoch clocks of this machine).
//
// Arms, one after the other: direct (client → supplier: the floor), hub, and with --baseline=<ref> the
// hub at another commit. The hub's RSS (/proc/<pid>/status VmRSS) is sampled every 200 ms: before the
// run (idle, after a warm-up), at the end of the ramp (all streams open) and its peak during the run.
//
// Run: node bench/streams.mjs [--streams=2000] [--baseline=<ref>]    (loopback only; bounded in time)
import { fork } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { log, positiveOption, rawOptions } from './cli.mjs';
import { gitDescribe, prepareBaseline, removeWorktrees, startHub } from './hub-arm.mjs';
import {
  BENCH_DIR,
  children,
  ipcJobs,
  LOOPBACK,
  REPO_ROOT,
  sleep,
  startListening,
  stopAll,
} from './processes.mjs';

const HELP = `Usage: node bench/streams.mjs [options]

  --streams=2000            streams open together at the end of the ramp
  --ramp-seconds=10         the streams are opened evenly over this time
  --chunks=12               chunks per stream, one a second (the first at once)
  --prompt-chars=5          characters of the user message (Korean text; 5 is "안녕하세요")
  --targets=direct,hub      arms (also proxy: bench/bare-proxy.mjs piping streams through, the floor of
                            node:http + undici; and baseline, with --baseline=<git ref>)
  --baseline=<git ref>      the hub at that commit, from a temporary worktree
  --hub-script=start        the npm script whose node flags the hub arm gets (e.g. start:lean)
  --hub-env=K=V[,K=V]       environment the hub arm alone gets (e.g. MALLOC_ARENA_MAX=2), against a
                            baseline without it
  --hub-start-timeout=90    seconds to wait for a hub's /healthz
  --out=bench/results       where the raw JSON goes
`;

function parseArgs(argv) {
  const raw = rawOptions(argv, HELP);
  const num = (k, d) => positiveOption(raw, k, d);
  const targets = (raw.targets ?? 'direct,hub').split(',').filter(Boolean);
  if (raw.baseline !== undefined && !targets.includes('baseline')) targets.push('baseline');
  if (targets.includes('baseline') && (raw.baseline === undefined || raw.baseline === 'true'))
    throw new Error('the baseline arm needs --baseline=<git ref>');
  const opts = {
    streams: num('streams', 2000),
    rampSeconds: num('ramp-seconds', 10),
    chunks: num('chunks', 12),
    promptChars: num('prompt-chars', 5),
    targets,
    baseline: raw.baseline,
    hubStartTimeout: num('hub-start-timeout', 90),
    hubScript: raw['hub-script'] ?? 'start',
    hubEnv: Object.fromEntries(
      (raw['hub-env'] ?? '')
        .split(',')
        .filter(Boolean)
        .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
    ),
    out: path.resolve(REPO_ROOT, raw.out ?? 'bench/results'),
  };
  if (!(opts.streams > 0 && opts.streams <= 20_000)) throw new Error('--streams must be 1…20000');
  return opts;
}

const rssMiB = (pid) => {
  try {
    const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
    return Math.round((kb / 1024) * 10) / 10;
  } catch {
    return Number.NaN;
  }
};

function percentile(sorted, p) {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

const PROMPT = '안녕하세요. 오늘 서울의 날씨와 교통 상황을 알려 주세요. ';
const body = (stream, chars) =>
  JSON.stringify({
    model: 'bench-model',
    messages: [{ role: 'user', content: PROMPT.repeat(Math.ceil(chars / PROMPT.length)).slice(0, chars) }],
    stream,
  });

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const startedAt = new Date();
  const upstream = await startListening('upstream', 'fake-upstream.mjs', [`--chunks=${opts.chunks}`]);
  const arms = {
    direct: {
      target: {
        url: `http://${LOOPBACK}:${upstream.port}/v1/chat/completions`,
        headers: { 'content-type': 'application/json' },
        body: body(true, opts.promptChars),
      },
    },
  };
  if (opts.targets.includes('proxy')) {
    const proxy = await startListening('proxy', 'bare-proxy.mjs', [
      `--upstream=http://${LOOPBACK}:${upstream.port}`,
    ]);
    arms.proxy = {
      child: proxy.child,
      target: {
        url: `http://${LOOPBACK}:${proxy.port}/v1/chat/completions`,
        headers: { 'content-type': 'application/json' },
        body: body(true, opts.promptChars),
      },
    };
  }
  const hubGit = opts.targets.includes('hub') ? gitDescribe() : undefined;
  const hubOptions = {
    // 2,000 streams of one organisation: the per-organisation cap must not be what is measured
    env: { KAIHUB_ORG_MAX_CONCURRENT: String(opts.streams + 100) },
  };
  if (opts.targets.includes('hub'))
    arms.hub = await startHub(upstream.port, opts.hubStartTimeout, undefined, {
      ...hubOptions,
      env: { ...hubOptions.env, ...opts.hubEnv },
      script: opts.hubScript,
    });
  let baselineGit;
  if (opts.targets.includes('baseline')) {
    const tree = prepareBaseline(opts.baseline);
    baselineGit = tree.commit;
    arms.baseline = await startHub(upstream.port, opts.hubStartTimeout, undefined, {
      ...hubOptions,
      root: tree.dir,
      name: 'baseline',
    });
  }
  for (const name of ['hub', 'baseline']) {
    const arm = arms[name];
    if (!arm) continue;
    arm.target = {
      url: `${arm.base}/v1/chat/completions`,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${arm.key}` },
      body: body(true, opts.promptChars),
    };
  }

  const client = fork(path.join(BENCH_DIR, 'stream-client.mjs'), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.push(client);
  const jobs = ipcJobs(client, 'stream client');
  await jobs.ready;
  const deadlineMs = (opts.rampSeconds + opts.chunks + 60) * 1000;

  const report = {};
  for (const name of opts.targets) {
    const arm = arms[name];
    // warm-up: a few streams, so the first measured ones do not pay for JIT and pools
    await jobs.run({ target: arm.target, streams: 20, rampSeconds: 1, deadlineMs });
    const pid = arm.child?.pid;
    const idle = pid ? rssMiB(pid) : Number.NaN;
    let peak = idle;
    let peakAtS = 0;
    const sampleStart = Date.now();
    const sampler = pid
      ? setInterval(() => {
          const v = rssMiB(pid);
          if (v > peak) {
            peak = v;
            peakAtS = (Date.now() - sampleStart) / 1000;
          }
        }, 200)
      : undefined;
    // every stream open at once: the end of the ramp (the peak itself tends to come later, as the
    // streams end and their records are metered, before a full collection)
    let open = Number.NaN;
    const openTimer = pid
      ? setTimeout(() => {
          open = rssMiB(pid);
        }, opts.rampSeconds * 1000)
      : undefined;
    log(`${name}: ${opts.streams} streams over ${opts.rampSeconds} s`);
    const { results } = await jobs.run({
      target: arm.target,
      streams: opts.streams,
      rampSeconds: opts.rampSeconds,
      deadlineMs,
    });
    clearInterval(sampler);
    clearTimeout(openTimer);
    const delays = results
      .filter((r) => r.firstByteAt !== null)
      .map((r) => r.firstByteAt - r.supplierFirstAt)
      .sort((a, b) => a - b);
    const firstByte = results
      .filter((r) => r.firstByteAt !== null)
      .map((r) => r.firstByteAt - r.sentAt)
      .sort((a, b) => a - b);
    const errors = {};
    for (const r of results) {
      if (r.done && r.status === 200) continue;
      const k = r.error ?? `status ${r.status}${r.done ? '' : ', no [DONE]'}`;
      errors[k] = (errors[k] ?? 0) + 1;
    }
    report[name] = {
      completed: results.filter((r) => r.done && r.status === 200).length,
      errors,
      afterSupplierMs: {
        p50: percentile(delays, 50),
        p99: percentile(delays, 99),
        max: delays.at(-1) ?? Number.NaN,
      },
      firstByteMs: { p50: percentile(firstByte, 50), p99: percentile(firstByte, 99) },
      rssMiB: pid ? { idle, open, peak, peakAtS } : undefined,
    };
    log(`${name}: ${JSON.stringify(report[name])}`);
    await sleep(2000);
  }

  const f = (v) => (Number.isFinite(v) ? v.toFixed(1) : '—');
  const lines = [
    `Hub ${hubGit ?? 'not run'}${opts.hubScript !== 'start' ? ` (npm run ${opts.hubScript})` : ''}${
      Object.keys(opts.hubEnv).length > 0
        ? ` (with ${Object.entries(opts.hubEnv)
            .map(([k, v]) => `${k}=${v}`)
            .join(' ')})`
        : ''
    }${baselineGit ? `; baseline ${opts.baseline} (${baselineGit})` : ''}; ${opts.streams} streams opened over ${opts.rampSeconds} s, ${opts.chunks} chunks one a second${opts.promptChars !== 5 ? `, prompts of ${opts.promptChars} characters` : ''}; Node ${process.version}; ${os.availableParallelism()} × ${os.cpus()[0]?.model ?? 'CPU'}.`,
    '',
    '| arm | completed | first byte after the supplier’s: p50 / p99 / max (ms) | first byte after sending: p50 / p99 (ms) | RSS idle → all open → peak (MiB) | errors |',
    '| --- | ---: | --- | --- | --- | --- |',
  ];
  for (const name of opts.targets) {
    const r = report[name];
    lines.push(
      `| ${name} | ${r.completed} / ${opts.streams} | ${f(r.afterSupplierMs.p50)} / ${f(r.afterSupplierMs.p99)} / ${f(r.afterSupplierMs.max)} | ${f(r.firstByteMs.p50)} / ${f(r.firstByteMs.p99)} | ${r.rssMiB ? `${f(r.rssMiB.idle)} → ${f(r.rssMiB.open)} → ${f(r.rssMiB.peak)} (at ${f(r.rssMiB.peakAtS)} s)` : '—'} | ${
        Object.entries(r.errors)
          .map(([k, n]) => `${k}: ${n}`)
          .join(', ') || '0'
      } |`,
    );
  }
  const table = lines.join('\n');
  mkdirSync(opts.out, { recursive: true });
  const file = path.join(opts.out, `streams-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(
    file,
    `${JSON.stringify({ startedAt: startedAt.toISOString(), command: `node bench/streams.mjs ${process.argv.slice(2).join(' ')}`, options: opts, hubGit, baselineGit, report, table }, null, 2)}\n`,
  );
  process.stdout.write(`${table}\n`);
  log(`raw results: ${path.relative(process.cwd(), file)}`);
}

let exiting = false;
async function cleanupAndExit(code) {
  if (exiting) return;
  exiting = true;
  await stopAll();
  removeWorktrees();
  process.exit(code);
}
process.on('SIGINT', () => cleanupAndExit(130));
process.on('SIGTERM', () => cleanupAndExit(143));
main().then(
  () => cleanupAndExit(0),
  (err) => {
    log(`failed: ${err.stack ?? err}`);
    cleanupAndExit(1);
  },
);
