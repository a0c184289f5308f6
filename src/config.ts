import { existsSync } from 'node:fs';
import { BlockList } from 'node:net';
import { dirname, resolve } from 'node:path';
import { ConfigError } from './config-error.ts';
import { readTracingSettings, type TracingSettings } from './observability/tracing-settings.ts';
import { DEFAULT_UPSTREAM_LIMITS } from './providers/http.ts';
import { parseNetworks } from './providers/network.ts';
import { DEFAULT_LOCK_WAIT_MS } from './storage/busy.ts';
import { isPostgresUrl } from './storage/database.ts';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface Config {
  port: number;
  host: string;
  /** A SQLite file path or a `postgres://` URL. */
  database: string;
  /**
   * The catalogue file a new database starts with: undefined for the shipped one
   * (src/catalog/seed/catalog.json), 'none' for an empty catalogue, else a path.
   */
  catalogSeed: string | undefined;
  /** Where generated files live (the secret key); the SQLite file's folder, or KAIHUB_DATA_DIR. */
  dataDir: string;
  /**
   * How long a write waits for a lock another connection or session holds (SQLite's write lock, a
   * PostgreSQL row or table lock); then it is refused as 503 `storage_busy`, nothing applied.
   */
  databaseLockWaitMs: number;
  adminToken: string | undefined;
  /** A bearer token that may read /metrics and nothing else (for a Prometheus scraper). */
  metricsToken: string | undefined;
  /** 32 bytes, from hex or base64. */
  secretKey: Buffer | undefined;
  /** Keys that only open credentials sealed before a rotation (KAIHUB_SECRET_KEYS_OLD, comma-separated). */
  secretKeysOld: Buffer[];
  /**
   * Set: rate limits, budget holds and key revocation are shared by every replica through this Redis
   * (limits/shared-admission.ts); unset: one replica keeps them in memory.
   */
  redisUrl: string | undefined;
  /** Prefix of every Redis key and channel the hub uses (several hubs on one Redis). */
  redisPrefix: string;
  /** The longest any Redis command may take on the request path; then it counts as Redis down. */
  redisTimeoutMs: number;
  /** How long a shared hold lives unless settled (its replica may have died): the longest call plus a margin. */
  holdLeaseMs: number;
  /**
   * With Redis: the most calls' worth one replica takes at once for a key and product and admits in
   * memory (decision 0027); 1 sends one script per call.
   */
  allowanceCalls: number;
  /**
   * GPU compute's background loop (compute/reconciler.ts): between ticks (0: none; changes wait for
   * POST /admin/v1/compute/reconcile), how often usage is read and drift repaired.
   */
  computeReconcileMs: number;
  computeUsageMs: number;
  computeDriftMs: number;
  logLevel: LogLevel;
  /** Prompts and completions appear in logs only when an operator asks for it. */
  logContent: boolean;
  maxBodyBytes: number;
  /**
   * How long a client may take to send a whole request, headers and body; then 408 and the
   * connection closes. Answers, streamed ones included, are not limited by it.
   */
  requestTimeoutMs: number;
  /**
   * Client connections open at once; past it new ones are closed at once (see README). Unset: what the
   * open-file limit holds, at most 10,000 (http/server.ts).
   */
  maxConnections: number | undefined;
  /** How long opening a connection to an upstream may take (then: 502, and a retry elsewhere). */
  upstreamConnectTimeoutMs: number;
  /**
   * Private networks a supplier admin's deployment may point to (a supplier's private link), beside
   * public addresses; empty by default (providers/network.ts).
   */
  supplierNetworks: BlockList;
  upstreamHeadersTimeoutMs: number;
  upstreamTotalTimeoutMs: number;
  /** Longest silence from an upstream once it answered (between stream chunks); then it is cut. */
  upstreamIdleTimeoutMs: number;
  /** The most bytes held of one SSE line or event from an upstream; more ends the call (protocol error). */
  upstreamMaxEventBytes: number;
  /** The largest plain (non-stream) upstream answer read; more ends the call (protocol error). */
  upstreamMaxBodyBytes: number;
  /** Where GGUF files of `local` deployments live; `upstreamModel` is a file name inside it. */
  modelsDir: string;
  /** CPU threads per local model (1 is fastest on small machines: see README, local models). */
  localThreads: number;
  /** Requests one local model evaluates at once (its sequences); the rest wait in order. */
  localParallel: number;
  /** Extra attempts per product on connection errors, timeouts, 429 and 5xx before the first byte. */
  upstreamRetries: number;
  /** Backoff base: retry n waits about base·2^(n−1), jittered. */
  upstreamRetryBaseMs: number;
  /** The longest upstream Retry-After the hub waits for before retrying the same deployment. */
  upstreamRetryAfterMaxMs: number;
  /** After a client leaves a stream, how long the upstream is still read for its own usage counts. */
  streamDrainMs: number;
  /** The first retry of a failed webhook delivery; each later one doubles it (billing/webhook-dispatcher.ts). */
  webhookRetryBaseMs: number;
  /** A deployment's cap on calls in flight from one replica when it sets none. */
  deploymentMaxConcurrent: number;
  /** How long a call waits for a slot when every deployment that could serve it is full. */
  queueTimeoutMs: number;
  /** Calls one organisation may have in progress on one replica unless it has its own cap. */
  organizationMaxConcurrent: number;
  /** Requests this large (tokens) or larger are "large": their time-outs are their own. */
  largeRequestTokens: number;
  /** Consecutive failures after which a deployment cools down; 0: never. */
  upstreamCooldownFailures: number;
  /** The first cooldown period; it doubles with every failed probe, up to 60 s (or this, if longer). */
  upstreamCooldownMs: number;
  /** OpenTelemetry traces (the standard OTEL_* variables); null: off, and no SDK is loaded. */
  tracing: TracingSettings | null;
  /** Items an evaluation run asks at once (per process working on it) unless the run says otherwise. */
  evalConcurrency: number;
  /** How long an evaluation worker's claim on an item (and a BullMQ job's lock) lives unless renewed. */
  evalLeaseMs: number;
  /** Extra attempts of an evaluation call that failed in a way worth retrying (429, 5xx, time-outs). */
  evalRetries: number;
  /** The first pause before such a retry; each later one doubles (jittered). */
  evalRetryBaseMs: number;
}

// its own file so that settings read elsewhere (observability/tracing-settings.ts) throw it without a cycle
export { ConfigError } from './config-error.ts';

/** A setting as it may be given: environment variable name, flag name, and how to read it. */
interface Setting<T> {
  env: string;
  flag: string;
  parse(raw: string, name: string): T;
}

const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function integer(min: number, max: number) {
  return (raw: string, name: string): number => {
    if (!/^\d+$/.test(raw.trim())) throw new ConfigError(`${name}: expected an integer, got "${raw}"`);
    const n = Number(raw);
    if (n < min || n > max) throw new ConfigError(`${name}: must be between ${min} and ${max}, got ${n}`);
    return n;
  };
}

function text(raw: string, name: string): string {
  if (raw.trim() === '') throw new ConfigError(`${name}: must not be empty`);
  return raw.trim();
}

function boolean(raw: string, name: string): boolean {
  const v = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off', ''].includes(v)) return false;
  throw new ConfigError(`${name}: expected true or false, got "${raw}"`);
}

export function parseSecretKey(raw: string, name: string): Buffer {
  const v = raw.trim();
  if (/^[0-9a-f]{64}$/i.test(v)) return Buffer.from(v, 'hex');
  if (/^[A-Za-z0-9+/]{43}=?$/.test(v)) return Buffer.from(v, 'base64');
  throw new ConfigError(
    `${name}: must be 32 bytes as 64 hex characters or base64 (try: openssl rand -hex 32)`,
  );
}

const settings = {
  port: { env: 'PORT', flag: 'port', parse: integer(0, 65535) },
  host: { env: 'HOST', flag: 'host', parse: text },
  database: {
    env: 'KAIHUB_DATABASE',
    flag: 'database',
    parse(raw: string, name: string) {
      const v = text(raw, name);
      if (isPostgresUrl(v)) {
        try {
          new URL(v);
        } catch {
          throw new ConfigError(`${name}: not a valid postgres:// URL`);
        }
      } else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(v)) {
        throw new ConfigError(`${name}: expected a SQLite file path or a postgres:// URL, got "${v}"`);
      }
      return v;
    },
  },
  dataDir: { env: 'KAIHUB_DATA_DIR', flag: 'data-dir', parse: text },
  databaseLockWaitMs: {
    env: 'KAIHUB_DATABASE_LOCK_WAIT_MS',
    flag: 'database-lock-wait-ms',
    parse: integer(100, 600_000),
  },
  catalogSeed: {
    env: 'KAIHUB_CATALOG_SEED',
    flag: 'catalog-seed',
    parse(raw: string, name: string) {
      const v = text(raw, name);
      if (v === 'none') return v;
      if (!existsSync(v))
        throw new ConfigError(`${name}: no such file "${v}" (or "none" for an empty catalogue)`);
      return resolve(v);
    },
  },
  adminToken: {
    env: 'KAIHUB_ADMIN_TOKEN',
    flag: 'admin-token',
    parse(raw: string, name: string) {
      const v = text(raw, name);
      if (v.length < 16) throw new ConfigError(`${name}: must be at least 16 characters`);
      return v;
    },
  },
  metricsToken: {
    env: 'KAIHUB_METRICS_TOKEN',
    flag: 'metrics-token',
    parse(raw: string, name: string) {
      const v = text(raw, name);
      if (v.length < 16) throw new ConfigError(`${name}: must be at least 16 characters`);
      return v;
    },
  },
  secretKey: { env: 'KAIHUB_SECRET_KEY', flag: 'secret-key', parse: parseSecretKey },
  secretKeysOld: {
    env: 'KAIHUB_SECRET_KEYS_OLD',
    flag: 'secret-keys-old',
    parse(raw: string, name: string) {
      const entries = raw.split(',').map((entry) => entry.trim());
      return entries.filter(Boolean).map((entry, i) => parseSecretKey(entry, `${name} (key ${i + 1})`));
    },
  },
  redisUrl: {
    env: 'REDIS_URL',
    flag: 'redis-url',
    parse(raw: string, name: string) {
      const v = text(raw, name);
      if (!/^rediss?:\/\//i.test(v)) throw new ConfigError(`${name}: expected a redis:// URL, got "${v}"`);
      return v;
    },
  },
  redisPrefix: { env: 'KAIHUB_REDIS_PREFIX', flag: 'redis-prefix', parse: text },
  redisTimeoutMs: {
    env: 'KAIHUB_REDIS_TIMEOUT_MS',
    flag: 'redis-timeout-ms',
    parse: integer(1, 60_000),
  },
  holdLeaseMs: { env: 'KAIHUB_HOLD_LEASE_MS', flag: 'hold-lease-ms', parse: integer(100, 86_400_000) },
  allowanceCalls: { env: 'KAIHUB_ALLOWANCE_CALLS', flag: 'allowance-calls', parse: integer(1, 100_000) },
  logLevel: {
    env: 'KAIHUB_LOG_LEVEL',
    flag: 'log-level',
    parse(raw: string, name: string) {
      const v = raw.trim().toLowerCase() as LogLevel;
      if (!LOG_LEVELS.includes(v)) throw new ConfigError(`${name}: expected one of ${LOG_LEVELS.join(', ')}`);
      return v;
    },
  },
  logContent: { env: 'KAIHUB_LOG_CONTENT', flag: 'log-content', parse: boolean },
  maxBodyBytes: { env: 'KAIHUB_MAX_BODY_BYTES', flag: 'max-body-bytes', parse: integer(1024, 1024 ** 3) },
  requestTimeoutMs: {
    env: 'KAIHUB_REQUEST_TIMEOUT_MS',
    flag: 'request-timeout-ms',
    parse: integer(100, 3_600_000),
  },
  maxConnections: { env: 'KAIHUB_MAX_CONNECTIONS', flag: 'max-connections', parse: integer(1, 1_000_000) },
  upstreamConnectTimeoutMs: {
    env: 'KAIHUB_UPSTREAM_CONNECT_TIMEOUT_MS',
    flag: 'upstream-connect-timeout-ms',
    parse: integer(1, 600_000),
  },
  upstreamHeadersTimeoutMs: {
    env: 'KAIHUB_UPSTREAM_HEADERS_TIMEOUT_MS',
    flag: 'upstream-headers-timeout-ms',
    parse: integer(1, 3_600_000),
  },
  upstreamTotalTimeoutMs: {
    env: 'KAIHUB_UPSTREAM_TIMEOUT_MS',
    flag: 'upstream-timeout-ms',
    parse: integer(1, 24 * 3_600_000),
  },
  upstreamIdleTimeoutMs: {
    env: 'KAIHUB_UPSTREAM_IDLE_TIMEOUT_MS',
    flag: 'upstream-idle-timeout-ms',
    parse: integer(1, 3_600_000),
  },
  upstreamMaxEventBytes: {
    env: 'KAIHUB_UPSTREAM_MAX_EVENT_BYTES',
    flag: 'upstream-max-event-bytes',
    parse: integer(1024, 256 * 1024 * 1024),
  },
  upstreamMaxBodyBytes: {
    env: 'KAIHUB_UPSTREAM_MAX_BODY_BYTES',
    flag: 'upstream-max-body-bytes',
    // below V8's longest string (2^29 − 24 characters), which the body becomes
    parse: integer(1024, 500 * 1024 * 1024),
  },
  upstreamRetries: { env: 'KAIHUB_UPSTREAM_RETRIES', flag: 'upstream-retries', parse: integer(0, 10) },
  upstreamRetryBaseMs: {
    env: 'KAIHUB_UPSTREAM_RETRY_BASE_MS',
    flag: 'upstream-retry-base-ms',
    parse: integer(0, 60_000),
  },
  upstreamRetryAfterMaxMs: {
    env: 'KAIHUB_UPSTREAM_RETRY_AFTER_MAX_MS',
    flag: 'upstream-retry-after-max-ms',
    parse: integer(0, 600_000),
  },
  upstreamCooldownFailures: {
    env: 'KAIHUB_UPSTREAM_COOLDOWN_FAILURES',
    flag: 'upstream-cooldown-failures',
    parse: integer(0, 1000),
  },
  upstreamCooldownMs: {
    env: 'KAIHUB_UPSTREAM_COOLDOWN_MS',
    flag: 'upstream-cooldown-ms',
    parse: integer(1, 3_600_000),
  },
  streamDrainMs: { env: 'KAIHUB_STREAM_DRAIN_MS', flag: 'stream-drain-ms', parse: integer(0, 60_000) },
  webhookRetryBaseMs: {
    env: 'KAIHUB_WEBHOOK_RETRY_BASE_MS',
    flag: 'webhook-retry-base-ms',
    parse: integer(10, 3_600_000),
  },
  deploymentMaxConcurrent: {
    env: 'KAIHUB_DEPLOYMENT_MAX_CONCURRENT',
    flag: 'deployment-max-concurrent',
    parse: integer(1, 1_000_000),
  },
  queueTimeoutMs: { env: 'KAIHUB_QUEUE_TIMEOUT_MS', flag: 'queue-timeout-ms', parse: integer(0, 600_000) },
  organizationMaxConcurrent: {
    env: 'KAIHUB_ORG_MAX_CONCURRENT',
    flag: 'org-max-concurrent',
    parse: integer(1, 1_000_000),
  },
  supplierNetworks: {
    env: 'KAIHUB_SUPPLIER_NETWORKS',
    flag: 'supplier-networks',
    parse(raw: string, name: string) {
      const parsed = parseNetworks(raw);
      if ('problem' in parsed) throw new ConfigError(`${name}: ${parsed.problem}`);
      return parsed.networks;
    },
  },
  largeRequestTokens: {
    env: 'KAIHUB_LARGE_REQUEST_TOKENS',
    flag: 'large-request-tokens',
    parse: integer(1, 100_000_000),
  },
  modelsDir: { env: 'KAIHUB_MODELS_DIR', flag: 'models-dir', parse: text },
  localThreads: { env: 'KAIHUB_LOCAL_THREADS', flag: 'local-threads', parse: integer(1, 256) },
  localParallel: { env: 'KAIHUB_LOCAL_PARALLEL', flag: 'local-parallel', parse: integer(1, 64) },
  computeReconcileMs: {
    env: 'KAIHUB_COMPUTE_RECONCILE_MS',
    flag: 'compute-reconcile-ms',
    parse: integer(0, 86_400_000),
  },
  computeUsageMs: {
    env: 'KAIHUB_COMPUTE_USAGE_MS',
    flag: 'compute-usage-ms',
    parse: integer(1000, 86_400_000),
  },
  computeDriftMs: {
    env: 'KAIHUB_COMPUTE_DRIFT_MS',
    flag: 'compute-drift-ms',
    parse: integer(1000, 86_400_000),
  },
  evalConcurrency: { env: 'KAIHUB_EVAL_CONCURRENCY', flag: 'eval-concurrency', parse: integer(1, 256) },
  evalLeaseMs: { env: 'KAIHUB_EVAL_LEASE_MS', flag: 'eval-lease-ms', parse: integer(200, 3_600_000) },
  evalRetries: { env: 'KAIHUB_EVAL_RETRIES', flag: 'eval-retries', parse: integer(0, 10) },
  evalRetryBaseMs: {
    env: 'KAIHUB_EVAL_RETRY_BASE_MS',
    flag: 'eval-retry-base-ms',
    parse: integer(0, 60_000),
  },
} satisfies Record<string, Setting<unknown>>;

type Settings = typeof settings;
type Parsed = { [K in keyof Settings]: ReturnType<Settings[K]['parse']> | undefined };

/** The flags `kaihub start` accepts, for its help text and argument parser. */
export const startFlags = Object.values(settings).map((s) => ({ flag: s.flag, env: s.env }));

/**
 * Flags win over the environment. Every value is checked here, before anything starts, so a bad one
 * is one clear line rather than a failure deep inside.
 */
export function loadConfig(env: NodeJS.ProcessEnv, flags: Record<string, string | undefined> = {}): Config {
  const read = {} as Record<keyof Settings, unknown>;
  for (const [key, setting] of Object.entries(settings) as [keyof Settings, Setting<unknown>][]) {
    const fromFlag = flags[setting.flag];
    const fromEnv = env[setting.env];
    if (fromFlag !== undefined) read[key] = setting.parse(fromFlag, `--${setting.flag}`);
    else if (fromEnv !== undefined && fromEnv !== '') read[key] = setting.parse(fromEnv, setting.env);
  }
  const v = read as Parsed;
  const database = v.database ?? './data/kaihub.sqlite';
  const dataDir = resolve(v.dataDir ?? (isPostgresUrl(database) ? './data' : dirname(database)));
  const config: Omit<Config, 'holdLeaseMs'> = {
    port: v.port ?? 8080,
    host: v.host ?? '127.0.0.1',
    database: isPostgresUrl(database) || database === ':memory:' ? database : resolve(database),
    dataDir,
    databaseLockWaitMs: v.databaseLockWaitMs ?? DEFAULT_LOCK_WAIT_MS,
    catalogSeed: v.catalogSeed,
    adminToken: v.adminToken,
    metricsToken: v.metricsToken,
    secretKey: v.secretKey,
    secretKeysOld: v.secretKeysOld ?? [],
    redisUrl: v.redisUrl,
    redisPrefix: v.redisPrefix ?? 'kaihub:',
    redisTimeoutMs: v.redisTimeoutMs ?? 250,
    allowanceCalls: v.allowanceCalls ?? 512,
    logLevel: v.logLevel ?? 'info',
    logContent: v.logContent ?? false,
    maxBodyBytes: v.maxBodyBytes ?? 16 * 1024 * 1024,
    // 16 MiB (the default body limit) in 60 s needs ≈ 2.2 Mbit/s from the client
    requestTimeoutMs: v.requestTimeoutMs ?? 60_000,
    maxConnections: v.maxConnections,
    upstreamConnectTimeoutMs: v.upstreamConnectTimeoutMs ?? 10_000,
    supplierNetworks: v.supplierNetworks ?? new BlockList(),
    upstreamHeadersTimeoutMs: v.upstreamHeadersTimeoutMs ?? 120_000,
    upstreamTotalTimeoutMs: v.upstreamTotalTimeoutMs ?? 600_000,
    upstreamIdleTimeoutMs: v.upstreamIdleTimeoutMs ?? 60_000,
    upstreamMaxEventBytes: v.upstreamMaxEventBytes ?? DEFAULT_UPSTREAM_LIMITS.maxEventBytes,
    upstreamMaxBodyBytes: v.upstreamMaxBodyBytes ?? DEFAULT_UPSTREAM_LIMITS.maxBodyBytes,
    modelsDir: resolve(v.modelsDir ?? './data/models'),
    localThreads: v.localThreads ?? 1,
    localParallel: v.localParallel ?? 1,
    upstreamRetries: v.upstreamRetries ?? 2,
    upstreamRetryBaseMs: v.upstreamRetryBaseMs ?? 100,
    upstreamRetryAfterMaxMs: v.upstreamRetryAfterMaxMs ?? 5_000,
    streamDrainMs: v.streamDrainMs ?? 2_000,
    webhookRetryBaseMs: v.webhookRetryBaseMs ?? 5_000,
    deploymentMaxConcurrent: v.deploymentMaxConcurrent ?? 4_096,
    queueTimeoutMs: v.queueTimeoutMs ?? 5_000,
    organizationMaxConcurrent: v.organizationMaxConcurrent ?? 2_048,
    largeRequestTokens: v.largeRequestTokens ?? 8_192,
    upstreamCooldownFailures: v.upstreamCooldownFailures ?? 3,
    upstreamCooldownMs: v.upstreamCooldownMs ?? 5_000,
    tracing: readTracingSettings(env),
    computeReconcileMs: v.computeReconcileMs ?? 60_000,
    computeUsageMs: v.computeUsageMs ?? 3_600_000,
    computeDriftMs: v.computeDriftMs ?? 900_000,
    evalConcurrency: v.evalConcurrency ?? 16,
    evalLeaseMs: v.evalLeaseMs ?? 30_000,
    evalRetries: v.evalRetries ?? 3,
    evalRetryBaseMs: v.evalRetryBaseMs ?? 500,
  };
  // a call lives at most its queue wait, its total timeout and the drain of an abandoned stream: the
  // values in force, so a longer upstream timeout also lengthens the default lease
  const holdLeaseMs =
    v.holdLeaseMs ?? config.queueTimeoutMs + config.upstreamTotalTimeoutMs + config.streamDrainMs + 60_000;
  return { ...config, holdLeaseMs };
}
