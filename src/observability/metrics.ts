import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** Every metric the hub exports, created once and passed where it is observed. */
export function createMetrics() {
  const registry = new Registry();
  /** Filled at scrape time (nothing on the request path); set by the composition root. */
  const deploymentHealth: {
    read: (set: (product: string, deployment: string, healthy: boolean) => void) => void;
  } = { read: () => {} };
  /** The same for load: per deployment its calls in flight and cap, per product its calls waiting. */
  const deploymentLoad: {
    read: (
      set: (product: string, deployment: string, inFlight: number, maxConcurrent: number) => void,
      queued: (product: string, waiting: number) => void,
    ) => void;
  } = { read: () => {} };
  /** How many usage records this replica recorded and has not charged yet (PostgreSQL: decision 0021). */
  const usageUncharged: { read: () => number } = { read: () => 0 };
  collectDefaultMetrics({ register: registry, prefix: 'kaihub_process_' });
  const latencyBuckets = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
  return {
    registry,
    requests: new Counter({
      name: 'kaihub_requests_total',
      help: 'Requests on /v1 by product, endpoint and HTTP status',
      labelNames: ['product', 'endpoint', 'status'] as const,
      registers: [registry],
    }),
    requestDuration: new Histogram({
      name: 'kaihub_request_duration_seconds',
      help: 'Time from request received to response completed',
      labelNames: ['product', 'endpoint'] as const,
      buckets: latencyBuckets,
      registers: [registry],
    }),
    timeToFirstToken: new Histogram({
      name: 'kaihub_time_to_first_token_seconds',
      help: 'Time from request received to the first streamed token sent',
      labelNames: ['product'] as const,
      buckets: latencyBuckets,
      registers: [registry],
    }),
    tokens: new Counter({
      name: 'kaihub_tokens_total',
      help: 'Tokens metered, by product and kind (prompt or completion)',
      labelNames: ['product', 'kind'] as const,
      registers: [registry],
    }),
    cost: new Counter({
      name: 'kaihub_cost_micro_krw_total',
      help: 'Cost metered in micro-won (1 KRW = 1,000,000), by product',
      labelNames: ['product'] as const,
      registers: [registry],
    }),
    upstreamErrors: new Counter({
      name: 'kaihub_upstream_errors_total',
      help: 'Failed upstream calls by product, deployment and kind (http status, connect, timeout, protocol)',
      labelNames: ['product', 'deployment', 'kind'] as const,
      registers: [registry],
    }),
    deploymentHealth,
    deploymentHealthy: new Gauge({
      name: 'kaihub_deployment_healthy',
      help: '1 when a deployment is healthy on this replica, 0 while it cools down after repeated failures',
      labelNames: ['product', 'deployment'] as const,
      registers: [registry],
      collect() {
        this.reset();
        deploymentHealth.read((product, deployment, healthy) => {
          this.labels(product, deployment).set(healthy ? 1 : 0);
        });
      },
    }),
    piiFindings: new Counter({
      name: 'kaihub_pii_findings_total',
      help: 'Personal data found in requests by the guard, by type and what the policy did (detect, mask, pseudonymize, block)',
      labelNames: ['type', 'action'] as const,
      registers: [registry],
    }),
    usageRejected: new Counter({
      name: 'kaihub_usage_rejected_total',
      help: 'Usage records the database refused, set aside in usage_rejected (see GET /admin/v1/usage/rejected)',
      registers: [registry],
    }),
    usageUncharged,
    usageUnchargedRecords: new Gauge({
      name: 'kaihub_usage_uncharged_records',
      help: 'Usage records this replica made durable whose charge is not posted yet (PostgreSQL: posted just after; a count that grows means charges are failing)',
      registers: [registry],
      collect() {
        this.set(usageUncharged.read());
      },
    }),
    deploymentLoad,
    deploymentInFlight: new Gauge({
      name: 'kaihub_deployment_in_flight',
      help: 'Calls in flight to a deployment from this replica (attempt start to the end of its answer)',
      labelNames: ['product', 'deployment'] as const,
      registers: [registry],
      collect() {
        this.reset();
        deploymentLoad.read(
          (product, deployment, inFlight) => this.labels(product, deployment).set(inFlight),
          () => {},
        );
      },
    }),
    deploymentMaxConcurrent: new Gauge({
      name: 'kaihub_deployment_max_concurrent',
      help: 'The cap on calls in flight to a deployment from one replica (its own, or KAIHUB_DEPLOYMENT_MAX_CONCURRENT)',
      labelNames: ['product', 'deployment'] as const,
      registers: [registry],
      collect() {
        this.reset();
        deploymentLoad.read(
          (product, deployment, _inFlight, maxConcurrent) =>
            this.labels(product, deployment).set(maxConcurrent),
          () => {},
        );
      },
    }),
    deploymentQueued: new Gauge({
      name: 'kaihub_deployment_queued',
      help: "Calls waiting on this replica for a slot of a product's deployments (all full)",
      labelNames: ['product'] as const,
      registers: [registry],
      collect() {
        this.reset();
        deploymentLoad.read(
          () => {},
          (product, waiting) => this.labels(product).set(waiting),
        );
      },
    }),
    inFlight: new Gauge({
      name: 'kaihub_in_flight_requests',
      help: 'Requests on /v1 being served now',
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
