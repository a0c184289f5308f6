import type { JsonObject } from '../../providers/adapter.ts';
import { watchClient, writeOutcome } from './answer.ts';
import type { OpenAIDeps, RequestContext } from './context.ts';
import { sendOpenAIError } from './errors.ts';
import { checkChatRequest, checkEmbeddingsRequest } from './validate.ts';

function traceHeader(ctx: RequestContext, name: 'traceparent' | 'tracestate'): string | undefined {
  const value = ctx.req.headers[name];
  return typeof value === 'string' ? value : undefined;
}

/**
 * `POST /v1/chat/completions` and `POST /v1/embeddings`: check the fields the hub relies on, hand the
 * call to the call layer, write what it answers. Everything between is src/calls/.
 */
export async function handleModelCall(
  deps: OpenAIDeps,
  ctx: RequestContext,
  operation: 'chat' | 'embeddings',
  body: JsonObject,
): Promise<void> {
  const problem = operation === 'chat' ? checkChatRequest(body) : checkEmbeddingsRequest(body);
  if (problem) {
    deps.metrics.requests
      .labels('', operation === 'chat' ? 'chat.completions' : 'embeddings', String(problem.status))
      .inc();
    return sendOpenAIError(ctx.res, problem, ctx.requestId);
  }
  const call = deps.calls.create({
    requestId: ctx.requestId,
    caller: ctx.caller,
    operation,
    body,
    startedAt: ctx.startedAt,
    startedAtMs: ctx.startedAtMs,
    traceparent: traceHeader(ctx, 'traceparent'),
    tracestate: traceHeader(ctx, 'tracestate'),
  });
  watchClient(ctx, call);
  const outcome = await call.run();
  await writeOutcome(deps, ctx, call, outcome);
}
