import { estimateEmbeddingInputTokens } from '../../billing/token-estimate.ts';
import type { CompletedCall, JsonObject } from '../../providers/adapter.ts';
import type { Attempt, Served } from '../../routing/router.ts';
import {
  admitCall,
  asUpstreamError,
  countUpstreamErrors,
  fail,
  fallbacksOf,
  httpStatusOf,
  lastDeploymentOf,
  statusOf,
} from './call.ts';
import type { OpenAIDeps, RequestContext } from './context.ts';
import { fromUpstreamError, sendOpenAIError } from './errors.ts';
import { checkEmbeddingsRequest } from './validate.ts';

const ENDPOINT = 'embeddings';

export async function handleEmbeddings(
  deps: OpenAIDeps,
  ctx: RequestContext,
  body: JsonObject,
): Promise<void> {
  const problem = checkEmbeddingsRequest(body);
  if (problem) return fail(deps, ctx, problem, '', ENDPOINT);
  const estimate = estimateEmbeddingInputTokens(body.input);
  const call = await admitCall(deps, ctx, body.model as string, estimate, 0);
  if (!call) return;
  const base = {
    requestId: ctx.requestId,
    startedAtMs: ctx.startedAtMs,
    startedAt: ctx.startedAt,
    caller: ctx.caller,
    product: call.product,
    endpoint: 'embeddings' as const,
    stream: false,
    firstTokenAt: null,
  };
  const attempts: Attempt[] = [];
  let served: Served<CompletedCall>;
  try {
    served = await deps.router.route(
      call.product,
      () => fallbacksOf(deps, ctx, call.product),
      call.signal,
      (_product, d) => {
        const adapter = deps.adapters.get(d.adapter);
        if (!adapter) throw new Error(`deployment ${d.id} names unknown adapter ${d.adapter}`);
        return adapter.embeddings(
          { deploymentId: d.id, baseUrl: d.baseUrl, apiKey: d.apiKey, upstreamModel: d.upstreamModel },
          body,
          call.options,
        );
      },
      attempts,
    );
  } catch (error) {
    const failure = asUpstreamError(error);
    countUpstreamErrors(deps, ctx, attempts);
    call.ticket.release();
    call.finish();
    const httpStatus = httpStatusOf(failure);
    const mapped = fromUpstreamError(failure);
    deps.metrics.requests.labels(call.product.model, ENDPOINT, String(httpStatus)).inc();
    await deps.meter.record({
      ...base,
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
    return;
  }
  call.finish();
  deps.router.finished(served);
  countUpstreamErrors(deps, ctx, attempts);
  const { body: response, usage } = served.result;
  response.model = served.product.model;
  const record = await deps.meter.record({
    ...base,
    product: served.product,
    deploymentId: served.deployment.id,
    status: 'ok',
    httpStatus: 200,
    errorCode: null,
    promptTokens: usage?.promptTokens ?? estimate,
    completionTokens: 0,
    usageSource: usage ? 'upstream' : 'estimate',
    chargeable: true,
  });
  call.ticket.settle(record.costMicroKrw, record.promptTokens, 0);
  deps.metrics.requests.labels(call.product.model, ENDPOINT, '200').inc();
  const text = JSON.stringify(response);
  ctx.res.writeHead(200, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'x-request-id': ctx.requestId,
  });
  ctx.res.end(text);
}
