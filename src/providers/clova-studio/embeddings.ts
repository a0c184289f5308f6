import type { Dispatcher } from 'undici';
import {
  type CallOptions,
  type CompletedCall,
  type JsonObject,
  UpstreamError,
  type UpstreamTarget,
} from '../adapter.ts';
import { postJson, readJson, type UpstreamLimits } from '../http.ts';
import { embeddingList, textInputs } from '../openai-shapes.ts';
import { clovaHeaders, embeddingEndpoint, newRequestId } from './api.ts';
import { CLOVA_OK, clovaStatusError, readClovaError, readClovaStatus, unsupported } from './errors.ts';

/** Calls at once per OpenAI request: CLOVA embeds one text per call. */
const CONCURRENCY = 4;

/**
 * OpenAI embeddings over CLOVA's embedding API (`POST /v1/api-tools/embedding/{v2|model}`,
 * `{text}` → `{result: {embedding, inputTokens}}`): one call per input, answered as one list.
 * Token-array inputs cannot be expressed (CLOVA takes text) and are refused; `dimensions` is dropped.
 */
export async function clovaEmbeddings(
  dispatcher: Dispatcher,
  target: UpstreamTarget,
  request: JsonObject,
  options: CallOptions,
  limits: UpstreamLimits,
): Promise<CompletedCall> {
  const texts = textInputs(request.input);
  if (!texts)
    throw unsupported(
      'CLOVA Studio 임베딩은 텍스트 입력만 받습니다. / CLOVA Studio embeddings take text only, not token arrays.',
      'input',
    );
  const base64 = request.encoding_format === 'base64';
  const vectors: number[][] = new Array(texts.length);
  let promptTokens = 0;
  let next = 0;
  const worker = async () => {
    while (next < texts.length) {
      const i = next++;
      const response = await postJson(
        {
          url: embeddingEndpoint(target),
          headers: clovaHeaders(target, newRequestId(), false),
          body: JSON.stringify({ text: texts[i] }),
          options,
          readError: readClovaError,
        },
        dispatcher,
      );
      const body = await readJson(response, options.signal, limits.maxBodyBytes);
      const status = readClovaStatus(body);
      if (status && status.code !== CLOVA_OK) throw clovaStatusError(status, 502);
      const result = body.result as { embedding?: unknown; inputTokens?: unknown } | undefined;
      if (!Array.isArray(result?.embedding))
        throw new UpstreamError('protocol', 'CLOVA Studio embedding answer has no result.embedding');
      vectors[i] = result.embedding as number[];
      if (typeof result.inputTokens === 'number') promptTokens += result.inputTokens;
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, texts.length) }, worker));
  return {
    body: embeddingList(vectors, target.upstreamModel, promptTokens, base64),
    usage: { promptTokens, completionTokens: 0 },
  };
}
