import { randomUUID } from 'node:crypto';
import type { ChatHistoryItem, LLamaChatGenerateResponseOptions, LlamaChatResponse } from 'node-llama-cpp';
import { abortedCallError } from '../abort.ts';
import {
  type AdapterParams,
  type CallOptions,
  type ChatStreamPart,
  type CompletedCall,
  type JsonObject,
  type ProviderAdapter,
  type TokenUsage,
  UpstreamError,
  type UpstreamTarget,
} from '../adapter.ts';
import { embeddingList, openAIUsage, textInputs, usageChunk } from '../openai-shapes.ts';
import { type LoadedModel, LocalRuntime, type LocalRuntimeOptions, type Slot } from './runtime.ts';

function badRequest(message: string, param: string | null = null): UpstreamError {
  return new UpstreamError('http', message, {
    status: 400,
    type: 'invalid_request_error',
    code: null,
    param,
  });
}

function textOf(content: unknown, param: string): string {
  if (typeof content === 'string') return content;
  if (content === null || content === undefined) return '';
  if (Array.isArray(content)) {
    return content
      .map((part) => {
        const p = part as { type?: unknown; text?: unknown };
        if (p.type === 'text' && typeof p.text === 'string') return p.text;
        throw badRequest('local models take text content only', param);
      })
      .join('');
  }
  throw badRequest('message content must be a string or text parts', param);
}

/** OpenAI messages → node-llama-cpp's chat history; the model's own template formats it. */
export function toChatHistory(messages: unknown): ChatHistoryItem[] {
  if (!Array.isArray(messages) || messages.length === 0)
    throw badRequest('messages must be a non-empty array', 'messages');
  const history: ChatHistoryItem[] = messages.map((m, i) => {
    const message = m as { role?: unknown; content?: unknown };
    const text = textOf(message.content, `messages[${i}].content`);
    switch (message.role) {
      case 'system':
      case 'developer':
        return { type: 'system', text };
      case 'user':
        return { type: 'user', text };
      case 'assistant':
        return { type: 'model', response: [text] };
      default:
        throw badRequest(
          `local models do not support ${String(message.role)} messages`,
          `messages[${i}].role`,
        );
    }
  });
  // the reply to write; an assistant message at the end is continued instead
  if (history.at(-1)?.type !== 'model') history.push({ type: 'model', response: [] });
  return history;
}

type GenerateOptions = LLamaChatGenerateResponseOptions<undefined>;

/**
 * The fields the local adapter reads (`toChatHistory`, `generationOptions`, `embeddings`): tools,
 * functions, response_format and n > 1 are read to be refused with a 400, not ignored.
 */
export const LOCAL_PARAMS: AdapterParams = {
  chat: new Set([
    'messages',
    'model',
    'stream',
    'stream_options',
    'max_tokens',
    'max_completion_tokens',
    'temperature',
    'top_p',
    'seed',
    'stop',
    'n',
    'tools',
    'functions',
    'response_format',
  ]),
  embeddings: new Set(['input', 'model', 'encoding_format']),
};

export function generationOptions(
  request: JsonObject,
  promptTokens: number,
  contextSize: number,
): GenerateOptions {
  for (const field of ['tools', 'functions', 'response_format'] as const) {
    const v = request[field];
    if (v !== undefined && v !== null && !(field === 'response_format' && (v as JsonObject).type === 'text'))
      throw badRequest(`local models do not support ${field} yet`, field);
  }
  if (request.n !== undefined && request.n !== null && request.n !== 1)
    throw badRequest('local models generate one choice (n = 1)', 'n');
  const room = contextSize - promptTokens;
  if (room < 1)
    throw new UpstreamError(
      'http',
      `the prompt has ${promptTokens} tokens; this local model's context holds ${contextSize}`,
      { status: 400, type: 'invalid_request_error', code: 'context_length_exceeded', param: 'messages' },
    );
  const asked = request.max_completion_tokens ?? request.max_tokens;
  const options: GenerateOptions = {
    maxTokens: typeof asked === 'number' && asked > 0 ? Math.min(asked, room) : room,
    temperature: typeof request.temperature === 'number' ? request.temperature : 1,
  };
  if (typeof request.top_p === 'number') options.topP = request.top_p;
  if (typeof request.seed === 'number') options.seed = request.seed;
  const stop = typeof request.stop === 'string' ? [request.stop] : request.stop;
  if (Array.isArray(stop) && stop.length > 0)
    options.customStopTriggers = stop.filter((s): s is string => typeof s === 'string' && s !== '');
  return options;
}

function finishReason(response: LlamaChatResponse): string {
  return response.metadata.stopReason === 'maxTokens' ? 'length' : 'stop';
}

/** A prepared call: the model, its sequence, the history, and the prompt length by the model's tokenizer. */
interface Prepared {
  loaded: LoadedModel;
  slot: Slot;
  history: ChatHistoryItem[];
  promptTokens: number;
  options: GenerateOptions;
}

/**
 * Lightweight models in-process through node-llama-cpp (llama.cpp): a deployment names a GGUF file
 * (`upstreamModel`) in the models folder; its `baseUrl` is `local:`. Prompts are formatted with the
 * model's own chat template; usage is the model's own token count (the templated prompt tokenized by
 * the model, and the tokens it generated).
 */
export class LocalAdapter implements ProviderAdapter {
  readonly name = 'local';
  readonly params: AdapterParams = LOCAL_PARAMS;
  readonly runtime: LocalRuntime;

  constructor(options: LocalRuntimeOptions) {
    this.runtime = new LocalRuntime(options);
  }

  /** Text in, one choice of text out: no tools, formats, images or log probabilities yet. */
  features(): number {
    return 0;
  }

  private async prepare(target: UpstreamTarget, request: JsonObject, signal: AbortSignal): Promise<Prepared> {
    const history = toChatHistory(request.messages);
    const loaded = await this.runtime.model(target.upstreamModel);
    const slot = await loaded.acquire(signal);
    try {
      const state = slot.chat.chatWrapper.generateContextState({ chatHistory: history });
      const promptTokens = state.contextText.tokenize(loaded.model.tokenizer).length;
      const options = generationOptions(request, promptTokens, loaded.contextSize);
      return { loaded, slot, history, promptTokens, options };
    } catch (error) {
      loaded.release(slot);
      throw error;
    }
  }

  private async generate(
    prepared: Prepared,
    signal: AbortSignal,
    onTextChunk?: (text: string) => void,
  ): Promise<{ response: LlamaChatResponse; usage: TokenUsage }> {
    const { loaded, slot, history, promptTokens, options } = prepared;
    // node-llama-cpp needs a real AbortSignal; the hub's call signal only has its shape (CallAbort)
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    try {
      const before = slot.sequence.tokenMeter.getState();
      const response = await slot.chat.generateResponse(history, {
        ...options,
        signal: controller.signal,
        ...(onTextChunk && { onTextChunk }),
      });
      const completionTokens = slot.sequence.tokenMeter.diff(before).usedOutputTokens;
      return { response, usage: { promptTokens, completionTokens } };
    } catch (error) {
      // the hub's time-out is not a client that left: it answers 504 and records `timeout`
      if (signal.aborted) throw abortedCallError(signal);
      if (UpstreamError.isInstance(error)) throw error;
      throw new UpstreamError(
        'protocol',
        `local model failed: ${String((error as Error)?.message ?? error)}`,
      );
    } finally {
      signal.removeEventListener('abort', onAbort);
      loaded.release(slot);
    }
  }

  async chat(target: UpstreamTarget, request: JsonObject, options: CallOptions): Promise<CompletedCall> {
    const prepared = await this.prepare(target, request, options.signal);
    const { response, usage } = await this.generate(prepared, options.signal);
    return {
      body: {
        id: `chatcmpl-${randomUUID()}`,
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model: target.upstreamModel,
        choices: [
          {
            index: 0,
            message: { role: 'assistant', content: response.response, refusal: null },
            logprobs: null,
            finish_reason: finishReason(response),
          },
        ],
        usage: openAIUsage(usage),
      },
      usage,
    };
  }

  async chatStream(
    target: UpstreamTarget,
    request: JsonObject,
    options: CallOptions,
  ): Promise<AsyncIterable<ChatStreamPart>> {
    const prepared = await this.prepare(target, request, options.signal);
    return this.stream(target, prepared, options.signal);
  }

  private async *stream(
    target: UpstreamTarget,
    prepared: Prepared,
    outer: AbortSignal,
  ): AsyncGenerator<ChatStreamPart> {
    const id = `chatcmpl-${randomUUID()}`;
    const created = Math.floor(Date.now() / 1000);
    const chunk = (delta: JsonObject, finish: string | null): JsonObject => ({
      id,
      object: 'chat.completion.chunk',
      created,
      model: target.upstreamModel,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    });
    // the consumer stopping early (or the client leaving) stops the generation
    const controller = new AbortController();
    const onOuterAbort = () => controller.abort(outer.reason);
    outer.addEventListener('abort', onOuterAbort, { once: true });

    const pending: string[] = [];
    let wake: (() => void) | null = null;
    const notify = () => {
      wake?.();
      wake = null;
    };
    type Outcome =
      | { ok: true; value: { response: LlamaChatResponse; usage: TokenUsage } }
      | { ok: false; error: unknown };
    const state: { outcome: Outcome | null } = { outcome: null };
    this.generate(prepared, controller.signal, (text) => {
      pending.push(text);
      notify();
    }).then(
      (value) => {
        state.outcome = { ok: true, value };
        notify();
      },
      (error: unknown) => {
        state.outcome = { ok: false, error };
        notify();
      },
    );

    try {
      yield { type: 'chunk', chunk: chunk({ role: 'assistant', content: '' }, null) };
      for (;;) {
        while (pending.length > 0) {
          const text = pending.splice(0).join('');
          if (text !== '') yield { type: 'chunk', chunk: chunk({ content: text }, null) };
        }
        const settled = state.outcome;
        if (settled) {
          if (!settled.ok) throw settled.error;
          const { response, usage } = settled.value;
          yield { type: 'chunk', chunk: chunk({}, finishReason(response)) };
          yield {
            type: 'usage',
            usage,
            chunk: usageChunk(id, created, target.upstreamModel, usage),
          };
          yield { type: 'done' };
          return;
        }
        await new Promise<void>((r) => {
          wake = r;
        });
      }
    } finally {
      outer.removeEventListener('abort', onOuterAbort);
      if (!state.outcome) controller.abort(new Error('stream closed'));
    }
  }

  async embeddings(
    target: UpstreamTarget,
    request: JsonObject,
    options: CallOptions,
  ): Promise<CompletedCall> {
    const inputs = textInputs(request.input);
    if (!inputs) throw badRequest('local embeddings take a string or an array of strings', 'input');
    const base64 = request.encoding_format === 'base64';
    const loaded = await this.runtime.model(target.upstreamModel);
    const slot = await loaded.acquire(options.signal);
    try {
      const context = await loaded.embeddingContext();
      const vectors: (readonly number[])[] = [];
      let promptTokens = 0;
      for (const text of inputs) {
        if (options.signal.aborted) throw abortedCallError(options.signal);
        promptTokens += loaded.model.tokenize(text).length;
        vectors.push((await context.getEmbeddingFor(text)).vector);
      }
      return {
        body: embeddingList(vectors, target.upstreamModel, promptTokens, base64),
        usage: { promptTokens, completionTokens: 0 },
      };
    } catch (error) {
      if (UpstreamError.isInstance(error)) throw error;
      throw new UpstreamError(
        'protocol',
        `local embeddings failed: ${String((error as Error)?.message ?? error)}`,
      );
    } finally {
      loaded.release(slot);
    }
  }

  close(): Promise<void> {
    return this.runtime.close();
  }
}
