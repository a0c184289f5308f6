import type { Caller } from '../accounts/key-cache.ts';
import type { Meter } from '../billing/meter.ts';
import type { CatalogSnapshot, RoutableDeployment, RoutableProduct } from '../catalog/catalog-snapshot.ts';
import type { Admission } from '../limits/admission.ts';
import type { OrganizationConcurrency } from '../limits/concurrency.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { ProviderAdapter } from '../providers/adapter.ts';
import type { Router } from '../routing/router.ts';
import { Deadlines } from './deadlines.ts';
import type { Guard } from './guard.ts';
import { type CallInput, ModelCall, onTotalTimeout } from './model-call.ts';
import type { CallObserver } from './observer.ts';

export interface CallSettings {
  upstreamHeadersTimeoutMs: number;
  /** The longest a call may take, from routing to the end of its answer. */
  upstreamTotalTimeoutMs: number;
  /** Longest silence from an upstream after its headers (between stream chunks). */
  upstreamIdleTimeoutMs: number;
  /** After a client leaves a stream, how long the upstream is still read for its own usage counts. */
  streamDrainMs: number;
  /** Calls one organisation may have in progress on this replica, unless it has its own cap. */
  organizationMaxConcurrent: number;
  /**
   * A request at least this large (prompt estimate, plus `max_tokens` of a plain call), or using half
   * its product's context window, is large: its time-outs are its own and say nothing of the deployment.
   */
  largeRequestTokens: number;
  /** Prompts and answers appear in logs only when an operator asks for it. */
  logContent: boolean;
  /**
   * After the total time, how long a stream's consumer has to take the failure before the call reads
   * (or returns) its stream itself, so that an abandoned stream still ends (default 10 s).
   */
  abandonedStreamGraceMs?: number;
}

/** Everything a call needs, assembled once by the composition root. */
export interface CallLayerDeps {
  catalog: CatalogSnapshot;
  adapters: ReadonlyMap<string, ProviderAdapter>;
  router: Router;
  admission: Admission;
  guard: Guard;
  observer: CallObserver;
  meter: Meter;
  metrics: Metrics;
  logger: Logger;
  concurrency: OrganizationConcurrency;
  settings: CallSettings;
}

/**
 * The life of every model call — resolve → admit → guard → route → meter → settle — for `/v1` and for
 * in-process callers (the evaluation runner, `auto`). `create` a call, `run` it once: it returns the
 * completed answer, an async stream of chunks, or an error value. See model-call.ts for the life itself.
 *
 * In-process use: `const outcome = await calls.create(input).run()`; a stream must be read to its end
 * or stopped with `return()` (a `for await` loop does both), and `ModelCall.cancel()` stops a call
 * from outside.
 */
export class CallLayer {
  /** Every call's total time (`upstreamTotalTimeoutMs`), with one timer for all of them. */
  readonly deadlines: Deadlines<ModelCall>;

  constructor(readonly deps: CallLayerDeps) {
    this.deadlines = new Deadlines(deps.settings.upstreamTotalTimeoutMs, onTotalTimeout);
  }

  create(input: CallInput): ModelCall {
    return new ModelCall(this, input);
  }

  /**
   * The product a model name means for this caller, or undefined: unknown, without a deployment (it
   * does not exist for callers, as in /v1/models), or not allowed to the caller's key.
   */
  resolve(caller: Caller, model: string): RoutableProduct | undefined {
    const product = this.deps.catalog.byModel(model);
    if (!product || product.deployments.length === 0) return undefined;
    const allowed = caller.allowedModels;
    if (allowed && !allowed.has(product.model)) return undefined;
    return product;
  }

  /**
   * Whether some deployment of `product` runs where this caller's data may go (its data policy's
   * placement bits): what /v1/models lists, so a public body is not offered a model served only abroad.
   */
  mayServe(caller: Caller, product: RoutableProduct): boolean {
    const placement = this.deps.guard.placement?.(caller, product) ?? 0;
    if (placement === 0) return product.deployments.length > 0;
    return product.deployments.some((d) => (d.features & placement) === placement);
  }

  adapterOf(deployment: RoutableDeployment): ProviderAdapter {
    const adapter = this.deps.adapters.get(deployment.adapter);
    if (!adapter) throw new Error(`deployment ${deployment.id} names unknown adapter ${deployment.adapter}`);
    return adapter;
  }
}
