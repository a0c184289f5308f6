import { setTimeout as sleepFor } from 'node:timers/promises';
import type { RoutingStrategy } from '../catalog/catalog-records.ts';
import type { RoutableDeployment, RoutableProduct } from '../catalog/catalog-snapshot.ts';
import { UpstreamError } from '../providers/adapter.ts';
import { toUpstreamError } from '../providers/http.ts';
import { DeploymentHealth } from './health.ts';
import { DeploymentLoad } from './load.ts';

/**
 * A deployment's score under a product's strategy, lower first: `weighted` scores all alike (random
 * by weight); `least-in-flight` counts this replica's calls in flight; `lowest-latency` is the moving
 * average of its time to accept a call, -1 (first) while unmeasured so that every one gets measured.
 */
function scoreOf(strategy: RoutingStrategy, load: DeploymentLoad | undefined, id: string): number {
  if (load === undefined || strategy === 'weighted') return 0;
  return strategy === 'least-in-flight' ? load.inFlight(id) : load.latencyMs(id);
}

/** Whether a deployment may take a call that needs `needs` (not cooling down, able to express it). */
function keeps(
  d: RoutableDeployment,
  available: ((id: string) => boolean) | undefined,
  needs: number,
): boolean {
  return (available === undefined || available(d.id)) && (d.features & needs) === needs;
}

/**
 * The order to try a product's deployments in: best priority tier first; within a tier, best score
 * under the product's strategy first (see `scoreOf`), equal scores in a weighted random order, so
 * traffic spreads by weight and a failed deployment's share falls to its peers. Weight 0 is standby:
 * after every weighted peer of its tier. Deployments for which `available` says no (cooling down),
 * and those whose features do not cover the request's `needs`, are left out. O(n²) in the deployments of one tier, which are few; no awaits.
 */
export function orderDeployments(
  product: RoutableProduct,
  random: () => number = Math.random,
  available?: (id: string) => boolean,
  load?: DeploymentLoad,
  /** Feature bits the request needs (`providers/features.ts`): deployments lacking one are left out. */
  needs = 0,
): RoutableDeployment[] {
  let all = product.deployments;
  // cooling-down deployments and those that cannot express the request are skipped (a filtered copy
  // only when one actually is; no closure per call)
  for (const d of all) {
    if (!keeps(d, available, needs)) {
      const kept: RoutableDeployment[] = [];
      for (const x of all) if (keeps(x, available, needs)) kept.push(x);
      all = kept;
      break;
    }
  }
  if (all.length <= 1) return all;
  const strategy = product.routingStrategy ?? 'weighted';
  const out: RoutableDeployment[] = [];
  let i = 0;
  while (i < all.length) {
    const priority = all[i]!.priority;
    const tierFirst = i;
    const tierStart = out.length;
    // the tier's weighted deployments are appended to `out`, then put in order there, in place
    for (; i < all.length && all[i]!.priority === priority; i++) if (all[i]!.weight > 0) out.push(all[i]!);
    for (let from = tierStart; from < out.length - 1; from++) {
      let best = Infinity;
      let total = 0;
      for (let j = from; j < out.length; j++) {
        const d = out[j]!;
        const score = scoreOf(strategy, load, d.id);
        if (score < best) {
          best = score;
          total = d.weight;
        } else if (score === best) {
          total += d.weight;
        }
      }
      let pick = random() * total;
      let chosen = -1;
      for (let j = from; j < out.length; j++) {
        const d = out[j]!;
        if (scoreOf(strategy, load, d.id) !== best) continue;
        chosen = j;
        pick -= d.weight;
        if (pick < 0) break;
      }
      const d = out[chosen]!;
      out[chosen] = out[from]!;
      out[from] = d;
    }
    for (let j = tierFirst; j < i; j++) if (all[j]!.weight === 0) out.push(all[j]!);
  }
  return out;
}

export interface Attempt {
  /** The product (public model id) the attempt was for: a fallback may differ from the one asked. */
  model: string;
  productId: string;
  deploymentId: string;
  error: UpstreamError | null;
  durationMs: number;
}

export interface Served<T> {
  product: RoutableProduct;
  deployment: RoutableDeployment;
  result: T;
}

/**
 * What the router needs of one call: the upstream call itself, the fallbacks, and where to report.
 * Implemented by the call (src/calls/model-call.ts), so routing one call allocates no closures.
 */
export interface RoutedCall<T> {
  /** Aborted when the call must stop (client gone, total time up). */
  readonly signal: AbortSignal;
  /** Feature bits the request needs; deployments that lack one are not tried. */
  readonly needs: number;
  /** Every attempt, in order; the router appends. */
  readonly attempts: Attempt[];
  /** Whose call it is: waiting for a full deployment is fair across organisations. */
  readonly organizationId: string;
  /**
   * Whether a time-out of this call says anything about the deployment. Not when the request's own
   * size explains it (a huge prompt, a long answer asked for): such a time-out is not retried and does
   * not count against the deployment's health.
   */
  readonly timeoutsCountAgainstHealth: boolean;
  /** One upstream call; resolves once the upstream accepted it (plain: its answer; stream: headers). */
  attempt(product: RoutableProduct, deployment: RoutableDeployment): Promise<T>;
  /** The products to try, in order, after `product` could not answer; read only after a failure. */
  fallbacks(product: RoutableProduct): Iterable<RoutableProduct>;
  attemptStarted(product: RoutableProduct, deployment: RoutableDeployment): void;
  /** An attempt failed before anything reached the client. */
  attemptFailed(attempt: Attempt): void;
}

export interface RouterOptions {
  /** Extra attempts per product after the first, on connection errors, timeouts, 429 and 5xx. */
  retries?: number;
  /** Backoff before retry n: base·2^(n−1), with equal jitter (half fixed, half random). */
  baseDelayMs?: number;
  /** A Retry-After longer than this is not waited for: another deployment or product is tried. */
  maxRetryAfterMs?: number;
  /** How long a call waits for a slot when every deployment that could serve it is full. */
  queueTimeoutMs?: number;
  health?: DeploymentHealth;
  /** In-flight counts, capacity and latencies (strategies, caps, the fair queue). */
  load?: DeploymentLoad;
  random?: () => number;
  sleep?: (ms: number, signal: AbortSignal) => Promise<unknown>;
}

/** Failures after which another attempt is worth it: nothing reached the client, nothing was generated. */
export function isRetryable(error: UpstreamError): boolean {
  if (error.kind === 'connect' || error.kind === 'timeout') return true;
  if (error.kind !== 'http') return false;
  const status = error.details.status ?? 0;
  return status === 429 || status >= 500;
}

/** Retry-After in milliseconds (delta-seconds, or an HTTP date), undefined when absent or unreadable. */
export function retryAfterMs(error: UpstreamError, now = Date.now()): number | undefined {
  const raw = error.details.retryAfter;
  if (raw === undefined) return undefined;
  if (/^\s*\d+\s*$/.test(raw)) return Number(raw) * 1000;
  const at = Date.parse(raw);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** `UpstreamError.details.code` when no upstream was called: every deployment of the product cools down. */
export const DEPLOYMENTS_COOLING_DOWN = 'deployments_cooling_down';
/** … or none of them can express the request (a fallback product lacking a feature). */
export const NO_CAPABLE_DEPLOYMENT = 'no_capable_deployment';

type ProductOutcome<T> =
  | { served: Served<T>; error?: undefined }
  | { served?: undefined; error: UpstreamError };

/**
 * Product -> deployment, with retries, cooldowns, capacity and fallbacks, all before the first byte
 * reaches the client: `call.attempt` resolves once the upstream accepted the call (plain: the whole
 * answer; stream: the headers), and nothing is retried after that. The caller reports the end of the
 * answer with `finished`, which also keeps the deployment's health.
 *
 * Within a product, a retry prefers the next available deployment in the order (wrapping round to
 * the same one when it is alone). A connection refused by a deployment not tried yet moves on at once
 * and costs no retry: nothing reached any model. A deployment at its concurrency cap is passed over
 * for a peer with room; when every one is full the call waits in the product's fair queue until a
 * slot frees or the queue deadline passes (`CapacityError`). When a product is exhausted (or every
 * deployment of it cools down), the fallback products are tried in order, each with the same policy.
 * Errors that another attempt would not fix (4xx, a garbled answer, the client gone, the total time
 * up, a time-out the request's own size explains) end the call at once.
 */
export class Router {
  readonly health: DeploymentHealth;
  readonly load: DeploymentLoad;
  private readonly retries: number;
  private readonly baseDelayMs: number;
  private readonly maxRetryAfterMs: number;
  private readonly queueTimeoutMs: number;
  private readonly random: () => number;
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<unknown>;
  private readonly isAvailable: (id: string) => boolean;

  constructor(options: RouterOptions = {}) {
    this.health = options.health ?? new DeploymentHealth();
    this.load = options.load ?? new DeploymentLoad();
    this.retries = options.retries ?? 2;
    this.baseDelayMs = options.baseDelayMs ?? 100;
    this.maxRetryAfterMs = options.maxRetryAfterMs ?? 5_000;
    this.queueTimeoutMs = options.queueTimeoutMs ?? 5_000;
    this.random = options.random ?? Math.random;
    this.sleep = options.sleep ?? ((ms, signal) => sleepFor(ms, undefined, { signal }));
    this.isAvailable = (id) => this.health.isAvailable(id);
  }

  /** The deployments of a product to try for a request needing `needs`, in order, cooling-down ones left out. */
  order(product: RoutableProduct, needs = 0): RoutableDeployment[] {
    return orderDeployments(product, this.random, this.isAvailable, this.load, needs);
  }

  /**
   * The answer of a call `route` returned has ended (plain: read; stream: finished or broken off),
   * with the failure that broke it off after the first byte, if any: the deployment has one call fewer
   * in flight, and its health hears about the failure. Once per successful `route`.
   */
  finished(call: RoutedCall<unknown>, served: Served<unknown>, failure: UpstreamError | null): void {
    const id = served.deployment.id;
    this.load.ended(served.deployment, served.product.id);
    if (failure === null) return;
    // the client leaving, or the hub's own total time, says nothing about the deployment
    if (failure.kind === 'cancelled' || call.signal.aborted) this.health.released(id);
    else if (failure.kind === 'timeout' && !call.timeoutsCountAgainstHealth) this.health.released(id);
    else this.health.failed(id, failure);
  }

  async route<T>(call: RoutedCall<T>, product: RoutableProduct): Promise<Served<T>> {
    if (product.deployments.length === 0)
      throw new UpstreamError('connect', 'this model has no active deployment');
    const first = await this.tryProduct(call, product);
    if (first.served) return first.served;
    if (!call.signal.aborted) {
      for (const next of call.fallbacks(product)) {
        if (next === product || next.deployments.length === 0) continue;
        const outcome = await this.tryProduct(call, next);
        if (outcome.served) return outcome.served;
        if (call.signal.aborted) break;
      }
    }
    // when no fallback answered either, the client hears about the product it asked for
    throw first.error;
  }

  private async tryProduct<T>(call: RoutedCall<T>, product: RoutableProduct): Promise<ProductOutcome<T>> {
    const order = this.order(product, call.needs);
    if (order.length === 0) {
      const incapable =
        call.needs !== 0 && product.deployments.every((d) => (d.features & call.needs) !== call.needs);
      return {
        error: incapable
          ? new UpstreamError('connect', `no deployment of ${product.model} can serve this request`, {
              code: NO_CAPABLE_DEPLOYMENT,
            })
          : new UpstreamError(
              'connect',
              `every deployment of ${product.model} is cooling down after repeated failures`,
              { code: DEPLOYMENTS_COOLING_DOWN },
            ),
      };
    }
    const health = this.health;
    const load = this.load;
    let retriesLeft = this.retries;
    let retry = 0;
    let pos = this.withRoom(order, 0);
    let triedUpTo = 0;
    for (;;) {
      let deployment: RoutableDeployment;
      if (pos === -1) {
        // every deployment that could serve is full: wait for a slot, fairly, until the deadline
        deployment = await load.waitForRoom(
          product.id,
          product.model,
          order,
          call.organizationId,
          call.signal,
          this.queueTimeoutMs,
        );
        pos = order.indexOf(deployment);
      } else {
        deployment = order[pos]!;
        load.started(deployment.id);
      }
      if (pos > triedUpTo) triedUpTo = pos;
      health.begin(deployment.id);
      call.attemptStarted(product, deployment);
      const started = performance.now();
      try {
        const result = await call.attempt(product, deployment);
        const durationMs = performance.now() - started;
        health.succeeded(deployment.id);
        // still in flight until the caller says the answer ended (`finished`)
        load.observe(deployment.id, durationMs);
        call.attempts.push({
          model: product.model,
          productId: product.id,
          deploymentId: deployment.id,
          error: null,
          durationMs,
        });
        return { served: { product, deployment, result } };
      } catch (caught) {
        load.ended(deployment, product.id);
        if (!(caught instanceof UpstreamError)) {
          // a bug, not the deployment's failure: no verdict on it, and the attempt still closes
          health.released(deployment.id);
          const attempt: Attempt = {
            model: product.model,
            productId: product.id,
            deploymentId: deployment.id,
            error: new UpstreamError('protocol', `the hub failed during the call: ${String(caught)}`),
            durationMs: performance.now() - started,
          };
          call.attempts.push(attempt);
          call.attemptFailed(attempt);
          throw caught;
        }
        const error = caught;
        const attempt: Attempt = {
          model: product.model,
          productId: product.id,
          deploymentId: deployment.id,
          error,
          durationMs: performance.now() - started,
        };
        call.attempts.push(attempt);
        call.attemptFailed(attempt);
        if (error.kind === 'cancelled' || call.signal.aborted) {
          health.released(deployment.id);
          throw error;
        }
        if (error.kind === 'timeout' && !call.timeoutsCountAgainstHealth) {
          // the request's own size explains it: no verdict on the deployment, and no retry
          health.released(deployment.id);
          throw error;
        }
        if (!isRetryable(error)) {
          // a 4xx means the deployment is up and answering; a garbled answer counts against it
          if (error.kind === 'http') health.succeeded(deployment.id);
          else health.failed(deployment.id, error);
          throw error;
        }
        health.failed(deployment.id, error);
        let nextPos = -1;
        for (let k = 1; k <= order.length; k++) {
          const q = (pos + k) % order.length;
          if (health.isAvailable(order[q]!.id)) {
            nextPos = q;
            break;
          }
        }
        if (nextPos === -1) return { error };
        const freeFailover = error.kind === 'connect' && nextPos > triedUpTo;
        if (!freeFailover) {
          if (retriesLeft === 0) return { error };
          retriesLeft--;
          retry++;
          let delay: number;
          const after = nextPos === pos ? retryAfterMs(error) : undefined;
          if (after !== undefined) {
            // the deployment said when it can take more; too long a wait is not worth the client's time
            if (after > this.maxRetryAfterMs) return { error };
            delay = after;
          } else {
            const backoff = this.baseDelayMs * 2 ** (retry - 1);
            delay = backoff / 2 + (this.random() * backoff) / 2;
          }
          if (delay > 0) {
            try {
              await this.sleep(delay, call.signal);
            } catch (sleepError) {
              throw toUpstreamError(sleepError, call.signal);
            }
          }
        }
        // a full deployment is passed over for the next one with room; none: wait in the queue
        pos = this.withRoom(order, nextPos);
      }
    }
  }

  /** The first position from `from` on (wrapping round) whose deployment has a free slot, or -1. */
  private withRoom(order: readonly RoutableDeployment[], from: number): number {
    for (let k = 0; k < order.length; k++) {
      const q = (from + k) % order.length;
      if (this.load.hasRoom(order[q]!) && (k === 0 || this.health.isAvailable(order[q]!.id))) return q;
    }
    return -1;
  }
}
