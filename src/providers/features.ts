import type { JsonObject } from './adapter.ts';

/**
 * What a chat request needs from the deployment that serves it, as bits. A plain text chat needs
 * nothing (0), so the common request costs one scan of its messages and no routing work. An adapter
 * declares the bits it can express for a target (`ProviderAdapter.features`); the router only sends a
 * request to a deployment whose bits cover the request's.
 */
export const Feature = {
  /** `n` > 1: several choices in one answer. */
  multipleChoices: 1 << 0,
  /** `tools` (or the older `functions`). */
  tools: 1 << 1,
  /** `response_format: {type: 'json_object'}`. */
  jsonObject: 1 << 2,
  /** `response_format: {type: 'json_schema'}`. */
  jsonSchema: 1 << 3,
  /** `image_url` content parts. */
  vision: 1 << 4,
  /** `input_audio` content parts. */
  audioInput: 1 << 5,
  /** `logprobs: true` or `top_logprobs`. */
  logprobs: 1 << 6,
} as const;

export type FeatureName = keyof typeof Feature;

/**
 * Where a deployment runs, carried in the same bits as its features (the catalog snapshot sets them):
 * a data policy that keeps an organisation's data at home adds these to what its calls need, so the
 * router's one check leaves out deployments abroad — and fallbacks, routed by the same check, never
 * cross the line (guardrails/data-policies.ts).
 */
export const Placement = {
  /** Runs in Korea. */
  domestic: 1 << 16,
  /** The operator has seen its CSAP certificate. */
  certified: 1 << 17,
} as const;

/** The placement bits of a deployment running in `residency` (`domestic` or `foreign`). */
export function placementBits(residency: string, certified: boolean): number {
  return (residency === 'domestic' ? Placement.domestic : 0) | (certified ? Placement.certified : 0);
}

/** Every feature an adapter passing OpenAI's protocol through can express. */
export const ALL_FEATURES = Object.values(Feature).reduce((all, bit) => all | bit, 0);

/** The request field that asks for each feature, and how a client reads it (Korean, English). */
export const FEATURE_INFO: Readonly<Record<FeatureName, { param: string; ko: string; en: string }>> = {
  multipleChoices: { param: 'n', ko: "여러 개의 답('n' > 1)", en: "several choices ('n' > 1)" },
  tools: { param: 'tools', ko: '도구 호출', en: 'tool calling' },
  jsonObject: { param: 'response_format', ko: 'JSON 객체 응답 형식', en: 'JSON object responses' },
  jsonSchema: { param: 'response_format', ko: 'JSON 스키마 응답 형식', en: 'JSON schema responses' },
  vision: { param: 'messages', ko: '이미지 입력', en: 'image input' },
  audioInput: { param: 'messages', ko: '오디오 입력', en: 'audio input' },
  logprobs: { param: 'logprobs', ko: '로그 확률', en: 'log probabilities' },
};

/** The bits a chat request needs; 0 for plain text. */
export function chatRequestFeatures(body: JsonObject): number {
  let needs = 0;
  const n = body.n;
  if (typeof n === 'number' && n > 1) needs |= Feature.multipleChoices;
  if (
    (Array.isArray(body.tools) && body.tools.length > 0) ||
    (Array.isArray(body.functions) && body.functions.length > 0)
  )
    needs |= Feature.tools;
  const format = body.response_format as { type?: unknown } | null | undefined;
  if (format && typeof format === 'object') {
    if (format.type === 'json_object') needs |= Feature.jsonObject;
    else if (format.type === 'json_schema') needs |= Feature.jsonSchema;
  }
  if (body.logprobs === true || (typeof body.top_logprobs === 'number' && body.top_logprobs > 0))
    needs |= Feature.logprobs;
  const messages = body.messages;
  if (Array.isArray(messages)) {
    for (const m of messages) {
      const content = (m as { content?: unknown } | null)?.content;
      if (!Array.isArray(content)) continue;
      for (const part of content) {
        const type = (part as { type?: unknown } | null)?.type;
        if (type === 'image_url') needs |= Feature.vision;
        else if (type === 'input_audio') needs |= Feature.audioInput;
      }
    }
  }
  return needs;
}

/** The names of the features in `bits`, in declaration order. */
export function featureNames(bits: number): FeatureName[] {
  return (Object.keys(Feature) as FeatureName[]).filter((name) => (bits & Feature[name]) !== 0);
}
