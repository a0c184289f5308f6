import { estimateEmbeddingInputTokens } from '../../billing/token-estimate.ts';
import type { CompletedCall, JsonObject } from '../../providers/adapter.ts';
import type { Attempt, Served } from '../../routing/router.ts';
import {
  adapterFor,
  admitCall,
  countUpstreamErrors,
  fail,
  fallbacksOf,
  meterBase,
  meterFailure,
  sendCompleted,
  targetOf,
} from './call.ts';
import type { OpenAIDeps, RequestContext } from './context.ts';
import { checkEmbeddingsRequest } from './validate.ts';

const ENDPOINT = 'embeddings' as const;

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
  const attempts: Attempt[] = [];
  let served: Served<CompletedCall>;
  try {
    served = await deps.router.route(
      call.product,
      () => fallbacksOf(deps, ctx, call.product),
      call.signal,
      (_product, d) => adapterFor(deps, d).embeddings(targetOf(d), body, call.options),
      attempts,
    );
  } catch (error) {
    call.finish();
    return meterFailure(deps, ctx, call, error, attempts, ENDPOINT, false);
  }
  call.finish();
  deps.router.finished(served);
  countUpstreamErrors(deps, ctx, attempts);
  const { body: response, usage } = served.result;
  response.model = served.product.model;
  const record = await deps.meter.record(meterBase(ctx, served.product, ENDPOINT, false, attempts), {
    firstTokenAt: null,
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
  sendCompleted(ctx, response);
}
