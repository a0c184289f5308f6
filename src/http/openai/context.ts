import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Caller, KeyCache } from '../../accounts/key-cache.ts';
import type { CallLayer } from '../../calls/call-layer.ts';
import type { CatalogSnapshot } from '../../catalog/catalog-snapshot.ts';
import type { LatestScores } from '../../evaluation/runs/latest-scores.ts';
import type { Logger } from '../../observability/logger.ts';
import type { Metrics } from '../../observability/metrics.ts';

/** Everything the /v1 surface needs, assembled once by the composition root. */
export interface OpenAIDeps {
  keys: KeyCache;
  /** The life of every model call (src/calls/): /v1 only parses, hands over and writes. */
  calls: CallLayer;
  catalog: CatalogSnapshot;
  /** Each product's latest evaluation scores, shown in its model object's `metadata`. */
  scores?: LatestScores;
  metrics: Metrics;
  logger: Logger;
  maxBodyBytes: number;
}

/** One request on /v1, from arrival to its answer. */
export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  requestId: string;
  /** performance.now() at arrival. */
  startedAt: number;
  startedAtMs: number;
  caller: Caller;
}
