import type { ServerResponse } from 'node:http';
import type { MeterOutcome } from '../../billing/meter.ts';
import { estimatePromptTokens, estimateTextTokens } from '../../billing/token-estimate.ts';
import type { ChatStreamPart, CompletedCall, JsonObject, TokenUsage } from '../../providers/adapter.ts';
import { openAIUsage } from '../../providers/openai-shapes.ts';
import type { Attempt, Served } from '../../routing/router.ts';
import {
  adapterFor,
  admitCall,
  asUpstreamError,
  countUpstreamErrors,
  fail,
  fallbacksOf,
  meterBase,
  meterFailure,
  sendCompleted,
  statusOf,
  targetOf,
} from './call.ts';
import type { AdmittedCall, OpenAIDeps, RequestContext } from './context.ts';
import { fromUpstreamError } from './errors.ts';
import { checkChatRequest } from './validate.ts';

const ENDPOINT = 'chat.completions' as const;

export async function handleChatCompletions(
  deps: OpenAIDeps,
  ctx: RequestContext,
  body: JsonObject,
): Promise<void> {
  const problem = checkChatRequest(body);
  if (problem) return fail(deps, ctx, problem, '');
  const maxTokens = (body.max_completion_tokens ?? body.max_tokens ?? null) as number | null;
  const promptEstimate = estimatePromptTokens(body);
  const call = await admitCall(deps, ctx, body.model as string, promptEstimate, maxTokens);
  if (!call) return;
  try {
    if (body.stream === true) await streamChat(deps, ctx, call, body, promptEstimate);
    else await completeChat(deps, ctx, call, body, promptEstimate);
  } finally {
    call.finish();
  }
}

async function completeChat(
  deps: OpenAIDeps,
  ctx: RequestContext,
  call: AdmittedCall,
  body: JsonObject,
  promptEstimate: number,
): Promise<void> {
  const attempts: Attempt[] = [];
  let served: Served<CompletedCall>;
  try {
    served = await deps.router.route(
      call.product,
      () => fallbacksOf(deps, ctx, call.product),
      call.signal,
      (_product, d) => adapterFor(deps, d).chat(targetOf(d), body, call.options),
      attempts,
    );
  } catch (error) {
    return meterFailure(deps, ctx, call, error, attempts, ENDPOINT, false);
  }
  deps.router.finished(served);
  countUpstreamErrors(deps, ctx, attempts);
  const { body: completion, usage } = served.result;
  completion.model = served.product.model;
  const counted = usage ?? { promptTokens: promptEstimate, completionTokens: estimateCompletion(completion) };
  const record = await deps.meter.record(meterBase(ctx, served.product, ENDPOINT, false, attempts), {
    firstTokenAt: null,
    deploymentId: served.deployment.id,
    status: 'ok',
    httpStatus: 200,
    errorCode: null,
    promptTokens: counted.promptTokens,
    completionTokens: counted.completionTokens,
    usageSource: usage ? 'upstream' : 'estimate',
    chargeable: true,
  });
  call.ticket.settle(record.costMicroKrw, record.promptTokens, record.completionTokens);
  deps.metrics.requests.labels(call.product.model, ENDPOINT, '200').inc();
  if (deps.logContent)
    deps.logger.info({ requestId: ctx.requestId, request: body, response: completion }, 'content');
  sendCompleted(ctx, completion);
}

function estimateCompletion(completion: JsonObject): number {
  let total = 0;
  for (const choice of (completion.choices as { message?: { content?: unknown } }[] | undefined) ?? []) {
    const content = choice?.message?.content;
    if (typeof content === 'string') total += estimateTextTokens(content);
  }
  return total;
}

function deltaText(chunk: JsonObject): string {
  let text = '';
  const choices = chunk.choices;
  if (!Array.isArray(choices)) return text;
  for (const choice of choices) {
    const content = (choice as { delta?: { content?: unknown } } | null)?.delta?.content;
    if (typeof content === 'string') text += content;
  }
  return text;
}

/** Writes with backpressure: a slow client slows the upstream read instead of growing a buffer. */
function write(res: ServerResponse, data: string): Promise<void> | undefined {
  if (res.write(data)) return undefined;
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

async function streamChat(
  deps: OpenAIDeps,
  ctx: RequestContext,
  call: AdmittedCall,
  body: JsonObject,
  promptEstimate: number,
): Promise<void> {
  const attempts: Attempt[] = [];
  const clientWantsUsage =
    (body.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true;
  let served: Served<AsyncIterable<ChatStreamPart>>;
  try {
    served = await deps.router.route(
      call.product,
      () => fallbacksOf(deps, ctx, call.product),
      call.signal,
      (_product, d) => adapterFor(deps, d).chatStream(targetOf(d), body, call.options),
      attempts,
    );
  } catch (error) {
    return meterFailure(deps, ctx, call, error, attempts, ENDPOINT, true);
  }
  countUpstreamErrors(deps, ctx, attempts);

  const { res } = ctx;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
    'x-request-id': ctx.requestId,
  });
  res.flushHeaders();

  const model = served.product.model;
  let usage: TokenUsage | null = null;
  let usageChunk: JsonObject | null = null;
  let firstTokenAt: number | null = null;
  let deliveredText = '';
  let failure: ReturnType<typeof asUpstreamError> | null = null;
  try {
    for await (const part of served.result) {
      if (part.type === 'done') break;
      const chunk = part.chunk;
      chunk.model = model;
      if (part.type === 'usage') {
        usage = part.usage;
        const hasChoices = Array.isArray(chunk.choices) && chunk.choices.length > 0;
        if (!hasChoices) {
          // the usage-only chunk the hub asked for: the client gets it only if it asked too, and only
          // after metering, in its place just before [DONE]
          usageChunk = chunk;
          continue;
        }
        if (!clientWantsUsage) delete chunk.usage;
      } else if (clientWantsUsage && !('usage' in chunk)) {
        chunk.usage = null;
      }
      firstTokenAt ??= performance.now();
      deliveredText += deltaText(chunk);
      const wait = write(res, `data: ${JSON.stringify(chunk)}\n\n`);
      if (wait) await wait;
    }
  } catch (error) {
    failure = asUpstreamError(error);
  }
  deps.router.finished(served);
  if (failure) {
    // after the first byte nothing is retried: the client sees the error; the deployment is told
    if (failure.kind === 'cancelled') deps.router.health.released(served.deployment.id);
    else deps.router.health.failed(served.deployment.id, failure);
    countUpstreamErrors(deps, ctx, [
      {
        model,
        productId: served.product.id,
        deploymentId: served.deployment.id,
        error: failure,
        durationMs: 0,
      },
    ]);
  }

  const deploymentId = served.deployment.id;
  let input: MeterOutcome;
  if (!failure) {
    input = {
      firstTokenAt,
      deploymentId,
      status: 'ok',
      httpStatus: 200,
      errorCode: null,
      promptTokens: usage?.promptTokens ?? promptEstimate,
      completionTokens: usage?.completionTokens ?? estimateTextTokens(deliveredText),
      usageSource: usage ? 'upstream' : 'estimate',
      chargeable: true,
    };
  } else if (failure.kind === 'cancelled') {
    // The client hung up mid-answer: it is charged for what it received, as the supplier bills us.
    input = {
      firstTokenAt,
      deploymentId,
      status: 'cancelled',
      httpStatus: 499,
      errorCode: 'client_closed',
      promptTokens: promptEstimate,
      completionTokens: estimateTextTokens(deliveredText),
      usageSource: 'estimate',
      chargeable: true,
    };
  } else {
    // The upstream broke off: the client did not get its answer, so it pays nothing.
    input = {
      firstTokenAt,
      deploymentId,
      status: statusOf(failure),
      httpStatus: 200,
      errorCode: fromUpstreamError(failure).code ?? failure.kind,
      promptTokens: usage?.promptTokens ?? promptEstimate,
      completionTokens: estimateTextTokens(deliveredText),
      usageSource: usage ? 'upstream' : 'estimate',
      chargeable: false,
    };
  }
  const record = await deps.meter.record(meterBase(ctx, served.product, ENDPOINT, true, attempts), input);
  if (input.chargeable) call.ticket.settle(record.costMicroKrw, record.promptTokens, record.completionTokens);
  else call.ticket.release();
  deps.metrics.requests.labels(call.product.model, ENDPOINT, String(input.httpStatus)).inc();
  if (deps.logContent) {
    deps.logger.info({ requestId: ctx.requestId, request: body, streamedText: deliveredText }, 'content');
  }

  if (res.destroyed) return;
  if (failure) {
    const mapped = fromUpstreamError(failure);
    res.end(
      `data: ${JSON.stringify({ error: { message: mapped.message, type: mapped.type, param: null, code: mapped.code ?? null } })}\n\n`,
    );
    return;
  }
  if (clientWantsUsage) {
    const chunk = usageChunk ?? {
      id: `chatcmpl-${ctx.requestId}`,
      object: 'chat.completion.chunk',
      created: Math.floor(ctx.startedAtMs / 1000),
      model,
      choices: [],
    };
    // the upstream's own usage fields (details included) over the metered counts; Object.assign, not
    // `{ ...a, ...b }`, which costs a fresh hidden class per extra field (see billing/meter.ts)
    chunk.usage = Object.assign(openAIUsage(record), (usageChunk?.usage as JsonObject | undefined) ?? {});
    res.write(`data: ${JSON.stringify(chunk)}\n\n`);
  }
  res.end('data: [DONE]\n\n');
}
