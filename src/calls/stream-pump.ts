import { chargeEndedStream, type StreamEnding } from '../billing/stream-charging.ts';
import { chunkQuarterTokens, tokensFromQuarters } from '../billing/token-estimate.ts';
import { usageProblem } from '../billing/usage-check.ts';
import type { UsageRecord } from '../billing/usage-journal.ts';
import {
  type ChatStreamPart,
  type JsonObject,
  type TokenUsage,
  UpstreamError,
} from '../providers/adapter.ts';
import { openAIUsage } from '../providers/openai-shapes.ts';
import { CallStreamError, fromUpstreamError, internalError } from './errors.ts';
import type { GuardSession } from './guard.ts';
import { CLIENT_CLOSED, type ModelCall } from './model-call.ts';
import { describe } from './outcome-details.ts';

/** What a stream has told so far, kept across the pump's steps. */
interface StreamState {
  usage: TokenUsage | null;
  /** The usage-only chunk the hub asked for: the client gets it only if it asked too, after metering. */
  usageChunk: JsonObject | null;
  /** Estimate of the completion handed to the client, in quarter tokens. */
  quarters: number;
  delivered: boolean;
  responseId: string | null;
  finishReasons: string[] | null;
  /** The upstream ended its answer normally. */
  finished: boolean;
  /** Only with KAIHUB_LOG_CONTENT. */
  text: string;
}

function asUpstreamError(error: unknown): UpstreamError {
  return error instanceof UpstreamError
    ? error
    : new UpstreamError('protocol', String((error as Error)?.message ?? error));
}

/**
 * The rest of a streamed call's life, after its upstream accepted it: forwards chunks (rewritten for
 * the client, through the guard), then — however the stream ends — meters it, settles or releases, and
 * closes the call. Ends:
 * - the upstream finishes: metered and settled, then the usage chunk if the client asked; the consumer
 *   writes `[DONE]`;
 * - the upstream breaks off or times out (idle, or the hub's total time): charged for what was delivered
 *   (billing/stream-charging.ts), then a `CallStreamError` the consumer writes as the last event;
 * - the client leaves (`cancel()`, or the consumer stops reading): forwarding stops, the upstream is
 *   read on for at most `streamDrainMs` for its own counts, then metered and settled.
 */
export async function* pumpStream(
  call: ModelCall,
  parts: AsyncIterable<ChatStreamPart>,
): AsyncGenerator<JsonObject, void, undefined> {
  call.pumpStarted = true;
  const state: StreamState = {
    usage: null,
    usageChunk: null,
    quarters: 0,
    delivered: false,
    responseId: null,
    finishReasons: null,
    finished: false,
    text: '',
  };
  const iterator = parts[Symbol.asyncIterator]();
  try {
    let failure: UpstreamError | null = null;
    let hubError: unknown;
    let consumerStopped = true;
    try {
      // forwarding, in this generator rather than one of its own under it: a generator suspended for
      // the whole stream costs its frame, promise and closures (≈ 0.6 KB a stream, heap snapshot)
      const deps = call.layer.deps;
      const model = call.served!.product.model;
      const streamOptions = call.body.stream_options as { include_usage?: unknown } | null | undefined;
      const clientWantsUsage = streamOptions?.include_usage === true;
      const guard = call.guardSession;
      const logContent = deps.settings.logContent;
      // declared out here and emptied before each wait: a suspended generator keeps its variables, and
      // the last chunk (≈ 0.3 KB) would stay alive, and be promoted, for as long as the next one takes
      let next: IteratorResult<ChatStreamPart> | null = null;
      let out: JsonObject | null = null;
      for (;;) {
        if (call.clientGone) break;
        next = null;
        out = null;
        try {
          next = await iterator.next();
        } catch (error) {
          failure = asUpstreamError(error);
          break;
        }
        if (next.done === true || next.value.type === 'done') {
          state.finished = true;
          // what the guard held back (a placeholder cut off by the end of the answer) goes out last
          const rest = guard !== null ? guard.flush() : null;
          if (rest !== null && !call.clientGone) {
            delivering(call, state, rest, logContent);
            yield rest;
          }
          break;
        }
        out = forwarded(next.value, state, guard, clientWantsUsage, model);
        if (out === null) continue;
        if (call.clientGone) break;
        delivering(call, state, out, logContent);
        yield out;
      }
      consumerStopped = false;
    } catch (error) {
      consumerStopped = false;
      hubError = error;
    } finally {
      // return() or throw() at a yield: the consumer stopped reading, the client is gone
      if (consumerStopped) await endQuietly(call, iterator, state, 'client_closed', null);
    }
    if (hubError !== undefined) {
      await endQuietly(call, iterator, state, 'upstream_failed', null);
      throw hubError;
    }
    let ending: StreamEnding;
    if (call.clientGone) ending = 'client_closed';
    else if (failure !== null) ending = failure.kind === 'timeout' ? 'timeout' : 'upstream_failed';
    else ending = 'completed';
    const record = await end(call, iterator, state, ending, failure);
    if (ending === 'completed') {
      const usageChunk = usageChunkFor(call, state, record);
      if (usageChunk !== null) yield usageChunk;
      return;
    }
    if (ending === 'client_closed') return;
    const served = call.served!;
    throw new CallStreamError(
      fromUpstreamError(failure!, call.requestId, served.product.model, served.deployment.upstreamModel),
    );
  } catch (error) {
    if (error instanceof CallStreamError) throw error;
    // a journal that cannot be written, a guard that throws: the client sees an error, pays nothing
    call.layer.deps.logger.error({ err: error, requestId: call.requestId }, 'stream failed');
    call.release();
    throw new CallStreamError(internalError(call.requestId));
  } finally {
    call.close();
  }
}

/** One part as the client gets it (null: nothing for the client now), noted for the charge. */
function forwarded(
  part: Exclude<ChatStreamPart, { type: 'done' }>,
  state: StreamState,
  guard: GuardSession | null,
  clientWantsUsage: boolean,
  model: string,
): JsonObject | null {
  const chunk = part.chunk;
  chunk.model = model;
  if (part.type === 'usage') {
    state.usage = part.usage;
    const choices = chunk.choices;
    if (!Array.isArray(choices) || choices.length === 0) {
      state.usageChunk = chunk;
      return null;
    }
    if (!clientWantsUsage) delete chunk.usage;
  } else if (clientWantsUsage && !('usage' in chunk)) {
    chunk.usage = null;
  }
  noteChunk(state, chunk);
  return guard !== null ? guard.chunk(chunk) : chunk;
}

/** `out` is about to reach the client: counted for the charge, noted for the first token and the log. */
function delivering(call: ModelCall, state: StreamState, out: JsonObject, logContent: boolean): void {
  const quarters = chunkQuarterTokens(out);
  if (quarters > 0) {
    state.quarters += quarters;
    state.delivered = true;
  }
  if (logContent) state.text += deltaText(out);
  if (call.firstTokenAt === null) {
    call.firstTokenAt = performance.now();
    call.layer.deps.observer.firstToken(call);
  }
}

/** The answer's id and each choice's finish reason, as they pass. */
function noteChunk(state: StreamState, chunk: JsonObject): void {
  if (state.responseId === null && typeof chunk.id === 'string') state.responseId = chunk.id;
  const choices = chunk.choices;
  if (!Array.isArray(choices)) return;
  for (const choice of choices) {
    const reason = (choice as { finish_reason?: unknown } | null)?.finish_reason;
    if (typeof reason !== 'string') continue;
    if (state.finishReasons === null) state.finishReasons = [reason];
    else state.finishReasons.push(reason);
  }
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

/**
 * After the client left mid-stream: reads the upstream on (bounded by the drain deadline) for its own
 * usage counts, which it sends last.
 */
async function drain(
  call: ModelCall,
  iterator: AsyncIterator<ChatStreamPart>,
  state: StreamState,
): Promise<void> {
  if (state.finished || call.signal.aborted) return;
  call.armDrainDeadline();
  try {
    for (;;) {
      const next = await iterator.next();
      if (next.done === true || next.value.type === 'done') {
        state.finished = true;
        return;
      }
      if (next.value.type === 'usage') state.usage = next.value.usage;
    }
  } catch {
    // the deadline passed, or the upstream broke off: what arrived is what there is
  }
}

/** Meters and settles the ended stream; throws only when the record cannot be made durable. */
async function end(
  call: ModelCall,
  iterator: AsyncIterator<ChatStreamPart>,
  state: StreamState,
  ending: StreamEnding,
  failure: UpstreamError | null,
): Promise<UsageRecord> {
  const deps = call.layer.deps;
  const served = call.served!;
  if (ending === 'client_closed') await drain(call, iterator, state);
  const routerFailure =
    ending === 'client_closed' ? new UpstreamError('cancelled', 'the client closed the connection') : failure;
  deps.router.finished(call, served, routerFailure);
  if (!state.finished && !call.signal.aborted) {
    // stop the upstream call whatever is left of it (a hub failure mid-stream)
    call.abortUpstream(new DOMException('the stream ended', 'AbortError'));
  }
  call.servedAttemptEnded(ending === 'client_closed' ? null : failure, state.usage);
  if (failure !== null && ending !== 'client_closed') {
    deps.logger.warn(
      {
        requestId: call.requestId,
        model: served.product.model,
        deploymentId: served.deployment.id,
        upstream: describe(failure),
      },
      'upstream stream broke off',
    );
  }
  let upstreamUsage = state.usage;
  let note: string | null = null;
  if (upstreamUsage !== null) {
    note = usageProblem(upstreamUsage, call.usageBounds(served.product));
    if (note !== null) upstreamUsage = null;
  }
  const charge = chargeEndedStream({
    ending,
    delivered: state.delivered,
    promptEstimate: call.promptEstimate,
    deliveredCompletionTokens: tokensFromQuarters(state.quarters),
    upstreamUsage,
  });
  const mapped =
    failure !== null && ending !== 'client_closed'
      ? fromUpstreamError(failure, call.requestId, served.product.model, served.deployment.upstreamModel)
      : null;
  const httpStatus = ending === 'client_closed' ? CLIENT_CLOSED : 200;
  const errorCode = ending === 'client_closed' ? 'client_closed' : (mapped?.code ?? failure?.kind ?? null);
  const record = await call.meter(served.product, {
    firstTokenAt: call.firstTokenAt,
    deploymentId: served.deployment.id,
    status: charge.status,
    httpStatus,
    errorCode,
    promptTokens: charge.promptTokens,
    completionTokens: charge.completionTokens,
    usageSource: charge.usageSource,
    usageNote: note,
    chargeable: charge.chargeable,
  });
  if (charge.chargeable) call.settle(record);
  else call.release();
  call.ended(httpStatus, errorCode, record, served, state.responseId, state.finishReasons);
  if (deps.settings.logContent) call.logContent({ streamedText: state.text });
  return record;
}

/** `end` for paths that cannot report an error to anyone (the consumer already stopped). */
async function endQuietly(
  call: ModelCall,
  iterator: AsyncIterator<ChatStreamPart>,
  state: StreamState,
  ending: StreamEnding,
  failure: UpstreamError | null,
): Promise<void> {
  call.clientGone ||= ending === 'client_closed';
  try {
    await end(call, iterator, state, ending, failure);
  } catch (error) {
    call.layer.deps.logger.error({ err: error, requestId: call.requestId }, 'stream metering failed');
    call.release();
  }
}

/**
 * The usage chunk the client asked for (`stream_options.include_usage`), just before `[DONE]`: the
 * upstream's own fields (details included) over the metered counts. Object.assign, not a spread plus
 * fields, which costs a fresh hidden class per extra field (docs/decisions/0006).
 */
function usageChunkFor(call: ModelCall, state: StreamState, record: UsageRecord): JsonObject | null {
  const streamOptions = call.body.stream_options as { include_usage?: unknown } | null | undefined;
  if (streamOptions?.include_usage !== true) return null;
  const chunk = state.usageChunk ?? {
    id: state.responseId ?? `chatcmpl-${call.requestId}`,
    object: 'chat.completion.chunk',
    created: Math.floor(call.startedAtMs / 1000),
    model: call.served!.product.model,
    choices: [],
  };
  const upstreamFields =
    record.usageSource === 'upstream' ? ((state.usageChunk?.usage as JsonObject | undefined) ?? {}) : {};
  chunk.usage = Object.assign(openAIUsage(record), upstreamFields);
  return chunk;
}
