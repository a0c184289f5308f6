/**
 * `gen_ai.input.messages` for operators who opt in (KAIHUB_TRACE_CONTENT=true): the chat messages in
 * the GenAI conventions' input-messages JSON schema (role + typed parts), as a JSON string (the spec's
 * form on spans while structured attributes are not supported), bounded in size.
 */

/** Longest text kept of one part; longer text is cut and says how much was cut. */
export const MAX_PART_CHARS = 4096;
/** Parts kept of one message, so that one message alone stays near the budget below. */
export const MAX_PARTS = 8;
/** Budget for the whole attribute; the most recent messages are kept when it runs out. */
export const MAX_MESSAGES_CHARS = 32 * 1024;

type Part = Record<string, unknown> & { type: string };
interface InputMessage {
  role: string;
  parts: Part[];
  name?: string;
}

function cut(text: string): string {
  return text.length <= MAX_PART_CHARS
    ? text
    : `${text.slice(0, MAX_PART_CHARS)}… [${text.length - MAX_PART_CHARS} chars cut]`;
}

function contentPart(part: unknown): Part {
  const p = (part ?? {}) as Record<string, unknown>;
  if (p.type === 'text' && typeof p.text === 'string') return { type: 'text', content: cut(p.text) };
  if (p.type === 'image_url') {
    const url = (p.image_url as { url?: unknown } | undefined)?.url;
    // inline images (data: URLs) would be megabytes of base64: their presence is recorded, not their bytes
    if (typeof url === 'string' && /^https?:/i.test(url))
      return { type: 'uri', modality: 'image', uri: cut(url) };
    return { type: 'image', omitted: 'inline data' };
  }
  if (p.type === 'input_audio') return { type: 'audio', omitted: 'inline data' };
  return { type: typeof p.type === 'string' ? p.type : 'unknown' };
}

function textParts(content: unknown): Part[] {
  if (typeof content === 'string') return [{ type: 'text', content: cut(content) }];
  if (Array.isArray(content)) return content.map(contentPart);
  return [];
}

function parsedArguments(raw: unknown): unknown {
  if (raw === undefined || raw === null) return null;
  if (typeof raw !== 'string') return parsedArguments(JSON.stringify(raw));
  try {
    return JSON.parse(cut(raw));
  } catch {
    return cut(raw);
  }
}

function inputMessage(message: unknown): InputMessage {
  const m = (message ?? {}) as Record<string, unknown>;
  const role = typeof m.role === 'string' ? m.role : 'user';
  const parts =
    role === 'tool'
      ? [
          {
            type: 'tool_call_response',
            id: typeof m.tool_call_id === 'string' ? m.tool_call_id : null,
            response:
              typeof m.content === 'string' ? cut(m.content) : textParts(m.content).slice(0, MAX_PARTS),
          },
        ]
      : textParts(m.content);
  if (Array.isArray(m.tool_calls)) {
    for (const call of m.tool_calls as Record<string, unknown>[]) {
      const fn = (call?.function ?? {}) as Record<string, unknown>;
      parts.push({
        type: 'tool_call',
        id: typeof call?.id === 'string' ? call.id : null,
        name: typeof fn.name === 'string' ? fn.name : '',
        arguments: parsedArguments(fn.arguments),
      });
    }
  }
  if (parts.length > MAX_PARTS) {
    const omitted = parts.length - (MAX_PARTS - 1);
    parts.length = MAX_PARTS - 1;
    parts.push({ type: 'omitted', parts: omitted });
  }
  const out: InputMessage = { role, parts };
  if (typeof m.name === 'string') out.name = m.name;
  return out;
}

/**
 * The client's `messages` as the attribute's JSON, or null when there are none. When the whole does
 * not fit in MAX_MESSAGES_CHARS, the earliest messages are left out (the latest turn matters most) and
 * `leftOut` says how many. One message alone is at most MAX_PARTS parts of MAX_PART_CHARS each.
 */
export function inputMessagesJson(messages: unknown): { json: string; leftOut: number } | null {
  if (!Array.isArray(messages) || messages.length === 0) return null;
  const kept: string[] = [];
  let size = 2;
  for (let i = messages.length - 1; i >= 0; i--) {
    const json = JSON.stringify(inputMessage(messages[i]));
    if (size + json.length + 1 > MAX_MESSAGES_CHARS && kept.length > 0) break;
    kept.push(json);
    size += json.length + 1;
  }
  kept.reverse();
  return { json: `[${kept.join(',')}]`, leftOut: messages.length - kept.length };
}
