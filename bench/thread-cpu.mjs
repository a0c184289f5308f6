#!/usr/bin/env node
// CPU per request of each thread of the hub under a closed loop: the event loop, the journal applier,
// V8's and libuv's helpers — what a CPU profile of one thread cannot say (it counts time a thread was
// preempted as its own). Read from /proc/<pid>/task/*/stat before and after each round (Linux only).
// Run: node bench/thread-cpu.mjs [--seconds=8] [--rounds=3] [--connections=64] [--hub-script=start]
//        [--traced] [--cpu-prof=<dir>]
import { readdirSync, readFileSync } from 'node:fs';
import { Pool } from 'undici';
import { positiveOption, rawOptions } from './cli.mjs';
import { closedLoop, startHub, startOtlpSink } from './hub-arm.mjs';
import { startListening, stopAll } from './processes.mjs';

const args = rawOptions(
  process.argv.slice(2),
  `Usage: node bench/thread-cpu.mjs [options]

  --seconds=8          length of a measured round (after 3 s of warm-up)
  --rounds=3           measured rounds
  --connections=64     requests in flight, each sent when the one before it is answered
  --hub-script=start   the npm script whose node flags the hub gets
  --traced             every call traced, exported over OTLP/HTTP to a collector sink in its own process
  --cpu-prof=<dir>     write a V8 CPU profile of each of the hub's threads there (node --cpu-prof)
`,
);
const seconds = positiveOption(args, 'seconds', 8);
const rounds = positiveOption(args, 'rounds', 3);
const connections = positiveOption(args, 'connections', 64);
const TICK_MS = 10; // USER_HZ is 100 on Linux

/** CPU milliseconds so far of every thread of `pid`, keyed `tid:name`. */
function threadCpu(pid) {
  const out = {};
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out[`${tid}:${tid === String(pid) ? 'event loop' : name}`] = (Number(f[11]) + Number(f[12])) * TICK_MS;
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

try {
  const upstream = await startListening('upstream', 'fake-upstream.mjs', []);
  const env = args.traced
    ? { OTEL_EXPORTER_OTLP_ENDPOINT: await startOtlpSink(), OTEL_TRACES_SAMPLER: 'always_on' }
    : {};
  const hub = await startHub(upstream.port, 90, args['cpu-prof'] ?? null, {
    script: args['hub-script'] ?? 'start',
    env,
  });
  const pool = new Pool(hub.base, { connections, pipelining: 1 });
  const load = (ms) => {
    const end = Date.now() + ms;
    return closedLoop(pool, hub.key, connections, () => Date.now() < end);
  };
  await load(3_000);
  for (let round = 1; round <= rounds; round++) {
    const before = threadCpu(hub.child.pid);
    const served = await load(seconds * 1000);
    // the applier applies every 200 ms: let it finish this round's records
    await new Promise((r) => setTimeout(r, 600));
    const after = threadCpu(hub.child.pid);
    const rows = Object.keys(after)
      .map((k) => [k, after[k] - (before[k] ?? 0)])
      .filter(([, ms]) => ms > 0)
      .sort((a, b) => b[1] - a[1]);
    const total = rows.reduce((sum, [, ms]) => sum + ms, 0);
    const perRequest = (ms) => ((ms * 1000) / served).toFixed(1);
    console.log(
      `round ${round}: ${served} requests (${Math.round(served / seconds)} req/s); µs of CPU a request: ` +
        `${rows.map(([k, ms]) => `${k} ${perRequest(ms)}`).join(', ')}; all threads ${perRequest(total)}`,
    );
  }
  await pool.close();
} finally {
  await stopAll();
}
