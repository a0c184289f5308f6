import { randomBytes } from 'node:crypto';
import { type Hub, type HubOptions, startHub } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { createLogger, type Logger } from '../../src/observability/logger.ts';
import { createTestDatabase, type TestDatabase } from './databases.ts';
import { dropRedisPrefix, testRedisPrefix } from './redis.ts';

export const ADMIN_TOKEN = 'test-admin-token-0123456789';

export interface TestHub {
  hub: Hub;
  url: string;
  database: TestDatabase;
  secretKey: string;
  /** With KAIHUB_TEST_REDIS_URL: the Redis key prefix this hub and its replicas share. */
  redisPrefix: string | undefined;
  /** Calls /admin/v1 with the operator token (`callAdmin`). */
  admin<T = any>(method: string, path: string, body?: unknown): Promise<AdminAnswer<T>>;
  close(): Promise<void>;
}

export interface AdminAnswer<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

/** /admin/v1 of the hub at `base` with the operator token; a string body is sent as it is. */
export async function callAdmin<T = any>(
  base: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<AdminAnswer<T>> {
  const res = await fetch(`${base}/admin/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    ...(body !== undefined && { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
}

export interface TestHubOptions {
  /** The hub's logger; by default a silent one (KAIHUB_TEST_LOG_LEVEL=info shows the logs). */
  logger?: Logger;
  /** Another replica: share this hub's database (and secret key) instead of creating one. */
  replicaOf?: TestHub;
  /** Seams to plug in (admission, guard, observer), as an embedder would. */
  hub?: Omit<HubOptions, 'logger'>;
}

/**
 * A hub in this process on a random loopback port, with a fresh database of the engine under test
 * (KAIHUB_TEST_DATABASE). Extra settings come as environment variables, exactly as a user gives them.
 * With KAIHUB_TEST_REDIS_URL set (npm test's PostgreSQL + Redis run), limits and holds are shared
 * through that Redis under a prefix of the hub's own, dropped when it closes.
 */
export async function startTestHub(
  env: Record<string, string> = {},
  options: TestHubOptions = {},
): Promise<TestHub> {
  const database = options.replicaOf?.database ?? (await createTestDatabase());
  const secretKey = options.replicaOf?.secretKey ?? randomBytes(32).toString('hex');
  const sharedRedis = process.env.KAIHUB_TEST_REDIS_URL;
  const redisPrefix =
    options.replicaOf?.redisPrefix ??
    (sharedRedis !== undefined && env.REDIS_URL === undefined ? testRedisPrefix() : undefined);
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    KAIHUB_DATABASE: database.location,
    KAIHUB_DATA_DIR: database.dataDir,
    KAIHUB_ADMIN_TOKEN: ADMIN_TOKEN,
    KAIHUB_SECRET_KEY: secretKey,
    // Tests build their own catalogues; the shipped one is tested on its own (catalog-file.test.ts).
    KAIHUB_CATALOG_SEED: 'none',
    ...(redisPrefix !== undefined && {
      REDIS_URL: sharedRedis,
      KAIHUB_REDIS_PREFIX: redisPrefix,
      // tests fire 1,000 calls at once at hubs in this one process, on two shared cores: the event loop
      // stalls past the 250 ms default, and a reply waiting in the socket would count as a timeout
      KAIHUB_REDIS_TIMEOUT_MS: '2000',
    }),
    ...env,
  });
  const logger =
    options.logger ?? createLogger(process.env.KAIHUB_TEST_LOG_LEVEL === 'info' ? 'info' : 'silent');
  const hub = await startHub(config, { ...options.hub, logger });
  return {
    hub,
    url: hub.url,
    database,
    secretKey,
    redisPrefix,
    admin: (method, path, body) => callAdmin(hub.url, method, path, body),
    async close() {
      await hub.close();
      // the first hub owns the database; a replica leaves it to the first
      if (!options.replicaOf) {
        await database.drop();
        if (redisPrefix !== undefined && env.REDIS_URL === undefined) await dropRedisPrefix(redisPrefix);
      }
    },
  };
}

export interface Catalog {
  supplierId: string;
  productId: string;
  embeddingProductId: string;
  deploymentId: string;
  organizationId: string;
  keyId: string;
  key: string;
}

/**
 * A supplier with a chat product (`hcx-test`, 1,000 / 3,000 KRW per 1M tokens) and an embedding
 * product (`embed-test`, 100 KRW per 1M), both deployed on `upstreamUrl`, and an organisation with a
 * key. Prices are chosen so that costs in tests are easy to compute by hand.
 */
export async function seedCatalog(
  t: Pick<TestHub, 'admin'>,
  upstreamUrl: string,
  upstreamKey = 'upstream-secret',
): Promise<Catalog> {
  const must = async (method: string, path: string, body: unknown) => {
    const r = await t.admin(method, path, body);
    if (r.status !== 201) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  const supplier = await must('POST', '/suppliers', { name: '네이버클라우드', nameEn: 'NAVER Cloud' });
  const product = await must('POST', '/products', {
    supplierId: supplier.id,
    model: 'hcx-test',
    displayName: 'HyperCLOVA X Test',
    parameters: 14_000_000_000,
    purposes: ['chat', 'summarization'],
    modality: 'text',
    contextWindow: 32768,
    priceInputPer1M: '1000',
    priceOutputPer1M: 3000,
    residency: 'domestic',
  });
  const embedding = await must('POST', '/products', {
    supplierId: supplier.id,
    model: 'embed-test',
    displayName: 'Embedding Test',
    purposes: ['embedding'],
    modality: 'embedding',
    contextWindow: 8192,
    priceInputPer1M: '100',
    priceOutputPer1M: '0',
    residency: 'domestic',
  });
  const deployment = await must('POST', '/deployments', {
    productId: product.id,
    adapter: 'openai-compatible',
    baseUrl: upstreamUrl,
    apiKey: upstreamKey,
    upstreamModel: 'fake-chat',
  });
  await must('POST', '/deployments', {
    productId: embedding.id,
    adapter: 'openai-compatible',
    baseUrl: upstreamUrl,
    apiKey: upstreamKey,
    upstreamModel: 'fake-embed',
  });
  const org = await must('POST', '/organizations', { name: '테스트중소기업', class: 'sme' });
  const key = await must('POST', `/organizations/${org.id}/keys`, { name: 'test' });
  return {
    supplierId: supplier.id,
    productId: product.id,
    embeddingProductId: embedding.id,
    deploymentId: deployment.id,
    organizationId: org.id,
    keyId: key.id,
    key: key.key,
  };
}
