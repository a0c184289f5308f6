import type { RoutableDeployment, RoutableProduct } from '../catalog/catalog-snapshot.ts';
import type { JsonObject } from '../providers/adapter.ts';

/**
 * OpenTelemetry GenAI semantic conventions (gen-ai-spans.md, "Inference" and "Embeddings") as the
 * hub fills them; the names are the spec's, values what our wire format and catalog know.
 */

/** The attribute value types OTLP carries (a subset of `@opentelemetry/api`'s, without importing it). */
export type AttributeValue = string | number | boolean | string[];

/** Where attributes go: a span (no intermediate object, no closure per call). */
export interface AttributeSink {
  setAttribute(key: string, value: AttributeValue): unknown;
}

/**
 * API hosts of providers the conventions name, for OpenAI-compatible deployments that are the provider
 * itself (or its documented OpenAI-compatible endpoint).
 */
const WELL_KNOWN_HOSTS: Readonly<Record<string, string>> = {
  'api.openai.com': 'openai',
  'api.deepseek.com': 'deepseek',
  'api.groq.com': 'groq',
  'api.mistral.ai': 'mistral_ai',
  'api.x.ai': 'x_ai',
  'api.perplexity.ai': 'perplexity',
  'api.moonshot.ai': 'moonshot_ai',
  'api.anthropic.com': 'anthropic',
  'generativelanguage.googleapis.com': 'gcp.gemini',
};

/** `LG AI Research` → `lg_ai_research`; Hangul and other letters stay (`네이버 클라우드` → `네이버_클라우드`). */
function providerSlug(name: string): string {
  return name
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}.]+/gu, '_')
    .replace(/^_+|_+$/g, '');
}

/**
 * `gen_ai.provider.name` for a deployment (decision 0009): a provider the conventions name when the
 * host is its API; otherwise the supplier's name for OpenAI-compatible deployments (suppliers are few,
 * so the value stays low-cardinality), `naver.clova_studio` for CLOVA Studio and `llama.cpp` for models
 * run in-process. An unknown adapter gives its own name.
 */
export function providerNameOf(deployment: RoutableDeployment, product: RoutableProduct): string {
  switch (deployment.adapter) {
    case 'clova-studio':
      return 'naver.clova_studio';
    case 'local':
      return 'llama.cpp';
    case 'openai-compatible': {
      const host = hostOf(deployment.baseUrl);
      if (host !== null) {
        const known = WELL_KNOWN_HOSTS[host.address];
        if (known !== undefined) return known;
        if (host.address.endsWith('.openai.azure.com')) return 'azure.ai.openai';
      }
      return providerSlug(product.supplierName) || 'openai';
    }
    default:
      return deployment.adapter;
  }
}

/** `server.address` and `server.port` of an upstream base URL; null when it has no network address. */
export function hostOf(baseUrl: string): { address: string; port: number } | null {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    return null;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
  const address = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return { address, port: url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port) };
}

function finite(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/**
 * The request parameters the conventions record, read from the client's body (already validated by
 * the HTTP layer; anything of an unexpected type is left out), written straight into the span.
 */
export function setRequestAttributes(
  operation: 'chat' | 'embeddings',
  body: JsonObject,
  span: AttributeSink,
): void {
  if (operation === 'embeddings') {
    if (typeof body.encoding_format === 'string')
      span.setAttribute('gen_ai.request.encoding_formats', [body.encoding_format]);
    if (finite(body.dimensions)) span.setAttribute('gen_ai.embeddings.dimension.count', body.dimensions);
    return;
  }
  const maxTokens = finite(body.max_completion_tokens) ? body.max_completion_tokens : body.max_tokens;
  if (finite(maxTokens)) span.setAttribute('gen_ai.request.max_tokens', maxTokens);
  if (finite(body.temperature)) span.setAttribute('gen_ai.request.temperature', body.temperature);
  if (finite(body.top_p)) span.setAttribute('gen_ai.request.top_p', body.top_p);
  if (finite(body.frequency_penalty))
    span.setAttribute('gen_ai.request.frequency_penalty', body.frequency_penalty);
  if (finite(body.presence_penalty))
    span.setAttribute('gen_ai.request.presence_penalty', body.presence_penalty);
  if (finite(body.seed)) span.setAttribute('gen_ai.request.seed', body.seed);
  if (finite(body.n) && body.n !== 1) span.setAttribute('gen_ai.request.choice.count', body.n);
  const stop = body.stop;
  if (typeof stop === 'string') span.setAttribute('gen_ai.request.stop_sequences', [stop]);
  else if (Array.isArray(stop) && stop.every((s) => typeof s === 'string')) {
    span.setAttribute('gen_ai.request.stop_sequences', stop as string[]);
  }
  const format = (body.response_format as { type?: unknown } | undefined)?.type;
  if (format === 'json_object' || format === 'json_schema') span.setAttribute('gen_ai.output.type', 'json');
  else if (format === 'text') span.setAttribute('gen_ai.output.type', 'text');
}
