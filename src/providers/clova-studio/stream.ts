import { type ChatStreamPart, type JsonObject, type TokenUsage, UpstreamError } from '../adapter.ts';
import { toUpstreamError, type UpstreamLimits } from '../http.ts';
import { usageChunk } from '../openai-shapes.ts';
import { parseSse } from '../sse.ts';
import { createdOf, readClovaResult, readClovaUsage, toFinishReason, toOpenAIToolCalls } from './chat.ts';
import { clovaStatusError, readClovaStatus } from './errors.ts';

/**
 * CLOVA Studio's stream → OpenAI chunks. CLOVA names its events:
 * - `token`: `{message: {role, content}, finishReason: null, created, seed, usage: null}`, one piece
 *   of the reply → a chunk whose delta is that piece (the first also carries `role`);
 * - `result`: the whole message with `finishReason` and `usage` → a chunk with the finish_reason (and
 *   tool calls, which CLOVA reports whole), then a usage part with `choices: []`;
 * - `error`: `{status: {code, message}}` → an `UpstreamError` with CLOVA's message;
 * - `signal`: `{data: '[DONE]'}` ends the stream (as does the end of the body after `result`).
 */
export async function* readClovaStream(
  body: AsyncIterable<Uint8Array>,
  signal: AbortSignal,
  requestId: string,
  model: string,
  limits: UpstreamLimits,
): AsyncGenerator<ChatStreamPart> {
  const id = `chatcmpl-${requestId}`;
  let created: number | null = null;
  let sentRole = false;
  let usage: TokenUsage | null = null;
  let finished = false;
  const chunk = (delta: JsonObject, finishReason: string | null): JsonObject => ({
    id,
    object: 'chat.completion.chunk',
    created: created ?? Math.floor(Date.now() / 1000),
    model,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
  });
  try {
    for await (const event of parseSse(body, limits)) {
      if (event.data === '[DONE]') break;
      let data: JsonObject;
      try {
        data = JSON.parse(event.data) as JsonObject;
      } catch {
        throw new UpstreamError(
          'protocol',
          `CLOVA Studio sent an event that is not JSON: ${event.data.slice(0, 200)}`,
        );
      }
      if (event.event === 'signal') {
        if (data.data === '[DONE]') break;
        continue;
      }
      if (event.event === 'error') {
        const status = readClovaStatus(data);
        throw status
          ? clovaStatusError(status, 502)
          : new UpstreamError('http', `CLOVA Studio error event: ${event.data.slice(0, 500)}`, {
              status: 502,
            });
      }
      if (finished) continue;
      if (event.event === 'token') {
        const result = readClovaResult(data);
        created ??= createdOf(result);
        const delta: JsonObject = sentRole ? {} : { role: 'assistant' };
        sentRole = true;
        const { content, thinkingContent } = result.message;
        if (typeof thinkingContent === 'string' && thinkingContent !== '')
          delta.reasoning_content = thinkingContent;
        if (typeof content === 'string') delta.content = content;
        else if (!('reasoning_content' in delta)) delta.content = '';
        yield { type: 'chunk', chunk: chunk(delta, null) };
      } else if (event.event === 'result') {
        const result = readClovaResult(data);
        created ??= createdOf(result);
        usage = readClovaUsage(result.usage);
        const toolCalls = toOpenAIToolCalls(result.message.toolCalls);
        const delta: JsonObject = sentRole ? {} : { role: 'assistant', content: '' };
        if (toolCalls) delta.tool_calls = toolCalls;
        yield {
          type: 'chunk',
          chunk: chunk(delta, toolCalls ? 'tool_calls' : toFinishReason(result.finishReason)),
        };
        finished = true;
      }
      // other events (e.g. a future keep-alive) carry nothing to forward
    }
  } catch (error) {
    const failure = toUpstreamError(error, signal);
    if (failure.kind === 'connect')
      throw new UpstreamError('protocol', `CLOVA Studio stream broke off: ${failure.message}`);
    throw failure;
  }
  if (!finished) throw new UpstreamError('protocol', 'CLOVA Studio stream ended without a result event');
  if (usage) {
    yield {
      type: 'usage',
      usage,
      chunk: usageChunk(id, created ?? Math.floor(Date.now() / 1000), model, usage),
    };
  }
  yield { type: 'done' };
}
