import type { TokenUsage } from '../adapter.ts';

/**
 * OpenAI's `usage` object → token counts as the upstream gave them; null when absent or not numbers.
 * Plausibility (integers, in range, within the context window) is the call layer's to judge
 * (billing/usage-check.ts), so an implausible count is noted on the record, not silently dropped.
 */
export function readOpenAIUsage(value: unknown): TokenUsage | null {
  if (!value || typeof value !== 'object') return null;
  const u = value as { prompt_tokens?: unknown; completion_tokens?: unknown; total_tokens?: unknown };
  const prompt = u.prompt_tokens;
  if (typeof prompt !== 'number') return null;
  // Embeddings report only prompt (and total) tokens.
  const completion = u.completion_tokens ?? 0;
  if (typeof completion !== 'number') return null;
  return { promptTokens: prompt, completionTokens: completion };
}
