// The hub as a benchmark arm: started from a checkout (this one, or a temporary worktree of another
// commit), configured over /admin/v1 with one product deployed on the benchmark's upstream, an
// organisation and a key. Shared by the benchmarks that put the hub under load.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, LOOPBACK, REPO_ROOT, startFlagsOf, startProcess, waitFor } from './processes.mjs';

export async function httpJson(method, url, { headers = {}, body, timeoutMs = 5_000 } = {}) {
  const res = await fetch(url, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text };
}

export const pick = (obj, ...keys) => {
  for (const k of keys) {
    const v = k.split('.').reduce((o, p) => o?.[p], obj);
    if (v !== undefined && v !== null) return v;
  }
  return undefined;
};

/** Temporary git worktrees of --baseline, removed by removeWorktrees(). */
const worktrees = [];

// The hub as it was at `ref`, checked out in a temporary worktree that shares
// this checkout's node_modules (dependencies only grow between versions here).
export function prepareBaseline(ref) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kaihub-baseline-'));
  execFileSync('git', ['worktree', 'add', '--detach', dir, ref], { cwd: REPO_ROOT, stdio: 'ignore' });
  worktrees.push(dir);
  symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: dir, encoding: 'utf8' }).trim();
  return { dir, commit };
}

export function removeWorktrees() {
  for (const dir of worktrees.splice(0)) {
    try {
      execFileSync('git', ['worktree', 'remove', '--force', dir], { cwd: REPO_ROOT, stdio: 'ignore' });
    } catch {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

/** The request every benchmark sends the hub: one short Korean chat turn. */
export const CHAT_REQUEST_BODY = JSON.stringify({
  model: 'bench-model',
  messages: [{ role: 'user', content: '안녕하세요' }],
  max_tokens: 16,
});

/**
 * A closed loop on the hub's /v1/chat/completions through `pool` (an undici Pool on the hub): each of
 * `connections` sends its next request when its last is answered, for as long as `going()` says.
 * Resolves with how many were answered 200; `latencies`, when given, receives each request's time (ms).
 */
export async function closedLoop(pool, key, connections, going, latencies) {
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${key}` };
  let ok = 0;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (going()) {
        const started = latencies ? performance.now() : 0;
        const r = await pool.request({
          path: '/v1/chat/completions',
          method: 'POST',
          headers,
          body: CHAT_REQUEST_BODY,
        });
        await r.body.text();
        if (r.statusCode === 200) ok++;
        latencies?.push(performance.now() - started);
      }
    }),
  );
  return ok;
}

// The traced arm's OTLP/HTTP collector (otlp-sink.mjs): answers 200 and counts the spans it receives (GET /count).
export async function startOtlpSink() {
  const port = await freePort();
  const child = startProcess('otlp-sink', process.execPath, [
    path.join(REPO_ROOT, 'bench', 'otlp-sink.mjs'),
    String(port),
    LOOPBACK,
  ]);
  const url = `http://${LOOPBACK}:${port}`;
  await waitFor(
    'otlp-sink',
    10_000,
    async () => (await fetch(`${url}/v1/traces`, { method: 'POST' })).ok,
    child,
  );
  return url;
}

export async function startHub(
  upstreamPort,
  timeoutS,
  cpuProfDir,
  {
    root = REPO_ROOT,
    name = 'hub',
    env: extraEnv = {},
    model = 'bench-model',
    script = 'start',
    funded = false,
  } = {},
) {
  const bin = path.join(root, 'bin', 'kaihub.mjs');
  if (!existsSync(bin))
    throw new Error(`${bin} not found: the hub is not built yet (use --targets=direct,portkey)`);
  const port = await freePort();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'kaihub-bench-'));
  const adminToken = `bench-admin-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
  // --cpu-prof writes the profile when the hub exits (it exits on SIGTERM).
  const profArgs = cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`] : [];
  // the V8 flags that version's `npm start` (or `npm run <script>`) gives the hub (its own package.json)
  const heapArgs = startFlagsOf(root, script);
  const child = startProcess(name, process.execPath, [...heapArgs, ...profArgs, bin, 'start'], {
    cwd: root,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: LOOPBACK,
      KAIHUB_DATABASE: path.join(tmp, 'hub.sqlite'),
      KAIHUB_ADMIN_TOKEN: adminToken,
      KAIHUB_LOG_LEVEL: 'warn',
      NODE_ENV: 'production',
      ...extraEnv,
    },
  });
  child.tmpDir = tmp;
  const base = `http://${LOOPBACK}:${port}`;
  await waitFor(name, timeoutS * 1000, async () => (await fetch(`${base}/healthz`)).ok, child);

  const admin = async (p, body) => {
    const r = await httpJson('POST', `${base}/admin/v1${p}`, {
      headers: { authorization: `Bearer ${adminToken}` },
      body,
    });
    if (r.status < 200 || r.status >= 300)
      throw new Error(`hub admin POST ${p} -> ${r.status}: ${r.text.slice(0, 500)}`);
    return r.json;
  };
  const supplier = await admin('/suppliers', { name: 'Bench Supplier' });
  const supplierId = pick(supplier, 'id', 'data.id', 'supplier.id');
  const product = await admin('/products', {
    supplierId,
    model,
    displayName: 'Bench',
    purposes: ['chat'],
    modality: 'text',
    contextWindow: 8192,
    priceInputPer1M: '1000',
    priceOutputPer1M: '3000',
    residency: 'domestic',
  });
  const productId = pick(product, 'id', 'data.id', 'product.id');
  await admin('/deployments', {
    productId,
    adapter: 'openai-compatible',
    baseUrl: `http://${LOOPBACK}:${upstreamPort}/v1`,
    apiKey: 'upstream-key',
    upstreamModel: 'fake-model',
  });
  const org = await admin('/organizations', { name: 'Bench Org', class: 'sme' });
  const orgId = pick(org, 'id', 'data.id', 'organization.id');
  if (funded) {
    // every call pays through a voucher with co-payment and is held and rate-limited first: the
    // limits are far above what the benchmark sends, so every check runs and none refuses
    const programme = await admin('/programmes', {
      name: 'Bench Programme',
      startsOn: '2026-01-01',
      endsOn: '2099-12-31',
      budgetKrw: '100000000000',
      copayPercent: { sme: 20 },
      onExhausted: 'self-pay',
    });
    await admin(`/programmes/${programme.id}/vouchers`, { organizationId: orgId, amountKrw: '50000000000' });
    await admin(`/organizations/${orgId}/deposits`, { amountKrw: '50000000000' });
    const patched = await httpJson('PATCH', `${base}/admin/v1/organizations/${orgId}`, {
      headers: { authorization: `Bearer ${adminToken}` },
      body: {
        spendMode: 'prepaid',
        rateLimits: { requestsPerMinute: 100_000_000, tokensPerMinute: 2_000_000_000 },
      },
    });
    if (patched.status !== 200)
      throw new Error(`hub admin PATCH organization -> ${patched.status}: ${patched.text}`);
  }
  const key = await admin(`/organizations/${orgId}/keys`, {
    name: 'bench',
    ...(funded && { rateLimits: { requestsPerMinute: 100_000_000, tokensPerMinute: 2_000_000_000 } }),
  });
  const secret = pick(key, 'key', 'data.key', 'secret', 'apiKey');
  if (!secret) throw new Error(`hub key response without a key: ${JSON.stringify(key)}`);
  let version;
  try {
    version = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).version;
  } catch {}
  return { child, version, base, adminToken, key: secret, admin };
}

// Which hub code was measured: commit, and whether the work tree had changes.
export function gitDescribe() {
  try {
    const git = (...a) => execFileSync('git', a, { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
    const commit = git('rev-parse', '--short', 'HEAD');
    const dirty = git('status', '--porcelain', '--', 'src', 'bin').length > 0;
    return `${commit}${dirty ? ' (with uncommitted changes in src/ or bin/)' : ''}`;
  } catch {
    return undefined;
  }
}
