import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { loadAdminToken } from './accounts/admin-token.ts';
import { ApiKeyService } from './accounts/api-keys.ts';
import { KeyCache } from './accounts/key-cache.ts';
import { OrganizationService } from './accounts/organizations.ts';
import { PersonalTokenService } from './accounts/personal-tokens.ts';
import { createAuthenticator } from './accounts/principals.ts';
import { UserService } from './accounts/users.ts';
import { AuditLog } from './audit/audit-log.ts';
import { ReviewService } from './billing/application-reviews.ts';
import { CorrectionService } from './billing/corrections.ts';
import { FileUsageJournal } from './billing/file-journal.ts';
import { FundsService } from './billing/funds.ts';
import { accountId } from './billing/ledger.ts';
import { Meter } from './billing/meter.ts';
import { ApplicationService } from './billing/programme-applications.ts';
import { ProgrammeCloseService } from './billing/programme-close.ts';
import { SelectionService } from './billing/programme-selection.ts';
import { ProgrammeService } from './billing/programmes.ts';
import { SettlementService } from './billing/settlement.ts';
import { SupplierPoolService } from './billing/supplier-pool.ts';
import { DatabaseUsageJournal, type RejectedUsage, type UsageJournal } from './billing/usage-journal.ts';
import { DEFAULT_DISPATCHER_SETTINGS, WebhookDispatcher } from './billing/webhook-dispatcher.ts';
import { WebhookService } from './billing/webhooks.ts';
import { CallLayer } from './calls/call-layer.ts';
import type { Guard } from './calls/guard.ts';
import { type CallObserver, observeNothing } from './calls/observer.ts';
import { SHIPPED_CATALOG_PATH, seedCatalogOnce } from './catalog/catalog-seed.ts';
import { CatalogService } from './catalog/catalog-service.ts';
import { CatalogSnapshot } from './catalog/catalog-snapshot.ts';
import { CredentialBox, loadSecretKeys } from './catalog/credentials.ts';
import type { ProvisionerOverrides } from './compute/provisioners/registry.ts';
import { createComputeServices } from './compute/services.ts';
import type { Clock } from './compute/values.ts';
import { type Config, ConfigError, parseSecretKey } from './config.ts';
import { ValidationError } from './errors.ts';
import { ArenaService } from './evaluation/ratings/arenas.ts';
import { BattleRuns } from './evaluation/ratings/battle-runs.ts';
import { RoundRecords } from './evaluation/rounds/round-records.ts';
import { RoundService } from './evaluation/rounds/rounds.ts';
import { type RunResults, runResultsFrom } from './evaluation/rounds/run-results.ts';
import { type Evaluation, openEvaluation } from './evaluation/runs/evaluation-runtime.ts';
import { DataPolicyService } from './guardrails/data-policies.ts';
import { PiiGuard } from './guardrails/pii-guard.ts';
import { DataPolicySnapshot } from './guardrails/policy-snapshot.ts';
import { createAdminHandler } from './http/admin/router.ts';
import { adminRoutes } from './http/admin/routes.ts';
import { createLeaderboardHandler } from './http/leaderboard/handler.ts';
import { createMetricsAccess } from './http/metrics-access.ts';
import { createOpenAIHandler } from './http/openai/routes.ts';
import { sendJson } from './http/respond.ts';
import { createHttpServer } from './http/server.ts';
import type { Admission } from './limits/admission.ts';
import { BudgetHolds } from './limits/budget-holds.ts';
import { OrganizationConcurrency } from './limits/concurrency.ts';
import { HubAdmission } from './limits/hub-admission.ts';
import { RateLimits } from './limits/rate-limits.ts';
import { connectRedis, firstConnection } from './limits/redis-connection.ts';
import { SharedAdmission } from './limits/shared-admission.ts';
import type { AllowanceSettings } from './limits/shared-allowances.ts';
import { SharedEvents } from './limits/shared-events.ts';
import { createLogger, type Logger } from './observability/logger.ts';
import { createMetrics, type Metrics } from './observability/metrics.ts';
import { createTracing } from './observability/tracing.ts';
import { createUpstreamAgent } from './providers/http.ts';
import { createSupplierAgent, NetworkPolicy } from './providers/network.ts';
import { closeAdapters, createAdapters } from './providers/registry.ts';
import { DeploymentHealth } from './routing/health.ts';
import { Router } from './routing/router.ts';
import { type Database, openDatabase } from './storage/database.ts';
import { migrate } from './storage/migrator.ts';

export interface Hub {
  server: Server;
  db: Database;
  logger: Logger;
  url: string;
  /** Every /admin/v1 route (method and path template): what the role matrix test must cover. */
  adminRoutes: readonly { method: string; path: string }[];
  /** Printed once by `kaihub start` when this start generated and stored the operator token. */
  generatedAdminToken: string | undefined;
  /** Evaluation runs, their queue and the catalogue's scores (src/evaluation/runs/). */
  evaluation: Evaluation;
  close(): Promise<void>;
}

export interface HubOptions {
  admission?: Admission;
  guard?: Guard;
  observer?: CallObserver;
  logger?: Logger;
  /** Where a round reads a score given as a run id (evaluation/rounds/run-results.ts); none: by value only. */
  runResults?: RunResults;
  /** GPU compute's clock (tests move it across months) and scheduler clients (tests record them). */
  compute?: { clock?: Clock; provisioners?: ProvisionerOverrides };
  /**
   * With Redis: how allowances (decision 0027) are timed and sized, over the defaults. Tests that look
   * at an allowance while it admits give it a slice and an idle time longer than the test, so that its
   * 200 ms idle retirement does not race a charge the journal posts later under load.
   */
  allowances?: Partial<AllowanceSettings>;
  /**
   * On SQLite: how much of the config's `databaseLockWaitMs` the hub's connection spends on timers
   * before it sleeps in SQLite's busy handler (50 ms; storage/sqlite.ts). Tests that hold the lock from
   * outside shorten it.
   */
  sqliteAsyncWaitMs?: number;
  /**
   * false: everything but the HTTP server (`kaihub eval run` and `kaihub eval worker` call models
   * in-process through the same call layer); no port is opened, no operator token generated.
   */
  listen?: boolean;
}

/** The composition root: config → storage → services → HTTP. Nothing else constructs services. */
export async function startHub(config: Config, options: HubOptions = {}): Promise<Hub> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const listen = options.listen ?? true;
  const db = await openDatabase(config.database, {
    lockWaitMs: config.databaseLockWaitMs,
    sqliteAsyncWaitMs: options.sqliteAsyncWaitMs,
  });
  try {
    const applied = await migrate(db);
    if (applied.length > 0) logger.info({ migrations: applied }, 'database migrated');
  } catch (error) {
    await db.close();
    throw error;
  }
  const auditLog = new AuditLog(db);
  if (config.catalogSeed !== 'none') {
    const path = config.catalogSeed ?? SHIPPED_CATALOG_PATH;
    try {
      const seeded = await seedCatalogOnce(db, path, auditLog);
      if (seeded) logger.info({ path, products: seeded.products.created.length }, 'catalogue seeded');
    } catch (error) {
      await db.close();
      if (error instanceof ValidationError)
        throw new ConfigError(`KAIHUB_CATALOG_SEED: ${path}: ${error.message}`);
      throw error;
    }
  }
  const secretKeys = loadSecretKeys(
    config.secretKey,
    config.secretKeysOld,
    config.dataDir,
    parseSecretKey,
    (m) => logger.warn(m),
  );
  const credentials = new CredentialBox(secretKeys.current, secretKeys.old);
  const adminToken = await loadAdminToken(db, config.adminToken);
  const metrics = createMetrics();
  const logError = (error: unknown) => logger.error({ err: error }, 'background refresh failed');

  const agent = createUpstreamAgent(config.upstreamConnectTimeoutMs);
  const supplierNetworks = new NetworkPolicy(config.supplierNetworks);
  const supplierAgent = createSupplierAgent(supplierNetworks, config.upstreamConnectTimeoutMs);
  const adapters = createAdapters(agent, {
    local: { modelsDir: config.modelsDir, threads: config.localThreads, parallel: config.localParallel },
    limits: { maxEventBytes: config.upstreamMaxEventBytes, maxBodyBytes: config.upstreamMaxBodyBytes },
    supplierDispatcher: supplierAgent,
  });
  const catalogService = new CatalogService(db, credentials);
  const snapshot = new CatalogSnapshot(
    db,
    credentials,
    {
      featuresOf: (adapter, target) => adapters.get(adapter)?.features(target) ?? 0,
      defaultMaxConcurrent: config.deploymentMaxConcurrent,
    },
    logError,
  );
  await snapshot.reload();
  // awaited by every catalog change: the admin API answers once routing here sees the change
  catalogService.onChange = () => snapshot.reload().catch(logError);
  snapshot.start();

  const keyCache = new KeyCache(db, logError);
  keyCache.start();
  const organizations = new OrganizationService(db);
  organizations.checkModels = (field, models) => catalogService.requireModels(field, models);
  const keys = new ApiKeyService(db);
  const users = new UserService(db);
  const tokens = new PersonalTokenService(db);
  const authenticate = createAuthenticator(adminToken, tokens);

  const router = new Router({
    retries: config.upstreamRetries,
    baseDelayMs: config.upstreamRetryBaseMs,
    maxRetryAfterMs: config.upstreamRetryAfterMaxMs,
    queueTimeoutMs: config.queueTimeoutMs,
    health: new DeploymentHealth({
      failureThreshold: config.upstreamCooldownFailures,
      baseCooldownMs: config.upstreamCooldownMs,
      maxCooldownMs: Math.max(60_000, config.upstreamCooldownMs),
    }),
  });
  metrics.deploymentLoad.read = (set, queued) => {
    for (const product of snapshot.all()) {
      queued(product.model, router.load.queued(product.id));
      for (const d of product.deployments)
        set(product.model, d.id, router.load.inFlight(d.id), d.maxConcurrent);
    }
  };
  metrics.deploymentHealth.read = (set) => {
    for (const product of snapshot.all())
      for (const d of product.deployments) set(product.model, d.id, router.health.isHealthy(d.id));
  };
  const usageJournal = openUsageJournal(db, config, logger, metrics);
  // data policies: personal data and residency per organisation, programme or product (docs/guardrails.md)
  const dataPolicies = new DataPolicyService(db);
  const policySnapshot = new DataPolicySnapshot(db, 1_000, logError);
  await policySnapshot.reload();
  dataPolicies.onChange = () => policySnapshot.reload().catch(logError);
  policySnapshot.start();
  const guard = options.guard ?? new PiiGuard(policySnapshot, logger, metrics);
  // Traces (observability/tracing.ts): null unless an OTLP endpoint is set, and then no SDK is loaded.
  const tracing = await createTracing(config.tracing, {
    logger,
    redact: (text) => guard.redact?.(text) ?? text,
  });
  const meter = new Meter(usageJournal, metrics, logger);
  // vouchers, wallets and the holds on them (billing/ledger.ts, limits/budget-holds.ts)
  const programmes = new ProgrammeService(db);
  const funds = new FundsService(db, programmes);
  // the supplier pool, applications, their review and selection (docs/billing.md)
  const supplierPool = new SupplierPoolService(db);
  const applications = new ApplicationService(db);
  const reviews = new ReviewService(db, programmes, applications);
  const selection = new SelectionService(db, programmes, applications);
  const budgetHolds = new BudgetHolds(db, () => usageJournal.sync());
  // closing sees every charge a client saw complete, whichever replica served it (decision 0021)
  const settlement = new SettlementService(db, () => usageJournal.syncAll());
  const programmeClose = new ProgrammeCloseService(db, () => usageJournal.syncAll());
  const corrections = new CorrectionService(db, () => usageJournal.syncAll());
  const webhooks = new WebhookService(db, credentials, supplierNetworks);
  // evaluation arenas and rounds (docs/evaluation-rounds.md); scores come by value until runs are wired
  const arenas = new ArenaService(db);
  const rounds = new RoundService(db);
  const roundRecords = new RoundRecords(db);
  // deliveries go where an organisation's URL points: through the pool that checks every address
  const webhookDispatcher = new WebhookDispatcher(db, credentials, supplierAgent, logger, {
    ...DEFAULT_DISPATCHER_SETTINGS,
    retryBaseMs: config.webhookRetryBaseMs,
  });
  // With REDIS_URL: limits, holds and revocation shared by every replica (decision 0019); else in memory.
  const shared = config.redisUrl === undefined ? null : await openShared(config, config.redisUrl, logger);
  const sharedAdmission =
    shared === null
      ? null
      : new SharedAdmission(
          shared.redis,
          db,
          () => usageJournal.sync(),
          {
            prefix: config.redisPrefix,
            leaseMs: config.holdLeaseMs,
            allowances: { maxCalls: config.allowanceCalls, ...options.allowances },
          },
          logger,
          (requestId) => usageJournal.whenCharged(requestId),
        );
  // an organisation's funds or terms changed: what this replica holds about them is read again
  const forgetFunds = (id: string) => {
    budgetHolds.forget(id);
    sharedAdmission?.forget(id);
  };
  const events =
    shared === null
      ? null
      : new SharedEvents(
          shared.redis,
          shared.subscriber,
          config.redisPrefix,
          {
            keyRevoked: (hash) => keyCache.evictHash(hash),
            organizationChanged: (id) => {
              keyCache.evictOrganization(id);
              forgetFunds(id);
            },
            fundsChanged: forgetFunds,
          },
          logger,
        );
  if (events !== null && shared !== null) {
    // subscribed before the hub listens, when Redis is there; else as soon as it is
    if (shared.subscriberReady) await events.start();
    else events.start().catch(logError);
  }
  keys.onRevoke = (hash) => {
    keyCache.evictHash(hash);
    events?.keyRevoked(hash);
  };
  if (sharedAdmission !== null) {
    // a closing programme takes back what its vouchers left: their shared counters must say so too
    programmeClose.beforeClose = async (vouchers) => {
      const tokens = new Map<string, string | null>();
      for (const v of vouchers)
        tokens.set(
          v.voucherId,
          await sharedAdmission.prepareChange(v.organizationId, accountId.voucher(v.voucherId)),
        );
      return tokens;
    };
    programmeClose.afterClose = async (returned, tokens) => {
      for (const r of returned)
        await sharedAdmission.changed(
          r.organizationId,
          accountId.voucher(r.voucherId),
          r.amount,
          tokens.get(r.voucherId) ?? null,
        );
    };
  }
  // here, and on every other replica through Redis
  const fundsChanged = (id: string) => {
    forgetFunds(id);
    events?.fundsChanged(id);
  };
  programmeClose.onVouchersChanged = fundsChanged;
  programmes.onVoucherIssued = (id) => {
    fundsChanged(id);
    // a voucher brings its organisation under its programme's data policy
    policySnapshot.reload().catch(logError);
  };
  // a correction moves one account outside a call, as a deposit or a close does: counters move once
  if (sharedAdmission !== null)
    corrections.beforeChange = (id, account) => sharedAdmission.prepareChange(id, account);
  corrections.afterChange = async (id, account, amount, token) => {
    forgetFunds(id);
    if (sharedAdmission !== null) await sharedAdmission.changed(id, account, amount, token);
    events?.fundsChanged(id);
  };
  if (sharedAdmission !== null) funds.beforeDeposit = (id) => sharedAdmission.prepareDeposit(id);
  funds.onChange = async (id, deposit) => {
    forgetFunds(id);
    // the counter has the deposit before the operator's answer, and before other replicas read again
    if (sharedAdmission !== null && deposit !== undefined)
      await sharedAdmission.deposited(id, deposit.amount, deposit.token);
    events?.fundsChanged(id);
  };
  organizations.onChange = (id) => {
    keyCache.evictOrganization(id);
    forgetFunds(id);
    events?.organizationChanged(id);
  };
  const calls = new CallLayer({
    catalog: snapshot,
    adapters,
    router,
    admission: options.admission ?? sharedAdmission ?? new HubAdmission(new RateLimits(), budgetHolds),
    guard,
    observer: options.observer ?? tracing?.observer ?? observeNothing,
    meter,
    metrics,
    logger,
    concurrency: new OrganizationConcurrency(),
    settings: {
      upstreamHeadersTimeoutMs: config.upstreamHeadersTimeoutMs,
      upstreamTotalTimeoutMs: config.upstreamTotalTimeoutMs,
      upstreamIdleTimeoutMs: config.upstreamIdleTimeoutMs,
      streamDrainMs: config.streamDrainMs,
      organizationMaxConcurrent: config.organizationMaxConcurrent,
      largeRequestTokens: config.largeRequestTokens,
      logContent: config.logContent,
    },
  });
  // evaluation runs call products in-process through `calls`, metered to the evaluation account
  const evaluation = await openEvaluation(config, { db, auditLog, calls, logger }, listen);
  // a round's score or reference given as a run id reads that run's result
  roundRecords.runs = options.runResults ?? runResultsFrom(evaluation.store);
  // judged battles the hub runs itself: the same asker and retries as runs
  const battleRuns = new BattleRuns(
    db,
    arenas,
    evaluation,
    {
      retries: config.evalRetries,
      retryBaseMs: config.evalRetryBaseMs,
      concurrency: Math.min(64, config.evalConcurrency),
    },
    logger,
  );
  // what an unpublished round names leaves the catalogue, and comes back at publication, at once
  const rescore = () =>
    evaluation.scores.refresh().catch((err) => logger.error({ err }, 'catalogue scores not read again'));
  roundRecords.runsNamed = rescore;
  rounds.onPublished = rescore;
  const openai = createOpenAIHandler({
    keys: keyCache,
    calls,
    catalog: snapshot,
    scores: evaluation.scores,
    metrics,
    logger,
    maxBodyBytes: config.maxBodyBytes,
  });
  // GPU pools, calls, allocations and their schedulers (src/compute/, docs/compute.md)
  const compute = createComputeServices(db, credentials, logger, {
    auditLog,
    clock: options.compute?.clock,
    provisioners: options.compute?.provisioners,
    reconciler: {
      intervalMs: config.computeReconcileMs,
      usageEveryMs: config.computeUsageMs,
      driftEveryMs: config.computeDriftMs,
    },
  });
  const routes = adminRoutes({
    db,
    compute,
    catalog: catalogService,
    organizations,
    keys,
    users,
    tokens,
    auditLog,
    programmes,
    funds,
    corrections,
    supplierPool,
    applications,
    reviews,
    selection,
    budgetHolds: sharedAdmission ?? budgetHolds,
    settlement,
    webhooks,
    programmeClose,
    usageJournal,
    health: router.health,
    load: router.load,
    defaultMaxConcurrent: config.deploymentMaxConcurrent,
    supplierNetworks,
    dataPolicies,
    policySnapshot,
    routable: snapshot,
    arenas,
    battleRuns,
    rounds,
    roundRecords,
    evaluation: evaluation.service,
    evaluationJobs: evaluation.jobs,
    scores: evaluation.scores,
  });
  const admin = createAdminHandler(routes, {
    authenticate,
    auditLog,
    logger,
    commits: () => db.commits,
  });
  const mayScrape = createMetricsAccess(config.metricsToken, authenticate);

  const server = createHttpServer(
    {
      openai,
      admin,
      healthz: (_req, res) => sendJson(res, 200, { status: 'ok' }),
      leaderboard: createLeaderboardHandler(rounds, arenas),
      readyz: async (_req, res) => {
        try {
          await db.ping();
        } catch (error) {
          sendJson(res, 503, {
            status: 'unavailable',
            database: db.dialect,
            error: String((error as Error).message),
          });
          return;
        }
        // Degraded, not unavailable: the other deployments serve; taking the replica out would not help.
        const unreadable = snapshot.unreadableCredentials();
        sendJson(res, 200, {
          status: unreadable.length > 0 ? 'degraded' : 'ready',
          database: db.dialect,
          credentials: { keyId: credentials.currentKeyId, unreadable },
        });
      },
      metrics: async (req, res) => {
        if (!(await mayScrape(req, res))) return;
        const text = await metrics.registry.metrics();
        res.writeHead(200, { 'content-type': metrics.registry.contentType });
        res.end(text);
      },
    },
    logger,
    { requestTimeoutMs: config.requestTimeoutMs, maxConnections: config.maxConnections },
  );
  if (listen) await listenOn(server, config);
  const address = listen ? (server.address() as AddressInfo) : null;
  const url =
    address === null
      ? ''
      : `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  if (listen) {
    logger.info({ url, database: db.dialect }, 'kaihub listening');
    webhookDispatcher.start();
    compute.reconciler.start();
    // a CLI or worker process leaves the hub's queue to the hub
    await evaluation.resumeQueue();
    const battleRunsResumed = await battleRuns.resumeUnfinished();
    if (battleRunsResumed > 0) logger.info({ runs: battleRunsResumed }, 'unfinished battle runs resumed');
  }
  // Only now: a start that could not listen leaves no token behind that nobody was shown.
  const generatedAdminToken = listen ? await adminToken.commit() : undefined;
  if (generatedAdminToken) {
    await auditLog.record({
      actorId: 'system',
      source: 'system',
      action: 'create',
      entityType: 'admin_token',
      entityId: 'operator-token',
    });
  }

  let closing: Promise<void> | undefined;
  return {
    server,
    db,
    logger,
    url,
    adminRoutes: routes.map((r) => ({ method: r.method, path: r.path })),
    generatedAdminToken,
    evaluation,
    close() {
      closing ??= (async () => {
        snapshot.stop();
        keyCache.stop();
        policySnapshot.stop();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
          // in-flight requests get a grace period, then go
          setTimeout(() => server.closeAllConnections(), 5_000).unref();
        });
        // runs in progress here stop taking items; the calls already made are answered and written
        await evaluation.close();
        await battleRuns.close();
        // the spans of the calls just finished go out before the process does (never throws)
        await tracing?.shutdown();
        await webhookDispatcher.stop();
        await compute.reconciler.stop();
        await Promise.all([agent.close(), supplierAgent.close()]);
        await closeAdapters(adapters);
        await usageJournal.close();
        // allowances give back what their calls did not use; their charges are in the ledger by now
        await sharedAdmission?.close();
        if (shared !== null) await closeShared(shared);
        await db.close();
      })();
      return closing;
    },
  };
}

async function listenOn(server: Server, config: Config): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // a burst of new connections (a thousand clients at once) waits in the kernel's queue instead of
    // being refused: Node's default backlog is 511; the kernel caps it at net.core.somaxconn
    server.listen({ port: config.port, host: config.host, backlog: 4096 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/**
 * SQLite on a file: a journal file beside it, applied by a worker (see billing/file-journal.ts).
 * PostgreSQL (and an in-memory SQLite): group commit into the database itself.
 */
function openUsageJournal(db: Database, config: Config, logger: Logger, metrics: Metrics): UsageJournal {
  // a record the database refused is set aside in usage_rejected: loud, counted, never retried
  const onRejected = (rejected: RejectedUsage) => {
    metrics.usageRejected.inc();
    logger.error(rejected, 'usage record set aside in usage_rejected');
  };
  if (db.dialect === 'sqlite' && config.database !== ':memory:') {
    const journal = new FileUsageJournal(
      join(config.dataDir, 'journal'),
      config.database,
      (message) => logger.error(message),
      200,
      onRejected,
      db.lockWaiters ?? null,
      (message, level) => logger[level](message),
    );
    db.lockWaitHook = (sleeping) => journal.hubWaiting(sleeping);
    return journal;
  }
  // PostgreSQL: charges posted right after the record, off the response path (decision 0021)
  const journal = new DatabaseUsageJournal(db, onRejected, (message, error) =>
    logger.error({ err: error }, message),
  );
  metrics.usageUncharged.read = () => journal.unchargedCount();
  return journal;
}

interface SharedConnections {
  redis: Redis;
  subscriber: Redis;
  subscriberReady: boolean;
}

/** Two connections: commands, and pub/sub (a subscribed connection can do nothing else). */
async function openShared(config: Config, url: string, logger: Logger): Promise<SharedConnections> {
  const redis = await connectRedis(url, config.redisTimeoutMs, logger);
  // the subscriber waits for its connection: its SUBSCRIBE goes out as soon as Redis is there
  const subscriber = redis.duplicate({
    enableOfflineQueue: true,
    commandTimeout: undefined,
    maxRetriesPerRequest: null,
  });
  subscriber.on('error', () => {});
  const [ready, subscriberReady] = await Promise.all([
    firstConnection(redis, 2_000),
    firstConnection(subscriber, 2_000),
  ]);
  if (!ready)
    logger.error(
      { redis: new URL(url).host },
      'Redis not reachable at start: prepaid calls are refused (503) until it is; retrying',
    );
  return { redis, subscriber, subscriberReady };
}

async function closeShared(shared: SharedConnections): Promise<void> {
  // the subscriber has nothing to flush (and QUIT would wait for a connection that may never come)
  shared.subscriber.disconnect();
  // settles still on their way go out first; without a connection QUIT fails at once
  await shared.redis.quit().then(
    () => {},
    () => shared.redis.disconnect(),
  );
}
