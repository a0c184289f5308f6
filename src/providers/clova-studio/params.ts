import type { AdapterParams, JsonObject } from '../adapter.ts';
import { unsupported } from './errors.ts';

/**
 * OpenAI chat request → CLOVA Studio Chat Completions v3 body, as a declarative map: each entry names
 * the OpenAI field, the CLOVA field it becomes, and how its value is carried over. The map is the
 * documentation of the translation; fields not named here are dropped (see README.md).
 */
interface ParamRule {
  /** The CLOVA field, or a function choosing it from the upstream model (max tokens). */
  to: string | ((model: string) => string);
  /** Converts the value; `undefined` drops it. Throws an `UpstreamError` to refuse the request. */
  transform?: (value: unknown, request: JsonObject) => unknown;
}

/** Reasoning models take `maxCompletionTokens` (which counts the reasoning too) instead of `maxTokens`. */
const REASONING_MODEL = /^HCX-007/i;
const maxTokensField = (model: string) => (REASONING_MODEL.test(model) ? 'maxCompletionTokens' : 'maxTokens');

const number = (v: unknown) => (typeof v === 'number' ? v : undefined);
const integer = (v: unknown) => (typeof v === 'number' && Number.isInteger(v) ? v : undefined);

export const CHAT_PARAMS: Readonly<Record<string, ParamRule>> = {
  messages: { to: 'messages', transform: (v) => (Array.isArray(v) ? v.map(toClovaMessage) : v) },
  temperature: { to: 'temperature', transform: number },
  top_p: { to: 'topP', transform: number },
  // OpenAI has no top_k or repetition_penalty; these are the names vLLM accepts for the same knobs.
  top_k: { to: 'topK', transform: integer },
  repetition_penalty: { to: 'repetitionPenalty', transform: number },
  // max_completion_tokens wins over the deprecated max_tokens, as in OpenAI; CLOVA refuses both at once.
  max_tokens: {
    to: maxTokensField,
    transform: (v, r) => (r.max_completion_tokens == null ? integer(v) : undefined),
  },
  max_completion_tokens: { to: maxTokensField, transform: integer },
  stop: {
    to: 'stop',
    transform: (v) => (typeof v === 'string' ? [v] : Array.isArray(v) ? v : undefined),
  },
  seed: { to: 'seed', transform: integer },
  tools: { to: 'tools', transform: (v) => (Array.isArray(v) && v.length > 0 ? v : undefined) },
  tool_choice: { to: 'toolChoice' },
  reasoning_effort: {
    to: 'thinking',
    // OpenAI: minimal | low | medium | high; CLOVA: none | low | medium | high
    transform: (v) => (typeof v === 'string' ? { effort: v === 'minimal' ? 'none' : v } : undefined),
  },
  response_format: { to: 'responseFormat', transform: toClovaResponseFormat },
  n: {
    to: 'n',
    // never sent: CLOVA has no `n`; 1 is dropped and more is refused
    transform: (v) => {
      if (v == null || v === 1) return undefined;
      throw unsupported(
        "CLOVA Studio는 'n' > 1을 지원하지 않습니다. / CLOVA Studio cannot return more than one choice ('n' must be 1).",
        'n',
      );
    },
  },
};

/**
 * The OpenAI fields this adapter reads: the map's keys, and the three the hub and the adapter read
 * around it (`model` names the product, `stream` picks the `Accept` header, `stream_options` asks the
 * hub for the usage chunk). Embeddings take text, and base64 is encoded by the adapter.
 */
export const CLOVA_PARAMS: AdapterParams = {
  chat: new Set([...Object.keys(CHAT_PARAMS), 'model', 'stream', 'stream_options']),
  embeddings: new Set(['input', 'model', 'encoding_format']),
};

/** Translates an OpenAI chat request for `model`; `stream` and the OpenAI-only fields are dropped. */
export function toClovaChatRequest(request: JsonObject, model: string): JsonObject {
  const body: JsonObject = {};
  for (const [field, rule] of Object.entries(CHAT_PARAMS)) {
    const value = request[field];
    if (value === undefined || value === null) continue;
    const converted = rule.transform ? rule.transform(value, request) : value;
    if (converted === undefined) continue;
    body[typeof rule.to === 'string' ? rule.to : rule.to(model)] = converted;
  }
  return body;
}

function toClovaResponseFormat(v: unknown): unknown {
  if (!v || typeof v !== 'object') return undefined;
  const f = v as { type?: unknown; json_schema?: { schema?: unknown } };
  if (f.type === 'json_schema' && f.json_schema?.schema)
    return { type: 'json', schema: f.json_schema.schema };
  // 'text' is CLOVA's default; 'json_object' has no schema-less counterpart in CLOVA.
  return undefined;
}

/** One OpenAI message → CLOVA: same roles (developer → system), camelCase tool fields, image parts. */
function toClovaMessage(m: unknown): unknown {
  if (!m || typeof m !== 'object') return m;
  const msg = m as JsonObject;
  const out: JsonObject = {
    role: msg.role === 'developer' ? 'system' : msg.role,
    content: toClovaContent(msg.content),
  };
  if (typeof msg.tool_call_id === 'string') out.toolCallId = msg.tool_call_id;
  if (Array.isArray(msg.tool_calls)) {
    out.toolCalls = msg.tool_calls;
    if (out.content === null || out.content === undefined) out.content = '';
  }
  return out;
}

function toClovaContent(content: unknown): unknown {
  if (!Array.isArray(content)) return content ?? '';
  return content.map((part) => {
    const p = part as { type?: unknown; text?: unknown; image_url?: { url?: unknown } };
    if (p?.type !== 'image_url') return part;
    const url = typeof p.image_url?.url === 'string' ? p.image_url.url : '';
    const data = /^data:[^;,]+;base64,(.*)$/s.exec(url);
    return data
      ? { type: 'image_url', dataUri: { data: data[1] } }
      : { type: 'image_url', imageUrl: { url } };
  });
}
