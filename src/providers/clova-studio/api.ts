import { randomUUID } from 'node:crypto';
import type { UpstreamTarget } from '../adapter.ts';
import { type Endpoint, endpoint } from '../http.ts';

/**
 * Where and how CLOVA Studio is called. The deployment's `baseUrl` is the host
 * (`https://clovastudio.stream.ntruss.com`, optionally with the `/testapp` or `/serviceapp` prefix
 * older keys use); `upstreamModel` the CLOVA model name (`HCX-005`, `HCX-DASH-002`, `HCX-007`), or for
 * embeddings the embedding path segment (`v2` for bge-m3, `clir-emb-dolphin`, `clir-sts-dolphin`).
 */
export function chatEndpoint(target: UpstreamTarget): Endpoint {
  return endpoint(
    target.baseUrl.replace(/\/+$/, ''),
    `/v3/chat-completions/${encodeURIComponent(target.upstreamModel)}`,
  );
}

export function embeddingEndpoint(target: UpstreamTarget): Endpoint {
  return endpoint(
    target.baseUrl.replace(/\/+$/, ''),
    `/v1/api-tools/embedding/${encodeURIComponent(target.upstreamModel)}`,
  );
}

/** A fresh id per call: sent as `X-NCP-CLOVASTUDIO-REQUEST-ID` and reused in the OpenAI `id`. */
export function newRequestId(): string {
  return randomUUID().replaceAll('-', '');
}

export function clovaHeaders(
  target: UpstreamTarget,
  requestId: string,
  stream: boolean,
): Record<string, string> {
  return {
    ...(target.apiKey && { authorization: `Bearer ${target.apiKey}` }),
    'x-ncp-clovastudio-request-id': requestId,
    // CLOVA chooses JSON or SSE by Accept alone
    accept: stream ? 'text/event-stream' : 'application/json',
  };
}
