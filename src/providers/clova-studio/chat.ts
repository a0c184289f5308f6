import type { JsonObject, TokenUsage } from '../adapter.ts';
import { UpstreamError } from '../adapter.ts';
import { openAIUsage } from '../openai-shapes.ts';

/** CLOVA's stop reasons → OpenAI's `finish_reason` (v1 also used `stop_before` and `end_token`). */
const FINISH_REASONS: Readonly<Record<string, string>> = {
  stop: 'stop',
  stop_before: 'stop',
  end_token: 'stop',
  length: 'length',
  tool_calls: 'tool_calls',
  content_filter: 'content_filter',
};

export function toFinishReason(value: unknown): string {
  return (typeof value === 'string' && FINISH_REASONS[value]) || 'stop';
}

/**
 * `result.usage` (`{promptTokens, completionTokens, totalTokens}`) → token counts as CLOVA gave them;
 * null when absent or not numbers (the call layer judges plausibility: billing/usage-check.ts).
 */
export function readClovaUsage(value: unknown): TokenUsage | null {
  if (!value || typeof value !== 'object') return null;
  const u = value as { promptTokens?: unknown; completionTokens?: unknown };
  if (typeof u.promptTokens !== 'number' || typeof u.completionTokens !== 'number') return null;
  return { promptTokens: u.promptTokens, completionTokens: u.completionTokens };
}

/** CLOVA `toolCalls` (arguments as an object) → OpenAI `tool_calls` (arguments as a JSON string). */
export function toOpenAIToolCalls(value: unknown): JsonObject[] | null {
  if (!Array.isArray(value) || value.length === 0) return null;
  return value.map((call, index) => {
    const c = (call ?? {}) as { id?: unknown; function?: { name?: unknown; arguments?: unknown } };
    const args = c.function?.arguments;
    return {
      index,
      id: typeof c.id === 'string' ? c.id : `call_${index}`,
      type: 'function',
      function: {
        name: typeof c.function?.name === 'string' ? c.function.name : '',
        arguments: typeof args === 'string' ? args : JSON.stringify(args ?? {}),
      },
    };
  });
}

export interface ClovaResult {
  message: { role?: unknown; content?: unknown; thinkingContent?: unknown; toolCalls?: unknown };
  finishReason?: unknown;
  created?: unknown;
  usage?: unknown;
}

/** The `result` of a CLOVA answer, or a protocol error when it has none. */
export function readClovaResult(value: unknown): ClovaResult {
  const result = value as ClovaResult | undefined;
  if (!result || typeof result !== 'object' || !result.message || typeof result.message !== 'object')
    throw new UpstreamError('protocol', 'CLOVA Studio answer has no result.message');
  return result;
}

export function createdOf(result: { created?: unknown }): number {
  const c = result.created;
  // CLOVA documents seconds; accept milliseconds too
  if (typeof c === 'number' && Number.isFinite(c)) return c > 1e11 ? Math.floor(c / 1000) : Math.floor(c);
  return Math.floor(Date.now() / 1000);
}

/** A whole CLOVA answer → OpenAI `chat.completion`. */
export function toChatCompletion(
  requestId: string,
  model: string,
  result: ClovaResult,
  usage: TokenUsage | null,
): JsonObject {
  const toolCalls = toOpenAIToolCalls(result.message.toolCalls);
  const message: JsonObject = {
    role: 'assistant',
    content: typeof result.message.content === 'string' ? result.message.content : null,
    refusal: null,
  };
  if (typeof result.message.thinkingContent === 'string' && result.message.thinkingContent !== '')
    message.reasoning_content = result.message.thinkingContent;
  if (toolCalls) message.tool_calls = toolCalls.map(({ index: _index, ...call }) => call);
  const body: JsonObject = {
    id: `chatcmpl-${requestId}`,
    object: 'chat.completion',
    created: createdOf(result),
    model,
    choices: [
      {
        index: 0,
        message,
        logprobs: null,
        finish_reason: toolCalls ? 'tool_calls' : toFinishReason(result.finishReason),
      },
    ],
  };
  if (usage) body.usage = openAIUsage(usage);
  return body;
}
