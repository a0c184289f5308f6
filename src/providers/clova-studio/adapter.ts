import type { Dispatcher } from 'undici';
import {
  type AdapterParams,
  type CallOptions,
  type ChatStreamPart,
  type CompletedCall,
  type JsonObject,
  type ProviderAdapter,
  UpstreamError,
  type UpstreamTarget,
} from '../adapter.ts';
import { Feature } from '../features.ts';
import { DEFAULT_UPSTREAM_LIMITS, poolFor, postJson, readJson, type UpstreamLimits } from '../http.ts';
import { chatEndpoint, clovaHeaders, newRequestId } from './api.ts';
import { readClovaResult, readClovaUsage, toChatCompletion } from './chat.ts';
import { clovaEmbeddings } from './embeddings.ts';
import { CLOVA_OK, clovaStatusError, readClovaError, readClovaStatus } from './errors.ts';
import { CLOVA_PARAMS, toClovaChatRequest } from './params.ts';
import { readClovaStream } from './stream.ts';

/** "Structured Outputs are only available on the HCX-007 model" (Chat Completions v3, structured outputs). */
const STRUCTURED_OUTPUT_MODEL = /^HCX-007/i;
/** "Image input is only available in HCX-005, the HyperCLOVA X vision model" (Chat Completions v3). */
const VISION_MODEL = /^HCX-005/i;

/**
 * NAVER Cloud CLOVA Studio, HyperCLOVA X models, over its own Chat Completions v3 protocol
 * (camelCase fields, a `{status, result}` envelope, SSE with named events). See README.md beside this
 * file for the protocol as documented and the choices made where the documentation is silent.
 */
export class ClovaStudioAdapter implements ProviderAdapter {
  readonly name = 'clova-studio';
  readonly params: AdapterParams = CLOVA_PARAMS;

  constructor(
    private readonly dispatcher: Dispatcher,
    private readonly limits: UpstreamLimits = DEFAULT_UPSTREAM_LIMITS,
    /** For targets a supplier admin set (`publicOnly`): the pool that checks addresses. */
    private readonly supplierDispatcher?: Dispatcher,
  ) {}

  /**
   * What Chat Completions v3 documents (README.md): function calling on every model; a JSON schema
   * (`responseFormat`) only on HCX-007, images only on the vision model HCX-005; no schema-less JSON
   * object, one choice only, no log probabilities, no audio.
   */
  features(target: UpstreamTarget): number {
    const model = target.upstreamModel;
    let bits = Feature.tools;
    if (STRUCTURED_OUTPUT_MODEL.test(model)) bits |= Feature.jsonSchema;
    if (VISION_MODEL.test(model)) bits |= Feature.vision;
    return bits;
  }

  /** One chat call with a fresh CLOVA request id; `stream` only changes what the call `Accept`s. */
  private async postChat(target: UpstreamTarget, request: JsonObject, options: CallOptions, stream: boolean) {
    const requestId = newRequestId();
    const response = await postJson(
      {
        url: chatEndpoint(target),
        headers: clovaHeaders(target, requestId, stream),
        body: JSON.stringify(toClovaChatRequest(request, target.upstreamModel)),
        options,
        readError: readClovaError,
        streamed: stream,
      },
      poolFor(target, this.dispatcher, this.supplierDispatcher),
    );
    return { requestId, response };
  }

  async chat(target: UpstreamTarget, request: JsonObject, options: CallOptions): Promise<CompletedCall> {
    const { requestId, response } = await this.postChat(target, request, options, false);
    const body = await readJson(response, options.signal, this.limits.maxBodyBytes);
    const status = readClovaStatus(body);
    if (status && status.code !== CLOVA_OK) throw clovaStatusError(status, 502);
    const result = readClovaResult(body.result);
    const usage = readClovaUsage(result.usage);
    return { body: toChatCompletion(requestId, target.upstreamModel, result, usage), usage };
  }

  async chatStream(
    target: UpstreamTarget,
    request: JsonObject,
    options: CallOptions,
  ): Promise<AsyncIterable<ChatStreamPart>> {
    const { requestId, response } = await this.postChat(target, request, options, true);
    const contentType = String(response.headers['content-type'] ?? '');
    if (!contentType.includes('text/event-stream')) {
      // an envelope with an error status on a 200 is still CLOVA telling us what went wrong
      const body = await readJson(response, options.signal, this.limits.maxBodyBytes).catch(() => null);
      const status = readClovaStatus(body);
      if (status && status.code !== CLOVA_OK) throw clovaStatusError(status, 502);
      throw new UpstreamError(
        'protocol',
        `CLOVA Studio answered ${contentType || 'no content type'} to a stream request`,
      );
    }
    return readClovaStream(response.body, options.signal, requestId, target.upstreamModel, this.limits);
  }

  embeddings(target: UpstreamTarget, request: JsonObject, options: CallOptions): Promise<CompletedCall> {
    return clovaEmbeddings(
      poolFor(target, this.dispatcher, this.supplierDispatcher),
      target,
      request,
      options,
      this.limits,
    );
  }
}
