import type { MeterBase } from '../../billing/meter.ts';
import type { UsageAttempt, UsageRecord, UsageStatus } from '../../billing/usage-journal.ts';
import type { RoutableDeployment, RoutableProduct } from '../../catalog/catalog-snapshot.ts';
import {
  type JsonObject,
  type ProviderAdapter,
  UpstreamError,
  type UpstreamTarget,
} from '../../providers/adapter.ts';
import type { Attempt } from '../../routing/router.ts';
import { CallAbort } from './call-abort.ts';
import type { AdmittedCall, OpenAIDeps, RequestContext } from './context.ts';
import { fromUpstreamError, modelNotFound, type OpenAIError, sendOpenAIError } from './errors.ts';

/** The product a model name means for this caller, or undefined (404 model_not_found). */
export function resolveProduct(
  deps: OpenAIDeps,
  ctx: RequestContext,
  model: string,
): RoutableProduct | undefined {
  const product = deps.catalog.byModel(model);
  // without a deployment nothing can serve it: it does not exist for callers, as in /v1/models
  if (!product || product.deployments.length === 0) return undefined;
  const allowed = ctx.caller.allowedModels;
  if (allowed && !allowed.has(product.model)) return undefined;
  return product;
}

/**
 * Resolves and admits, wiring the call's lifetime: the upstream call is aborted when the client
 * disconnects before the response finished, or when the total time runs out. Sends the error and
 * returns undefined when the request cannot go on.
 */
export async function admitCall(
  deps: OpenAIDeps,
  ctx: RequestContext,
  model: string,
  estimatedPromptTokens: number,
  maxCompletionTokens: number | null,
): Promise<AdmittedCall | undefined> {
  const product = resolveProduct(deps, ctx, model);
  if (!product) {
    // labelled with no product: a label per unknown name would let any caller mint metric series
    fail(deps, ctx, modelNotFound(model), '');
    return undefined;
  }
  const decision = await deps.admission.admit({
    requestId: ctx.requestId,
    caller: ctx.caller,
    product,
    estimatedPromptTokens,
    maxCompletionTokens,
  });
  if (!decision.admitted) {
    fail(
      deps,
      ctx,
      {
        status: decision.status,
        type: decision.status === 429 ? 'rate_limit_error' : 'insufficient_quota',
        code: decision.code,
        message: decision.message,
        ...(decision.retryAfterSeconds !== undefined && {
          headers: { 'retry-after': String(decision.retryAfterSeconds) },
        }),
      },
      product.model,
    );
    return undefined;
  }
  const controller = new CallAbort();
  const onClose = () => {
    if (!ctx.res.writableFinished) controller.abort(new DOMException('client went away', 'AbortError'));
  };
  ctx.res.on('close', onClose);
  const timer = setTimeout(
    () => controller.abort(new DOMException('total upstream time exceeded', 'TimeoutError')),
    deps.upstreamTotalTimeoutMs,
  );
  return {
    product,
    ticket: decision.ticket,
    signal: controller.signal,
    options: {
      signal: controller.signal,
      headersTimeoutMs: deps.upstreamHeadersTimeoutMs,
      idleTimeoutMs: deps.upstreamIdleTimeoutMs,
    },
    finish() {
      clearTimeout(timer);
      ctx.res.off('close', onClose);
    },
  };
}

/** An error answered before any upstream call: counted, not metered (nothing was used). */
export function fail(
  deps: OpenAIDeps,
  ctx: RequestContext,
  error: OpenAIError,
  model: string,
  endpoint = 'chat.completions',
): void {
  deps.metrics.requests.labels(model, endpoint, String(error.status)).inc();
  sendOpenAIError(ctx.res, error, ctx.requestId);
}

export function statusOf(error: UpstreamError): UsageStatus {
  if (error.kind === 'cancelled') return 'cancelled';
  if (error.kind === 'timeout') return 'timeout';
  return 'upstream_error';
}

/** 499 as nginx uses it: the client closed the connection before the answer. */
export const CLIENT_CLOSED = 499;

export function httpStatusOf(error: UpstreamError): number {
  return error.kind === 'cancelled' ? CLIENT_CLOSED : fromUpstreamError(error).status;
}

export function asUpstreamError(error: unknown): UpstreamError {
  return error instanceof UpstreamError
    ? error
    : new UpstreamError('protocol', String((error as Error)?.message ?? error));
}

/**
 * The products to fall back to when `product` could not answer, in order: the organisation's chain
 * for it when it set one, else the product's. Only products this caller may use and that can serve.
 * Read only after a failure: the success path never builds it.
 */
export function* fallbacksOf(
  deps: OpenAIDeps,
  ctx: RequestContext,
  product: RoutableProduct,
): Generator<RoutableProduct> {
  const chain = ctx.caller.fallbackModels?.[product.model] ?? product.fallbackModels;
  for (const model of chain) {
    const next = resolveProduct(deps, ctx, model);
    if (next) yield next;
  }
}

/** Counts every failed attempt, by the product it was for, and logs the attempts at debug. */
export function countUpstreamErrors(
  deps: OpenAIDeps,
  ctx: RequestContext,
  attempts: readonly Attempt[],
): void {
  if (attempts.length === 1 && attempts[0]!.error === null) return;
  const debug = deps.logger.isLevelEnabled('debug');
  for (const a of attempts) {
    if (debug) {
      deps.logger.debug(
        {
          requestId: ctx.requestId,
          model: a.model,
          deploymentId: a.deploymentId,
          durationMs: Math.round(a.durationMs),
          error: a.error
            ? `${a.error.kind}${a.error.details.status ? ` ${a.error.details.status}` : ''}`
            : null,
        },
        'upstream attempt',
      );
    }
    if (!a.error || a.error.kind === 'cancelled') continue;
    const kind = a.error.kind === 'http' ? String(a.error.details.status ?? 'http') : a.error.kind;
    deps.metrics.upstreamErrors.labels(a.model, a.deploymentId, kind).inc();
  }
}

/** The deployment a failure record names: the last one tried for the product asked. */
export function lastDeploymentOf(product: RoutableProduct, attempts: readonly Attempt[]): string | null {
  for (let i = attempts.length - 1; i >= 0; i--) {
    if (attempts[i]!.model === product.model) return attempts[i]!.deploymentId;
  }
  return null;
}

type Endpoint = UsageRecord['endpoint'];

/**
 * The attempts to keep with the usage record: all of them, unless the first one served (then the
 * record itself is that attempt, and nothing extra is written on the common path).
 */
export function usageAttemptsOf(attempts: readonly Attempt[]): UsageAttempt[] | undefined {
  if (attempts.length === 0 || (attempts.length === 1 && attempts[0]!.error === null)) return undefined;
  return attempts.map((a) => ({
    productId: a.productId,
    model: a.model,
    deploymentId: a.deploymentId,
    outcome: a.error === null ? 'ok' : a.error.kind,
    httpStatus: a.error?.details.status ?? null,
    durationMs: Math.round(a.durationMs),
  }));
}

/** What every usage record of a request shares; `product` is the one that served (maybe a fallback). */
export function meterBase(
  ctx: RequestContext,
  product: RoutableProduct,
  endpoint: Endpoint,
  stream: boolean,
  attempts: readonly Attempt[],
): MeterBase {
  return {
    requestId: ctx.requestId,
    startedAtMs: ctx.startedAtMs,
    startedAt: ctx.startedAt,
    caller: ctx.caller,
    product,
    endpoint,
    stream,
    attempts: usageAttemptsOf(attempts),
  };
}

export function targetOf(deployment: RoutableDeployment): UpstreamTarget {
  return {
    deploymentId: deployment.id,
    baseUrl: deployment.baseUrl,
    apiKey: deployment.apiKey,
    upstreamModel: deployment.upstreamModel,
  };
}

export function adapterFor(deps: OpenAIDeps, deployment: RoutableDeployment): ProviderAdapter {
  const adapter = deps.adapters.get(deployment.adapter);
  if (!adapter) throw new Error(`deployment ${deployment.id} names unknown adapter ${deployment.adapter}`);
  return adapter;
}

/**
 * A call every attempt of which failed before the client saw an answer: recorded, never charged, and
 * answered with the mapped error (unless the client is gone).
 */
export async function meterFailure(
  deps: OpenAIDeps,
  ctx: RequestContext,
  call: AdmittedCall,
  error: unknown,
  attempts: Attempt[],
  endpoint: Endpoint,
  stream: boolean,
): Promise<void> {
  const failure = asUpstreamError(error);
  countUpstreamErrors(deps, ctx, attempts);
  call.ticket.release();
  const httpStatus = httpStatusOf(failure);
  deps.metrics.requests.labels(call.product.model, endpoint, String(httpStatus)).inc();
  const mapped = fromUpstreamError(failure);
  await deps.meter.record(meterBase(ctx, call.product, endpoint, stream, attempts), {
    firstTokenAt: null,
    deploymentId: lastDeploymentOf(call.product, attempts),
    status: statusOf(failure),
    httpStatus,
    errorCode: failure.kind === 'cancelled' ? 'client_closed' : (mapped.code ?? failure.kind),
    promptTokens: 0,
    completionTokens: 0,
    usageSource: 'none',
    chargeable: false,
  });
  if (failure.kind !== 'cancelled') sendOpenAIError(ctx.res, mapped, ctx.requestId);
}

/** The 200 answer of a plain call, with its length so keep-alive clients never wait for a close. */
export function sendCompleted(ctx: RequestContext, body: JsonObject): void {
  const text = JSON.stringify(body);
  ctx.res.writeHead(200, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'x-request-id': ctx.requestId,
  });
  ctx.res.end(text);
}
