import type { Dispatcher } from 'undici';
import {
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
  postJson,
  readJson,
  toUpstreamError,
  type UpstreamLimits,
} from '../http.ts';
import { parseSse } from '../sse.ts';
import { readOpenAIUsage } from './usage.ts';

/**
 * Any server that speaks OpenAI's API: OpenAI itself, Upstage Solar, vLLM, the llama.cpp server,
 * Ollama, LM Studio. Requests pass through with `model` replaced by the deployment's upstream model;
 * streams always ask for usage so that metering never has to guess.
 */
export class OpenAICompatibleAdapter implements ProviderAdapter {
  readonly name = 'openai-compatible';

  constructor(
    private readonly dispatcher: Dispatcher,
    private readonly limits: UpstreamLimits = DEFAULT_UPSTREAM_LIMITS,
  ) {}

  /** The protocol is OpenAI's own: every feature can be asked for (the server may still refuse it). */
  features(): number {
    return ALL_FEATURES;
  }

  private headers(target: UpstreamTarget): Record<string, string> {
    return target.apiKey ? { authorization: `Bearer ${target.apiKey}` } : {};
  }

  async chat(target: UpstreamTarget, request: JsonObject, options: CallOptions): Promise<CompletedCall> {
    const response = await postJson(
      {
        url: endpoint(target.baseUrl, '/chat/completions'),
        headers: this.headers(target),
        body: JSON.stringify({ ...request, model: target.upstreamModel }),
        options,
      },
      this.dispatcher,
    );
    const body = await readJson(response, options.signal, this.limits.maxBodyBytes);
    if (!Array.isArray(body.choices)) throw new UpstreamError('protocol', 'upstream answer has no choices');
    return { body, usage: readOpenAIUsage(body.usage) };
  }

  async chatStream(
    target: UpstreamTarget,
    request: JsonObject,
    options: CallOptions,
  ): Promise<AsyncIterable<ChatStreamPart>> {
    const streamOptions = (request.stream_options as JsonObject | undefined) ?? {};
    const response = await postJson(
      {
        url: endpoint(target.baseUrl, '/chat/completions'),
        headers: this.headers(target),
        body: JSON.stringify({
          ...request,
          model: target.upstreamModel,
          stream: true,
          stream_options: { ...streamOptions, include_usage: true },
        }),
        options,
      },
      this.dispatcher,
    );
    const contentType = String(response.headers['content-type'] ?? '');
    if (!contentType.includes('text/event-stream')) {
      response.body.destroy();
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
    const response = await postJson(
      {
        url: endpoint(target.baseUrl, '/embeddings'),
        headers: this.headers(target),
        body: JSON.stringify({ ...request, model: target.upstreamModel }),
        options,
      },
      this.dispatcher,
    );
    const body = await readJson(response, options.signal, this.limits.maxBodyBytes);
    if (!Array.isArray(body.data))
      throw new UpstreamError('protocol', 'upstream embeddings answer has no data');
    return { body, usage: readOpenAIUsage(body.usage) };
  }
}

async function* readChatStream(
  body: AsyncIterable<Uint8Array>,
  signal: AbortSignal,
  limits: UpstreamLimits,
): AsyncGenerator<ChatStreamPart> {
  let done = false;
  try {
    for await (const event of parseSse(body, limits)) {
      if (event.data === '[DONE]') {
        done = true;
        break;
      }
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
        throw new UpstreamError(
          'http',
          typeof e.message === 'string' ? e.message : 'upstream error in stream',
          {
            status: 502,
            ...(typeof e.type === 'string' && { type: e.type }),
          },
        );
      }
      const usage = readOpenAIUsage(chunk.usage);
      yield usage ? { type: 'usage', usage, chunk } : { type: 'chunk', chunk };
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
