/**
 * A tokenizer-free estimate, used only where the upstream reports no usage (and for admission's
 * worst case). Korean text costs roughly one token per syllable in the suppliers' tokenizers, English
 * roughly one per four characters; the estimate leans high, as a bill based on it should.
 */
export function estimateTextTokens(text: string): number {
  let quarterTokens = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    quarterTokens += c < 128 ? 1 : c >= 0xd800 && c <= 0xdbff ? 0 : 4;
  }
  return Math.ceil(quarterTokens / 4);
}

/** Messages of a chat request: content text plus a small per-message overhead for roles and framing. */
export function estimatePromptTokens(messages: unknown): number {
  if (!Array.isArray(messages)) return 0;
  let total = 3;
  for (const message of messages) {
    total += 4;
    const content = (message as { content?: unknown } | null)?.content;
    if (typeof content === 'string') total += estimateTextTokens(content);
    else if (Array.isArray(content)) {
      for (const part of content) {
        const text = (part as { text?: unknown } | null)?.text;
        if (typeof text === 'string') total += estimateTextTokens(text);
        // images and audio: priced by the upstream; without its count we cannot know, so count nothing
      }
    }
  }
  return total;
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

// Interim versions (the request-side work replaces them with estimates of every field).
function quarterTokens(text: string): number {
  let q = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    q += c < 128 ? 1 : c >= 0xd800 && c <= 0xdbff ? 0 : 4;
  }
  return q;
}

/** A completed chat answer: the content of every choice. */
export function estimateCompletionTokens(completion: Record<string, unknown>): number {
  let q = 0;
  for (const choice of (completion.choices as { message?: { content?: unknown } }[] | undefined) ?? []) {
    const content = choice?.message?.content;
    if (typeof content === 'string') q += quarterTokens(content);
  }
  return tokensFromQuarters(q);
}

/** A streamed chunk's deltas, in quarter tokens (summed over a stream, then `tokensFromQuarters`). */
export function chunkQuarterTokens(chunk: Record<string, unknown>): number {
  const choices = chunk.choices;
  if (!Array.isArray(choices)) return 0;
  let q = 0;
  for (const choice of choices) {
    const content = (choice as { delta?: { content?: unknown } } | null)?.delta?.content;
    if (typeof content === 'string') q += quarterTokens(content);
  }
  return q;
}

export function tokensFromQuarters(quarters: number): number {
  return Math.ceil(quarters / 4);
}
