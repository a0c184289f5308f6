// What both benchmarks need to run their processes: paths, free loopback ports, starting children
// that die with the benchmark, waiting for them to be ready, and stopping them all.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(BENCH_DIR, '..');
export const LOOPBACK = '127.0.0.1';

/** The V8 flags `npm start` gives the hub in a checkout (its package.json): what users run. */
export function startFlagsOf(root = REPO_ROOT, script = 'start') {
  const command = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).scripts[script];
  if (typeof command !== 'string') throw new Error(`package.json has no script ${script}`);
  return command.split(' ').filter((a) => a.startsWith('--'));
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Every child a benchmark started; stopAll ends them. */
export const children = [];

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, LOOPBACK, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export async function waitFor(what, timeoutMs, probe, child) {
  const deadline = Date.now() + timeoutMs;
  let lastErr;
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null) throw new Error(`${what} exited with code ${child.exitCode}`);
    try {
      if (await probe()) return;
    } catch (err) {
      lastErr = err;
    }
    await sleep(200);
  }
  throw new Error(`${what} not ready after ${timeoutMs} ms${lastErr ? `: ${lastErr.message}` : ''}`);
}

export function startProcess(name, cmd, args, options = {}) {
  // detached: each child leads its own process group, so cleanup can end the child together with
  // anything it spawned (e.g. a tsx loader), by group id. The preload ends it if the benchmark dies.
  const env = {
    ...(options.env ?? process.env),
    BENCH_PARENT_PID: String(process.pid),
    NODE_OPTIONS:
      `${process.env.NODE_OPTIONS ?? ''} --import=${pathToFileURL(path.join(BENCH_DIR, 'exit-with-parent.mjs')).href}`.trim(),
  };
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, ...options, env });
  child.benchName = name;
  child.benchGroup = true;
  child.logTail = [];
  const keep = (chunk) => {
    child.logTail.push(chunk.toString());
    if (child.logTail.length > 50) child.logTail.shift();
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  children.push(child);
  return child;
}

const running = (child) => child.exitCode === null && child.signalCode === null;

function signal(child, sig) {
  if (!running(child)) return;
  try {
    if (child.benchGroup) process.kill(-child.pid, sig);
    else child.kill(sig);
  } catch {}
}

/** SIGTERM to each of `some` (its process group when it has one), then SIGKILL after 10 s. */
export async function stop(some) {
  for (const child of some) signal(child, 'SIGTERM');
  // Long enough for the hub to drain and write a --cpu-prof profile.
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && some.some(running)) await sleep(50);
  for (const child of some) signal(child, 'SIGKILL');
}

/** Stops every child started so far. */
export async function stopAll() {
  await stop(children);
}

/**
 * Request/response over a forked child's IPC channel: `run(job)` sends `{ ...job, id }` and resolves
 * with the child's `{ id, result }` (or rejects on `{ id, error }`); `ready` resolves with the child's
 * first `{ ready: true, … }` message and rejects if it exits first. Pending jobs fail when it exits.
 */
export function ipcJobs(child, name) {
  let nextId = 0;
  const waiters = new Map();
  const ready = new Promise((resolve, reject) => {
    child.on('message', (m) => {
      if (m?.ready) return resolve(m);
      const w = waiters.get(m?.id);
      if (!w) return;
      waiters.delete(m.id);
      if (m.error) w.reject(new Error(m.error));
      else w.resolve(m.result);
    });
    child.on('exit', (code) => {
      const error = new Error(`${name} exited (${code})`);
      reject(error);
      for (const w of waiters.values()) w.reject(error);
      waiters.clear();
    });
  });
  return {
    ready,
    run(job) {
      const id = ++nextId;
      return new Promise((resolve, reject) => {
        waiters.set(id, { resolve, reject });
        child.send({ ...job, id });
      });
    },
  };
}

/** A bench script that prints `{"ready":true,"port":N}` once listening on a free port. */
export async function startListening(name, script, args) {
  const child = startProcess(name, process.execPath, [path.join(BENCH_DIR, script), '--port=0', ...args]);
  const port = await new Promise((resolve, reject) => {
    let buf = '';
    const onData = (chunk) => {
      buf += chunk.toString();
      const line = buf.split('\n').find((l) => l.includes('"ready"'));
      if (line) {
        child.stdout.off('data', onData);
        resolve(JSON.parse(line).port);
      }
    };
    child.stdout.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${name} exited (${code})`)));
    setTimeout(() => reject(new Error(`${name} did not start`)), 10_000).unref();
  });
  return { child, port };
}
