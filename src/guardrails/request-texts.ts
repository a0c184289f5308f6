import type { CallOperation } from '../calls/observer.ts';
import type { JsonObject } from '../providers/adapter.ts';

/** Rewrites one text; null: unchanged. */
export type TextRewrite = (text: string) => string | null;

/**
 * The request with every text a person could have written passed through `rewrite`: message contents
 * (strings and text parts), tool-call arguments and, for embeddings, the input strings. Copies only
 * what changed, never the client's own objects; null when nothing changed.
 */
export function rewriteRequestTexts(
  body: JsonObject,
  operation: CallOperation,
  rewrite: TextRewrite,
): JsonObject | null {
  if (operation === 'embeddings') {
    const input = body.input;
    if (typeof input === 'string') {
      const next = rewrite(input);
      return next === null ? null : { ...body, input: next };
    }
    if (!Array.isArray(input)) return null;
    const next = rewriteList(input, (item) => (typeof item === 'string' ? rewrite(item) : null));
    return next === null ? null : { ...body, input: next };
  }
  const messages = body.messages;
  if (!Array.isArray(messages)) return null;
  const next = rewriteList(messages, (m) => rewriteMessage(m, rewrite));
  return next === null ? null : { ...body, messages: next };
}

/** A copy of `list` with the items `each` changed, or null when it changed none. */
function rewriteList<T>(list: readonly T[], each: (item: T) => T | null): T[] | null {
  let out: T[] | null = null;
  for (let i = 0; i < list.length; i++) {
    const next = each(list[i]!);
    if (next === null) continue;
    out ??= list.slice();
    out[i] = next;
  }
  return out;
}

type Message = {
  content?: unknown;
  tool_calls?: unknown;
};

function rewriteMessage(message: unknown, rewrite: TextRewrite): unknown | null {
  if (message === null || typeof message !== 'object') return null;
  const m = message as Message;
  let content: unknown = null;
  if (typeof m.content === 'string') content = rewrite(m.content);
  else if (Array.isArray(m.content))
    content = rewriteList(m.content as unknown[], (part) => {
      const p = part as { type?: unknown; text?: unknown } | null;
      if (p?.type !== 'text' || typeof p.text !== 'string') return null;
      const text = rewrite(p.text);
      return text === null ? null : { ...p, text };
    });
  const calls = Array.isArray(m.tool_calls)
    ? rewriteList(m.tool_calls as unknown[], (call) => {
        const fn = (call as { function?: { arguments?: unknown } } | null)?.function;
        if (!fn || typeof fn.arguments !== 'string') return null;
        const args = rewrite(fn.arguments);
        return args === null ? null : { ...(call as object), function: { ...fn, arguments: args } };
      })
    : null;
  if (content === null && calls === null) return null;
  const out: Record<string, unknown> = { ...m };
  if (content !== null) out.content = content;
  if (calls !== null) out.tool_calls = calls;
  return out;
}
