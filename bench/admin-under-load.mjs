#!/usr/bin/env node
// How long an admin write takes while /v1 is saturated: on SQLite the journal applier holds the write
// lock for each batch it applies, and a write waits for it (decision 0030) — asynchronously since
// decision 0032, so /v1 should not stall meanwhile. A closed loop of 64 connections on /v1, and
// meanwhile one organisation created every 100 ms for 15 s; /v1's latency is measured in that window.
// Run: node bench/admin-under-load.mjs [--baseline=<git ref>] [--rounds=2]
import { Pool } from 'undici';
import { positiveOption, rawOptions } from './cli.mjs';
import { closedLoop, httpJson, prepareBaseline, removeWorktrees, startHub } from './hub-arm.mjs';
import { startListening, stop, stopAll } from './processes.mjs';

const args = rawOptions(
  process.argv.slice(2),
  `Usage: node bench/admin-under-load.mjs [options]

  --baseline=<git ref>   the hub at that commit too, from a temporary worktree (the arms alternate)
  --rounds=2             measurements of each arm
`,
);
const rounds = positiveOption(args, 'rounds', 2);

/** One measurement of one hub: 2 s of load alone, then 15 s with an admin write every 100 ms. */
async function measure(upstreamPort, name, root) {
  const hub = await startHub(upstreamPort, 90, null, { root, name });
  const pool = new Pool(hub.base, { connections: 64, pipelining: 1 });
  let done = false;
  const loadStart = Date.now();
  const v1 = [];
  let measuring = false;
  const load = closedLoop(pool, hub.key, 64, () => !done, { push: (ms) => measuring && v1.push(ms) });
  const lat = [];
  await new Promise((r) => setTimeout(r, 2000));
  measuring = true;
  const t0 = Date.now();
  while (Date.now() - t0 < 15000) {
    const s = performance.now();
    const r = await httpJson('POST', `${hub.base}/admin/v1/organizations`, {
      headers: { authorization: `Bearer ${hub.adminToken}` },
      body: { name: `o${lat.length}`, class: 'sme' },
      timeoutMs: 20000,
    });
    lat.push(performance.now() - s);
    if (r.status !== 201 && r.status !== 200) console.log('status', r.status, r.text.slice(0, 200));
    await new Promise((r) => setTimeout(r, 100));
  }
  measuring = false;
  done = true;
  const served = await load;
  const loadSeconds = (Date.now() - loadStart) / 1000;
  await pool.close();
  await stop([hub.child]);
  const q = (xs, p) => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))].toFixed(1);
  lat.sort((a, b) => a - b);
  v1.sort((a, b) => a - b);
  console.log(
    `${name}: admin writes ${lat.length}: p50 ${q(lat, 0.5)} ms, p90 ${q(lat, 0.9)}, p99 ${q(lat, 0.99)}, max ${lat.at(-1).toFixed(1)} ms; ` +
      `/v1 meanwhile p50 ${q(v1, 0.5)} ms, p99 ${q(v1, 0.99)}, p99.9 ${q(v1, 0.999)}, max ${v1.at(-1).toFixed(1)} ms; ` +
      `/v1 served ${served} (${Math.round(served / loadSeconds)} req/s)`,
  );
}

try {
  const up = await startListening('upstream', 'fake-upstream.mjs', []);
  const baseline = args.baseline === undefined ? undefined : prepareBaseline(args.baseline);
  if (baseline) console.log(`baseline ${args.baseline} (${baseline.commit})`);
  for (let round = 0; round < rounds; round++) {
    await measure(up.port, 'hub', undefined);
    if (baseline) await measure(up.port, 'baseline', baseline.dir);
  }
} finally {
  await stopAll();
  removeWorktrees();
}
