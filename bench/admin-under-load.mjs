#!/usr/bin/env node
// How long an admin write takes while /v1 is saturated: on SQLite the journal applier holds the write
// lock for each batch it applies, and a write on the event loop waits for it (decision 0030). A closed
// loop of 64 connections on /v1, and meanwhile one organisation created every 100 ms for 15 s.
// Run: node bench/admin-under-load.mjs
import { Pool } from 'undici';
import { closedLoop, httpJson, startHub } from './hub-arm.mjs';
import { startListening, stopAll } from './processes.mjs';

try {
  const up = await startListening('upstream', 'fake-upstream.mjs', []);
  const hub = await startHub(up.port, 90, null, {});
  const pool = new Pool(hub.base, { connections: 64, pipelining: 1 });
  let stop = false;
  const loadStart = Date.now();
  const load = closedLoop(pool, hub.key, 64, () => !stop);
  const lat = [];
  await new Promise((r) => setTimeout(r, 2000));
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
  stop = true;
  const served = await load;
  const loadSeconds = (Date.now() - loadStart) / 1000;
  await pool.close();
  lat.sort((a, b) => a - b);
  const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))].toFixed(1);
  console.log(
    `admin writes ${lat.length}: p50 ${q(0.5)} ms, p90 ${q(0.9)}, p99 ${q(0.99)}, max ${lat.at(-1).toFixed(1)} ms; /v1 served ${served} (${Math.round(served / loadSeconds)} req/s)`,
  );
} finally {
  await stopAll();
}
