import type { JsonObject, TokenUsage } from './adapter.ts';

/**
 * OpenAI wire shapes that adapters of non-OpenAI protocols build, in one place so every adapter
 * answers exactly alike.
 */
export function openAIUsage(usage: TokenUsage): JsonObject {
  return {
    prompt_tokens: usage.promptTokens,
    completion_tokens: usage.completionTokens,
    total_tokens: usage.promptTokens + usage.completionTokens,
  };
}

/** The last chunk of a stream asked with `include_usage`: no choices, only usage. */
export function usageChunk(id: string, created: number, model: string, usage: TokenUsage): JsonObject {
  return { id, object: 'chat.completion.chunk', created, model, choices: [], usage: openAIUsage(usage) };
}

/** `encoding_format: 'base64'`: the vector as little-endian float32 bytes. */
export function embeddingToBase64(vector: readonly number[]): string {
  const buffer = Buffer.alloc(vector.length * 4);
  for (let i = 0; i < vector.length; i++) buffer.writeFloatLE(vector[i]!, i * 4);
  return buffer.toString('base64');
}

/** An embeddings answer: one entry per input, in order, float arrays or base64 as asked. */
export function embeddingList(
  vectors: readonly (readonly number[])[],
  model: string,
  promptTokens: number,
  base64: boolean,
): JsonObject {
  return {
    object: 'list',
    data: vectors.map((vector, index) => ({
      object: 'embedding',
      index,
      embedding: base64 ? embeddingToBase64(vector) : [...vector],
    })),
    model,
    usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
  };
}

/**
 * An embeddings `input` as texts: a string or a non-empty array of strings; undefined for anything
 * else (token arrays, mixed or empty lists), which an adapter taking text refuses with its own words.
 */
export function textInputs(input: unknown): string[] | undefined {
  const texts = typeof input === 'string' ? [input] : input;
  if (!Array.isArray(texts) || texts.length === 0 || !texts.every((t) => typeof t === 'string'))
    return undefined;
  return texts as string[];
}
