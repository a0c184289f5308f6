import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Caller, KeyCache } from '../../accounts/key-cache.ts';
import type { Meter } from '../../billing/meter.ts';
import type { CatalogSnapshot, RoutableProduct } from '../../catalog/catalog-snapshot.ts';
import type { Admission, AdmissionTicket } from '../../limits/admission.ts';
import type { Logger } from '../../observability/logger.ts';
import type { Metrics } from '../../observability/metrics.ts';
import type { CallOptions, ProviderAdapter } from '../../providers/adapter.ts';
import type { Router } from '../../routing/router.ts';

/** Everything the /v1 surface needs, assembled once by the composition root. */
export interface OpenAIDeps {
  keys: KeyCache;
  catalog: CatalogSnapshot;
  adapters: ReadonlyMap<string, ProviderAdapter>;
  /** Deployment choice, retries, cooldowns and fallbacks. */
  router: Router;
  admission: Admission;
  meter: Meter;
  metrics: Metrics;
  logger: Logger;
  maxBodyBytes: number;
  upstreamHeadersTimeoutMs: number;
  upstreamTotalTimeoutMs: number;
  /** Longest silence from an upstream after its headers (between stream chunks). */
  upstreamIdleTimeoutMs: number;
  logContent: boolean;
}

/** One request on /v1, from arrival to its usage record. */
export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  requestId: string;
  /** performance.now() at arrival. */
  startedAt: number;
  startedAtMs: number;
  caller: Caller;
}

/** A request that has been resolved to a product and admitted. */
export interface AdmittedCall {
  product: RoutableProduct;
  ticket: AdmissionTicket;
  /** Aborted when the client goes away or the total time runs out; passed to the upstream call. */
  signal: AbortSignal;
  /** What every upstream attempt of this call is given: the signal and the timeouts. */
  options: CallOptions;
  /** Clears the total-time timer and the disconnect listener. */
  finish(): void;
}
