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
  endpoint,
  poolFor,
  postJson,
  readJson,
  StreamedAnswer,
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
    const parts = new ChatParts(options.signal, this.limits);
    await parts.open(
      {
        url: endpoint(target.baseUrl, '/chat/completions'),
        headers: this.headers(target),
        body: JSON.stringify(body),
        options,
      },
      poolFor(target, this.dispatcher, this.supplierDispatcher),
    );
    if (!parts.contentType.includes('text/event-stream')) {
      parts.drop();
      throw new UpstreamError(
        'protocol',
        `upstream answered ${parts.contentType || 'no content type'} to a stream request`,
      );
    }
    return parts;
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

const DONE_PART: ChatStreamPart = Object.freeze({ type: 'done' });

/**
 * The upstream's events as chat parts, parsed as the reader takes them, straight off the answer
 * (`StreamedAnswer`: no body stream, iterator or generator of its own under every open stream). Ends
 * with a `done` part at `[DONE]`; a body that ends without it is a protocol error.
 */
class ChatParts extends StreamedAnswer<ChatStreamPart> {
  private readonly parser: SseParser;
  private readonly events: SseEvent[];
  private index = 0;

  constructor(signal: AbortSignal, limits: UpstreamLimits) {
    super(signal);
    this.parser = new SseParser(limits);
    this.events = this.parser.events;
  }

  protected decode(piece: Buffer): void {
    this.parser.push(piece);
  }

  protected take(): ChatStreamPart | undefined {
    const events = this.events;
    if (this.index < events.length) {
      const event = events[this.index]!;
      // taken before it is read: an event that throws is not read again
      events[this.index++] = NO_EVENT;
      const part = chatPart(event);
      if (part !== null) return part;
      events.length = 0;
      this.index = 0;
      this.finish();
      return DONE_PART;
    }
    if (events.length > 0) {
      events.length = 0;
      this.index = 0;
    }
    // an over-long line or event: after the events completed before it
    this.parser.rethrow();
    return undefined;
  }

  protected end(): void {
    this.parser.end();
  }

  protected incomplete(): Error {
    return new UpstreamError('protocol', 'upstream stream ended without [DONE]');
  }
}

const NO_EVENT: SseEvent = Object.freeze({ event: '', data: '' });

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
