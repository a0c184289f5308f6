#!/usr/bin/env node
// Load generator, forked by gateway-overhead.mjs so that it never shares an
// event loop with the upstream or the gateway under test. It receives jobs
// over IPC and answers each with raw samples; all statistics are computed by
// the parent, which pools rounds.
//
// Two modes:
// - 'open': fixed arrival rate (open loop). Request i is due at t0 + i/rate
//   whatever happened to earlier requests, so a slow gateway builds a queue and
//   its latency shows it. A closed loop would wait for responses before
//   sending and hide exactly that queueing (coordinated omission).
// - 'closed': N workers each send, await, repeat. Used only to find the
//   maximum throughput, where saturating the server is the point.
//
// Every loop is bounded in both request count and time.
import { Pool } from 'undici';

const MAX_IN_FLIGHT = 2_000;
const REQUEST_TIMEOUT_MS = 10_000;
const DRAIN_TIMEOUT_MS = 10_000;

const pools = new Map();

function poolFor(target) {
  let pool = pools.get(target.name);
  if (!pool) {
    const url = new URL(target.url);
    if (url.hostname !== '127.0.0.1' && url.hostname !== 'localhost' && url.hostname !== '[::1]') {
      throw new Error(`refusing non-loopback target ${target.url}`);
    }
    pool = new Pool(url.origin, {
      // Enough for the worst open-loop queue; connections are opened lazily,
      // so at low rates only a handful exist.
      connections: 256,
      pipelining: 1,
      // Never trust a server's keep-alive hint beyond 4 s: between rounds a
      // connection idles while the other arms run, and reusing one the server
      // has just closed would count a spurious ECONNRESET against it.
      keepAliveTimeout: 4_000,
      keepAliveMaxTimeout: 4_000,
      headersTimeout: REQUEST_TIMEOUT_MS,
      bodyTimeout: REQUEST_TIMEOUT_MS,
    });
    pools.set(target.name, pool);
  }
  return pool;
}

// Parse the URL once per job, not once per request: generator CPU is CPU the
// gateway does not get.
function prepare(target) {
  return { ...target, path: new URL(target.url).pathname };
}

function nowNs() {
  return process.hrtime.bigint();
}

// One request; resolves to { ok, status, endNs }. Never rejects, so callers
// can fire and forget.
async function fire(pool, target, body) {
  try {
    const res = await pool.request({
      path: target.path,
      method: 'POST',
      headers: target.headers,
      body,
    });
    // Read the whole body: a gateway that delays the last byte must pay for it.
    const text = await res.body.text();
    const ok = res.statusCode === 200 && text.length > 0;
    return { ok, status: res.statusCode, endNs: nowNs(), sample: ok ? undefined : text.slice(0, 300) };
  } catch (err) {
    return { ok: false, status: 0, endNs: nowNs(), sample: String(err?.code ?? err?.message ?? err) };
  }
}

function recordError(errors, status, sample) {
  const key = String(status);
  if (!errors[key]) errors[key] = { count: 0, sample };
  errors[key].count++;
}

async function runOpen({ target, rate, durationMs }) {
  const pool = poolFor(target);
  const body = Buffer.from(target.body);
  const total = Math.floor((rate * durationMs) / 1000);
  const intervalNs = 1e9 / rate;
  // Service time: from the moment the request was handed to the client until
  // its last byte. Response time: from the moment it was due. They differ only
  // by timer lag, or by queueing when the generator itself cannot keep up.
  const serviceUs = new Float64Array(total);
  const responseUs = new Float64Array(total);
  let okCount = 0;
  let sent = 0;
  let dropped = 0;
  let inFlight = 0;
  let maxLagUs = 0;
  let maxInFlight = 0;
  let lastEndNs = 0n;
  const errors = {};
  const pending = new Set();

  const t0 = nowNs() + 2_000_000n;
  await new Promise((resolve) => {
    const tick = () => {
      const now = nowNs();
      // Fire everything that is due. Timers have ~1 ms granularity, so at
      // 1,000 req/s a tick often sends 1–2 requests; the lag is recorded.
      while (sent + dropped < total) {
        const i = sent + dropped;
        const dueNs = t0 + BigInt(Math.round(i * intervalNs));
        if (dueNs > now) break;
        if (inFlight >= MAX_IN_FLIGHT) {
          // Bounded queue: count the loss instead of growing without limit.
          dropped++;
          continue;
        }
        const startNs = nowNs();
        const lagUs = Number(startNs - dueNs) / 1000;
        if (lagUs > maxLagUs) maxLagUs = lagUs;
        sent++;
        inFlight++;
        if (inFlight > maxInFlight) maxInFlight = inFlight;
        const p = fire(pool, target, body).then((r) => {
          inFlight--;
          pending.delete(p);
          if (r.endNs > lastEndNs) lastEndNs = r.endNs;
          if (r.ok) {
            serviceUs[okCount] = Number(r.endNs - startNs) / 1000;
            responseUs[okCount] = Number(r.endNs - dueNs) / 1000;
            okCount++;
          } else {
            recordError(errors, r.status, r.sample);
          }
        });
        pending.add(p);
      }
      if (sent + dropped >= total) return resolve();
      const nextDueNs = t0 + BigInt(Math.round((sent + dropped) * intervalNs));
      const waitMs = Number(nextDueNs - nowNs()) / 1e6;
      // Never spin: on a 2-core machine a busy-waiting generator would steal
      // the CPU the gateway needs. Sleep until the next due time instead.
      setTimeout(tick, Math.max(0, Math.floor(waitMs)));
    };
    setTimeout(tick, 2);
  });
  const sendEndNs = nowNs();
  await Promise.race([
    Promise.allSettled([...pending]),
    new Promise((r) => setTimeout(r, DRAIN_TIMEOUT_MS).unref()),
  ]);
  const unfinished = pending.size;
  return {
    mode: 'open',
    target: target.name,
    rate,
    durationMs,
    planned: total,
    sent,
    ok: okCount,
    dropped,
    unfinished,
    errors,
    maxLagUs,
    maxInFlight,
    achievedRate: sent / (Number(sendEndNs - t0) / 1e9),
    // Completions per second from the first due time to the last response: well
    // below the offered rate means the server could not keep up (saturated),
    // and its latency then grows with the length of the round.
    completionRate: lastEndNs > t0 ? okCount / (Number(lastEndNs - t0) / 1e9) : 0,
    serviceUs: Array.from(serviceUs.subarray(0, okCount)),
    responseUs: Array.from(responseUs.subarray(0, okCount)),
  };
}

async function runClosed({ target, connections, durationMs, maxRequests }) {
  const pool = poolFor(target);
  const body = Buffer.from(target.body);
  const limit = maxRequests ?? 5_000_000;
  let started = 0;
  let okCount = 0;
  let okInWindow = 0;
  const errors = {};
  const t0 = nowNs();
  const endNs = t0 + BigInt(durationMs) * 1_000_000n;
  const worker = async () => {
    while (started < limit && nowNs() < endNs) {
      started++;
      const r = await fire(pool, target, body);
      if (r.ok) {
        okCount++;
        if (r.endNs <= endNs) okInWindow++;
      } else {
        recordError(errors, r.status, r.sample);
      }
    }
  };
  await Promise.all(Array.from({ length: connections }, worker));
  const elapsedS = Number(nowNs() - t0) / 1e9;
  return {
    mode: 'closed',
    target: target.name,
    connections,
    durationMs,
    started,
    ok: okCount,
    errors,
    elapsedS,
    // Completions inside the window over the window: in-flight requests at the
    // end neither inflate nor deflate the figure.
    throughput: okInWindow / (durationMs / 1000),
  };
}

process.on('message', async (msg) => {
  if (msg?.type === 'exit') {
    await Promise.allSettled([...pools.values()].map((p) => p.close()));
    process.exit(0);
  }
  try {
    const job = { ...msg, target: prepare(msg.target) };
    const result = job.mode === 'open' ? await runOpen(job) : await runClosed(job);
    process.send({ id: msg.id, result });
  } catch (err) {
    process.send({ id: msg.id, error: String(err?.stack ?? err) });
  }
});
process.on('disconnect', () => process.exit(0));
process.send({ ready: true });
