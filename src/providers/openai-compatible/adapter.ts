import type { Dispatcher } from 'undici';
import {
  type AdapterParams,
  type CallOptions,
  type ChatStreamPart,
  type CompletedCall,
  type JsonObject,
  type ProviderAdapter,
  UpstreamError,
  type UpstreamTarget,
} from '../adapter.ts';
import { ALL_FEATURES } from '../features.ts';
import {
  DEFAULT_UPSTREAM_LIMITS,
  dropBody,
  endpoint,
  poolFor,
  postJson,
  readJson,
  toUpstreamError,
  type UpstreamLimits,
} from '../http.ts';
import { allowedFields } from '../params.ts';
import { type SseEvent, SseParser } from '../sse.ts';
import { OPENAI_COMPATIBLE_PARAMS } from './params.ts';
import { readOpenAIUsage } from './usage.ts';

/**
 * Any server that speaks OpenAI's API: OpenAI itself, Upstage Solar, vLLM, the llama.cpp server,
 * Ollama, LM Studio. Requests pass through with only the fields of `params.ts` and `model` replaced
 * by the deployment's upstream model; streams always ask for usage so that metering never has to guess.
 */
export class OpenAICompatibleAdapter implements ProviderAdapter {
  readonly name = 'openai-compatible';
  readonly params: AdapterParams = OPENAI_COMPATIBLE_PARAMS;

  constructor(
    private readonly dispatcher: Dispatcher,
    private readonly limits: UpstreamLimits = DEFAULT_UPSTREAM_LIMITS,
    /** For targets a supplier admin set (`publicOnly`): the pool that checks addresses. */
    private readonly supplierDispatcher?: Dispatcher,
  ) {}

  /** The protocol is OpenAI's own: every feature can be asked for (the server may still refuse it). */
  features(): number {
    return ALL_FEATURES;
  }

  private headers(target: UpstreamTarget): Record<string, string> {
    return target.apiKey ? { authorization: `Bearer ${target.apiKey}` } : {};
  }

  async chat(target: UpstreamTarget, request: JsonObject, options: CallOptions): Promise<CompletedCall> {
    const body = allowedFields(request, this.params.chat);
    body.model = target.upstreamModel;
    const response = await postJson(
      {
        url: endpoint(target.baseUrl, '/chat/completions'),
        headers: this.headers(target),
        body: JSON.stringify(body),
        options,
      },
      poolFor(target, this.dispatcher, this.supplierDispatcher),
    );
    const answer = await readJson(response, options.signal, this.limits.maxBodyBytes);
    if (!Array.isArray(answer.choices)) throw new UpstreamError('protocol', 'upstream answer has no choices');
    return { body: answer, usage: readOpenAIUsage(answer.usage) };
  }

  async chatStream(
    target: UpstreamTarget,
    request: JsonObject,
    options: CallOptions,
  ): Promise<AsyncIterable<ChatStreamPart>> {
    const body = allowedFields(request, this.params.chat);
    body.model = target.upstreamModel;
    body.stream = true;
    // usage always: metering never guesses; the hub strips the chunk when the client did not ask
    body.stream_options = Object.assign({}, request.stream_options as JsonObject | undefined, {
      include_usage: true,
    });
    const response = await postJson(
      {
        url: endpoint(target.baseUrl, '/chat/completions'),
        headers: this.headers(target),
        body: JSON.stringify(body),
        options,
        streamed: true,
      },
      poolFor(target, this.dispatcher, this.supplierDispatcher),
    );
    const contentType = String(response.headers['content-type'] ?? '');
    if (!contentType.includes('text/event-stream')) {
      dropBody(response);
      throw new UpstreamError(
        'protocol',
        `upstream answered ${contentType || 'no content type'} to a stream request`,
      );
    }
    return readChatStream(response.body, options.signal, this.limits);
  }

  async embeddings(
    target: UpstreamTarget,
    request: JsonObject,
    options: CallOptions,
  ): Promise<CompletedCall> {
    const body = allowedFields(request, this.params.embeddings);
    body.model = target.upstreamModel;
    const response = await postJson(
      {
        url: endpoint(target.baseUrl, '/embeddings'),
        headers: this.headers(target),
        body: JSON.stringify(body),
        options,
      },
      poolFor(target, this.dispatcher, this.supplierDispatcher),
    );
    const answer = await readJson(response, options.signal, this.limits.maxBodyBytes);
    if (!Array.isArray(answer.data))
      throw new UpstreamError('protocol', 'upstream embeddings answer has no data');
    return { body: answer, usage: readOpenAIUsage(answer.usage) };
  }
}

/**
 * The upstream's events as chat parts, read straight off the body with the SSE parser inside this
 * generator (not a generator of its own under it: one frame, promise and closures fewer per open
 * stream, and one await fewer per chunk).
 */
async function* readChatStream(
  body: AsyncIterable<Uint8Array>,
  signal: AbortSignal,
  limits: UpstreamLimits,
): AsyncGenerator<ChatStreamPart> {
  const parser = new SseParser(limits);
  const events = parser.events;
  let done = false;
  try {
    read: for await (const piece of body) {
      parser.push(piece);
      for (let i = 0; i < events.length; i++) {
        const part = chatPart(events[i]!);
        if (part === null) {
          done = true;
          break read;
        }
        yield part;
      }
      events.length = 0;
      parser.rethrow();
    }
    if (!done) {
      parser.end();
      for (let i = 0; i < events.length; i++) {
        const part = chatPart(events[i]!);
        if (part === null) {
          done = true;
          break;
        }
        yield part;
      }
      events.length = 0;
      parser.rethrow();
    }
  } catch (error) {
    const failure = toUpstreamError(error, signal);
    if (failure.kind === 'connect')
      throw new UpstreamError('protocol', `upstream stream broke off: ${failure.message}`);
    throw failure;
  }
  if (!done) throw new UpstreamError('protocol', 'upstream stream ended without [DONE]');
  yield { type: 'done' };
}

/** One event as a chat part; null for `[DONE]`. Throws what the upstream reported in the stream. */
function chatPart(event: SseEvent): ChatStreamPart | null {
  if (event.data === '[DONE]') return null;
  let chunk: JsonObject;
  try {
    chunk = JSON.parse(event.data) as JsonObject;
  } catch {
    throw new UpstreamError(
      'protocol',
      `upstream sent an event that is not JSON: ${event.data.slice(0, 200)}`,
    );
  }
  if (chunk.error && typeof chunk.error === 'object') {
    const e = chunk.error as { message?: unknown; type?: unknown; code?: unknown };
    throw new UpstreamError('http', typeof e.message === 'string' ? e.message : 'upstream error in stream', {
      status: 502,
      ...(typeof e.type === 'string' && { type: e.type }),
    });
  }
  const usage = readOpenAIUsage(chunk.usage);
  return usage ? { type: 'usage', usage, chunk } : { type: 'chunk', chunk };
}
