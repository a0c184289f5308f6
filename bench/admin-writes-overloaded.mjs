#!/usr/bin/env node
// A correctness reproduction, not a benchmark (decision 0038): do admin writes on SQLite fail while the
// machine is overloaded? Run it beside CPU busy loops at normal priority that the script does not start,
// e.g. on 2 cores:
//   timeout 120 node -e 'for(;;){}' & timeout 120 node -e 'for(;;){}' &
//   node bench/admin-writes-overloaded.mjs [--baseline=<git ref>] [--seconds=60]
// A closed loop of 64 connections on /v1, and meanwhile a deposit of 1 KRW every 100 ms; the journal
// applier (SCHED_IDLE) holds SQLite's write lock for each batch it applies. Reports each arm's deposits
// by status, their latencies, and whether the wallet holds exactly the deposits that were answered 201.
import { Pool } from 'undici';
import { positiveOption, rawOptions } from './cli.mjs';
import { closedLoop, httpJson, prepareBaseline, removeWorktrees, startHub } from './hub-arm.mjs';
import { startListening, stop, stopAll } from './processes.mjs';

const args = rawOptions(
  process.argv.slice(2),
  `Usage: node bench/admin-writes-overloaded.mjs [options]

  --baseline=<git ref>   the hub at that commit instead of this checkout, from a temporary worktree
  --seconds=60           how long deposits are made
`,
);
const seconds = positiveOption(args, 'seconds', 60);

async function run(upstreamPort, name, root) {
  const hub = await startHub(upstreamPort, 90, null, { root, name });
  const org = await hub.admin('/organizations', { name: 'Deposits Org', class: 'sme' });
  const pool = new Pool(hub.base, { connections: 64, pipelining: 1 });
  let done = false;
  const load = closedLoop(pool, hub.key, 64, () => !done);
  await new Promise((r) => setTimeout(r, 2000));
  const latencies = [];
  const statuses = new Map();
  const failures = [];
  const started = Date.now();
  while (Date.now() - started < seconds * 1000) {
    const s = performance.now();
    const r = await fetch(`${hub.base}/admin/v1/organizations/${org.id}/deposits`, {
      method: 'POST',
      headers: { authorization: `Bearer ${hub.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ amountKrw: '1' }),
      signal: AbortSignal.timeout(20000),
    });
    const text = await r.text();
    const ms = performance.now() - s;
    latencies.push(ms);
    statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    if (r.status !== 201)
      failures.push(
        `${r.status} after ${ms.toFixed(0)} ms, retry-after ${r.headers.get('retry-after') ?? '-'}: ${text.slice(0, 160)}`,
      );
    await new Promise((r) => setTimeout(r, 100));
  }
  done = true;
  const served = await load;
  await pool.close();
  const funds = await httpJson('GET', `${hub.base}/admin/v1/organizations/${org.id}/funds`, {
    headers: { authorization: `Bearer ${hub.adminToken}` },
    timeoutMs: 20000,
  });
  await stop([hub.child]);
  const q = (xs, p) => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))].toFixed(1);
  latencies.sort((a, b) => a - b);
  const answered = statuses.get(201) ?? 0;
  console.log(
    `${name}: ${latencies.length} deposits, by status ${JSON.stringify(Object.fromEntries(statuses))}; ` +
      `p50 ${q(latencies, 0.5)} ms, p90 ${q(latencies, 0.9)}, p99 ${q(latencies, 0.99)}, max ${latencies.at(-1).toFixed(1)} ms; ` +
      `over 1 s: ${latencies.filter((ms) => ms > 1000).length}; ` +
      `wallet ${funds.json?.walletKrw} KRW for ${answered} answered 201 (${funds.json?.walletKrw === String(answered) ? 'exactly once' : 'MISMATCH'}); ` +
      `/v1 served ${served}`,
  );
  for (const f of failures) console.log(`  ${f}`);
}

try {
  const up = await startListening('upstream', 'fake-upstream.mjs', []);
  const baseline = args.baseline === undefined ? undefined : prepareBaseline(args.baseline);
  if (baseline) await run(up.port, `baseline ${args.baseline} (${baseline.commit})`, baseline.dir);
  else await run(up.port, 'hub', undefined);
} finally {
  await stopAll();
  removeWorktrees();
}
