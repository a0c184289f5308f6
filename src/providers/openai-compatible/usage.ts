import type { TokenUsage } from '../adapter.ts';

/** OpenAI's `usage` object → token counts; null when absent or malformed. */
export function readOpenAIUsage(value: unknown): TokenUsage | null {
  if (!value || typeof value !== 'object') return null;
  const u = value as { prompt_tokens?: unknown; completion_tokens?: unknown; total_tokens?: unknown };
  const prompt = u.prompt_tokens;
  if (typeof prompt !== 'number' || !Number.isInteger(prompt) || prompt < 0) return null;
  // Embeddings report only prompt (and total) tokens.
  const completion = u.completion_tokens ?? 0;
  if (typeof completion !== 'number' || !Number.isInteger(completion) || completion < 0) return null;
  return { promptTokens: prompt, completionTokens: completion };
}
