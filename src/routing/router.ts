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

/**
 * The order to try a product's deployments in: best priority tier first; within a tier, best score
 * under the product's strategy first (see `scoreOf`), equal scores in a weighted random order, so
 * traffic spreads by weight and a failed deployment's share falls to its peers. Weight 0 is standby:
 * after every weighted peer of its tier. Deployments for which `available` says no (cooling down)
 * are left out. O(n²) in the deployments of one tier, which are few; no awaits.
 */
export function orderDeployments(
  product: RoutableProduct,
  random: () => number = Math.random,
  available?: (id: string) => boolean,
  load?: DeploymentLoad,
): RoutableDeployment[] {
  let all = product.deployments;
  // cooling-down deployments are skipped (a filtered copy only when one actually is)
  if (available) {
    for (const d of all) {
      if (!available(d.id)) {
        all = all.filter((x) => available(x.id));
        break;
      }
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

export interface RouterOptions {
  /** Extra attempts per product after the first, on connection errors, timeouts, 429 and 5xx. */
  retries?: number;
  /** Backoff before retry n: base·2^(n−1), with equal jitter (half fixed, half random). */
  baseDelayMs?: number;
  /** A Retry-After longer than this is not waited for: another deployment or product is tried. */
  maxRetryAfterMs?: number;
  health?: DeploymentHealth;
  /** In-flight counts and latencies for the `least-in-flight` and `lowest-latency` strategies. */
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

/**
 * Product -> deployment, with retries, cooldowns and fallbacks, all before the first byte reaches
 * the client: `call` resolves once the upstream accepted the call (plain: the whole answer; stream:
 * the headers), and nothing is retried after that. The caller reports the end of the answer with
 * `finished` (the deployment's in-flight count, for `least-in-flight`).
 *
 * Within a product, a retry prefers the next available deployment in the order (wrapping round to
 * the same one when it is alone). A connection refused by a deployment not tried yet moves on at once
 * and costs no retry: nothing reached any model. When a product is exhausted (or every deployment of
 * it cools down), the fallback products are tried in order, each with the same policy. Errors that
 * another attempt would not fix (4xx, a garbled answer, the client gone, the total time up) end the
 * call at once.
 */
export class Router {
  readonly health: DeploymentHealth;
  readonly load: DeploymentLoad;
  private readonly retries: number;
  private readonly baseDelayMs: number;
  private readonly maxRetryAfterMs: number;
  private readonly random: () => number;
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<unknown>;
  private readonly isAvailable: (id: string) => boolean;

  constructor(options: RouterOptions = {}) {
    this.health = options.health ?? new DeploymentHealth();
    this.load = options.load ?? new DeploymentLoad();
    this.retries = options.retries ?? 2;
    this.baseDelayMs = options.baseDelayMs ?? 100;
    this.maxRetryAfterMs = options.maxRetryAfterMs ?? 5_000;
    this.random = options.random ?? Math.random;
    this.sleep = options.sleep ?? ((ms, signal) => sleepFor(ms, undefined, { signal }));
    this.isAvailable = (id) => this.health.isAvailable(id);
  }

  /** The deployments of a product to try, in order, cooling-down ones left out. */
  order(product: RoutableProduct): RoutableDeployment[] {
    return orderDeployments(product, this.random, this.isAvailable, this.load);
  }

  /**
   * The answer of a call `route` returned has ended (plain: read; stream: finished or broken off):
   * the deployment has one call fewer in flight. Once per successful `route`.
   */
  finished(served: Served<unknown>): void {
    this.load.ended(served.deployment.id);
  }

  async route<T>(
    product: RoutableProduct,
    /** Called only when `product` could not answer: the fallback products, in order. */
    fallbacks: () => Iterable<RoutableProduct>,
    signal: AbortSignal,
    call: (product: RoutableProduct, deployment: RoutableDeployment) => Promise<T>,
    attempts: Attempt[],
  ): Promise<Served<T>> {
    if (product.deployments.length === 0)
      throw new UpstreamError('connect', 'this model has no active deployment');
    const first = await this.tryProduct(product, signal, call, attempts);
    if (first.served) return first.served;
    for (const next of fallbacks()) {
      if (next === product || next.deployments.length === 0) continue;
      const outcome = await this.tryProduct(next, signal, call, attempts);
      if (outcome.served) return outcome.served;
    }
    // when no fallback answered either, the client hears about the product it asked for
    throw first.error;
  }

  private async tryProduct<T>(
    product: RoutableProduct,
    signal: AbortSignal,
    call: (product: RoutableProduct, deployment: RoutableDeployment) => Promise<T>,
    attempts: Attempt[],
  ): Promise<{ served: Served<T>; error?: undefined } | { served?: undefined; error: UpstreamError }> {
    const order = this.order(product);
    if (order.length === 0) {
      return {
        error: new UpstreamError(
          'connect',
          `every deployment of ${product.model} is cooling down after repeated failures`,
        ),
      };
    }
    const health = this.health;
    const load = this.load;
    let retriesLeft = this.retries;
    let retry = 0;
    let pos = 0;
    let triedUpTo = 0;
    for (;;) {
      const deployment = order[pos]!;
      health.begin(deployment.id);
      load.started(deployment.id);
      const started = performance.now();
      try {
        const result = await call(product, deployment);
        const durationMs = performance.now() - started;
        health.succeeded(deployment.id);
        // still in flight until the caller says the answer ended (`finished`)
        load.observe(deployment.id, durationMs);
        attempts.push({
          model: product.model,
          productId: product.id,
          deploymentId: deployment.id,
          error: null,
          durationMs,
        });
        return { served: { product, deployment, result } };
      } catch (caught) {
        load.ended(deployment.id);
        if (!(caught instanceof UpstreamError)) {
          health.released(deployment.id);
          throw caught;
        }
        const error = caught;
        attempts.push({
          model: product.model,
          productId: product.id,
          deploymentId: deployment.id,
          error,
          durationMs: performance.now() - started,
        });
        if (error.kind === 'cancelled' || signal.aborted) {
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
              await this.sleep(delay, signal);
            } catch (sleepError) {
              throw toUpstreamError(sleepError, signal);
            }
          }
        }
        pos = nextPos;
        if (pos > triedUpTo) triedUpTo = pos;
      }
    }
  }
}
