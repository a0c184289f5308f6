import { audioTokens, imageTokens } from './media-tokens.ts';

/**
 * A tokenizer-free estimate, used only where the upstream reports no usage (and for admission's
 * worst case). Korean text costs roughly one token per syllable in the suppliers' tokenizers, English
 * roughly one per four characters; the estimate leans high, as a bill based on it should.
 *
 * Text is weighed in quarter-tokens: 1 per ASCII character, 4 per other character (a surrogate
 * pair, one emoji, counts once). Rounding up happens once per text, or once per answer.
 */
export function textQuarterTokens(text: string): number {
  // all ASCII (an image's base64, English): one native pass instead of a loop over the characters,
  // tried only when a first, middle and last character are ASCII (Korean text would pay it for nothing)
  const n = text.length;
  if (
    n > 256 &&
    text.charCodeAt(0) < 128 &&
    text.charCodeAt(n >> 1) < 128 &&
    text.charCodeAt(n - 1) < 128 &&
    Buffer.byteLength(text, 'utf8') === n
  ) {
    return n;
  }
  let quarterTokens = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    quarterTokens += c < 128 ? 1 : c >= 0xd800 && c <= 0xdbff ? 0 : 4;
  }
  return quarterTokens;
}

export function tokensFromQuarters(quarterTokens: number): number {
  return Math.ceil(quarterTokens / 4);
}

export function estimateTextTokens(text: string): number {
  return tokensFromQuarters(textQuarterTokens(text));
}

const textTokens = (v: unknown): number => (typeof v === 'string' ? estimateTextTokens(v) : 0);
/** A JSON value as the upstream will see it in its prompt (tool definitions, schemas): its JSON text. */
const jsonTokens = (v: unknown): number =>
  v === undefined || v === null ? 0 : estimateTextTokens(JSON.stringify(v));

/** Reply priming of a chat prompt, and the framing of each message (role, separators). */
const PROMPT_OVERHEAD_TOKENS = 3;
const MESSAGE_OVERHEAD_TOKENS = 4;
/** A `name` replaces nothing and adds one token of framing besides its text. */
const NAME_OVERHEAD_TOKENS = 1;
/** Framing of one tool call in an assistant message besides its name and arguments. */
const TOOL_CALL_OVERHEAD_TOKENS = 3;

type Json = Record<string, unknown>;
const asObject = (v: unknown): Json | undefined =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined;

/**
 * The whole prompt of a chat request: every message (text parts, images at their documented cost,
 * audio, tool calls and tool results, names) with its framing, plus the tool and function
 * definitions and the `response_format` schema, as JSON text.
 */
export function estimatePromptTokens(body: unknown): number {
  const request = asObject(body);
  if (!request) return 0;
  let total = PROMPT_OVERHEAD_TOKENS;
  const messages = request.messages;
  if (Array.isArray(messages)) for (const message of messages) total += messageTokens(asObject(message));
  total += jsonTokens(request.tools) + jsonTokens(request.functions);
  total += jsonTokens(asObject(request.response_format));
  return total;
}

function messageTokens(message: Json | undefined): number {
  if (!message) return MESSAGE_OVERHEAD_TOKENS;
  let total = MESSAGE_OVERHEAD_TOKENS + contentTokens(message.content) + textTokens(message.refusal);
  if (typeof message.name === 'string') total += NAME_OVERHEAD_TOKENS + estimateTextTokens(message.name);
  total += textTokens(message.tool_call_id);
  if (Array.isArray(message.tool_calls)) {
    for (const call of message.tool_calls) {
      const fn = asObject(asObject(call)?.function);
      total += TOOL_CALL_OVERHEAD_TOKENS + textTokens(fn?.name) + argumentsTokens(fn?.arguments);
    }
  }
  const legacyCall = asObject(message.function_call);
  if (legacyCall) total += textTokens(legacyCall.name) + argumentsTokens(legacyCall.arguments);
  return total;
}

/** Arguments are a JSON string on the wire; some clients send the object itself. */
const argumentsTokens = (v: unknown): number =>
  typeof v === 'string' ? estimateTextTokens(v) : jsonTokens(v);

function contentTokens(content: unknown): number {
  if (typeof content === 'string') return estimateTextTokens(content);
  if (!Array.isArray(content)) return 0;
  let total = 0;
  for (const item of content) {
    const part = asObject(item);
    if (!part) continue;
    if (part.type === 'text') total += textTokens(part.text);
    else if (part.type === 'refusal') total += textTokens(part.refusal);
    else if (part.type === 'image_url') {
      const image = asObject(part.image_url);
      total += imageTokens(image?.url, image?.detail);
    } else if (part.type === 'input_audio') {
      const audio = asObject(part.input_audio);
      total += audioTokens(audio?.data, audio?.format);
    } else if (part.type === 'file') {
      // a file's content is read by the supplier (text and page images): its size as text is the
      // nearest bound the hub can give; a `file_id` alone names an upload it never saw
      const file = asObject(part.file);
      if (typeof file?.file_data === 'string') total += Math.ceil((file.file_data.length * 3) / 4 / 4);
      total += textTokens(file?.filename);
    } else {
      total += jsonTokens(part); // a part type the hub does not know: all of it, as text
    }
  }
  return total;
}

/**
 * Quarter-tokens of the text an answer's `message` (completed) or `delta` (streamed) carries:
 * content, reasoning, refusal, tool calls and the legacy function call, the audio transcript.
 */
function generatedQuarterTokens(part: Json | undefined): number {
  if (!part) return 0;
  let q = 0;
  if (typeof part.content === 'string') q += textQuarterTokens(part.content);
  if (typeof part.reasoning_content === 'string') q += textQuarterTokens(part.reasoning_content);
  if (typeof part.reasoning === 'string') q += textQuarterTokens(part.reasoning);
  if (typeof part.refusal === 'string') q += textQuarterTokens(part.refusal);
  const calls = part.tool_calls;
  if (Array.isArray(calls)) {
    for (let i = 0; i < calls.length; i++) q += functionQuarterTokens(asObject(asObject(calls[i])?.function));
  }
  q += functionQuarterTokens(asObject(part.function_call));
  const transcript = asObject(part.audio)?.transcript;
  if (typeof transcript === 'string') q += textQuarterTokens(transcript);
  return q;
}

function functionQuarterTokens(fn: Json | undefined): number {
  if (!fn) return 0;
  let q = 0;
  if (typeof fn.name === 'string') q += textQuarterTokens(fn.name);
  if (typeof fn.arguments === 'string') q += textQuarterTokens(fn.arguments);
  return q;
}

/** A completed `chat.completion`'s generated text over all its choices. */
export function estimateCompletionTokens(completion: unknown): number {
  const choices = asObject(completion)?.choices;
  if (!Array.isArray(choices)) return 0;
  let q = 0;
  for (let i = 0; i < choices.length; i++)
    q += generatedQuarterTokens(asObject(asObject(choices[i])?.message));
  return tokensFromQuarters(q);
}

/**
 * What one streamed `chat.completion.chunk` adds, in quarter-tokens, over all its choices. Summed over
 * the chunks and rounded once with `tokensFromQuarters`, it equals `estimateCompletionTokens` of the
 * same answer completed. Allocates nothing.
 */
export function chunkQuarterTokens(chunk: unknown): number {
  const choices = asObject(chunk)?.choices;
  if (!Array.isArray(choices)) return 0;
  let q = 0;
  for (let i = 0; i < choices.length; i++) q += generatedQuarterTokens(asObject(asObject(choices[i])?.delta));
  return q;
}

export function estimateEmbeddingInputTokens(input: unknown): number {
  if (typeof input === 'string') return estimateTextTokens(input);
  if (!Array.isArray(input)) return 0;
  let total = 0;
  for (const item of input) {
    if (typeof item === 'string') total += estimateTextTokens(item);
    else if (typeof item === 'number') total += 1;
    else if (Array.isArray(item)) total += item.length;
  }
  return total;
}
