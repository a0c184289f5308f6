import type { TokenUsage } from '../providers/adapter.ts';

/** The largest token count a usage record takes: PostgreSQL's INTEGER, and SQLite's CHECK. */
export const MAX_TOKEN_COUNT = 2 ** 31 - 1;

/** What bounds a plausible count for one request. */
export interface UsageBounds {
  /** The product's context window. */
  contextWindow: number;
  /** How many contexts the prompt spans: 1 for a chat, the number of inputs of an embeddings batch. */
  promptContexts: number;
  /** Choices generated (`n`, default 1); 0 for embeddings, which generate nothing. */
  choices: number;
  /** `max_completion_tokens` / `max_tokens` when the client set one: no choice is longer. */
  maxCompletionTokens: number | null;
}

function badCount(n: number): boolean {
  return !Number.isInteger(n) || n < 0 || n > MAX_TOKEN_COUNT;
}

/**
 * Why the counts a supplier reported cannot be billed, or null when they are plausible (the common
 * path: no allocation). A supplier's answer is not trusted blindly: `prompt_tokens: 1e300` once
 * stopped the journal for every organisation, and a negative count made a negative cost. Counts must
 * be integers in 0…2³¹−1; the prompt within the context window (one window per input of an
 * embeddings batch); the completion within the window and within `max_tokens`, per choice. The caller
 * then bills its own estimate and keeps this reason with the record.
 */
export function usageProblem(usage: TokenUsage, bounds: UsageBounds): string | null {
  const { promptTokens: prompt, completionTokens: completion } = usage;
  if (badCount(prompt) || badCount(completion))
    return `upstream usage is not a token count: prompt_tokens=${prompt}, completion_tokens=${completion}`;
  const promptLimit = bounds.contextWindow * Math.max(1, bounds.promptContexts);
  if (prompt > promptLimit)
    return `upstream prompt_tokens=${prompt} exceed the context window (${promptLimit})`;
  const perChoice =
    bounds.maxCompletionTokens === null
      ? bounds.contextWindow
      : Math.min(bounds.contextWindow, bounds.maxCompletionTokens);
  const completionLimit = perChoice * bounds.choices;
  if (completion > completionLimit)
    return `upstream completion_tokens=${completion} exceed what the request allows (${completionLimit})`;
  return null;
}
