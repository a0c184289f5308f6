import type { UpstreamError } from '../providers/adapter.ts';
import { FEATURE_INFO, featureNames, Placement } from '../providers/features.ts';
import { DEPLOYMENTS_COOLING_DOWN } from '../routing/router.ts';
import { isStorageBusy } from '../storage/busy.ts';

/**
 * How a call failed, as the client will read it: OpenAI's error object (`{error: {message, type,
 * param, code}}`) plus its HTTP status and headers. The call layer returns these as values; `/v1`
 * writes them as they are and in-process callers (evaluation, `auto`) read them. Messages: Korean
 * first, English second. Supplier internals (addresses, raw upstream text of server errors) never
 * appear here: they go to the log with the request id.
 */
export interface CallError {
  status: number;
  message: string;
  type: string;
  param?: string | null;
  code?: string | null;
  headers?: Record<string, string>;
}

/** A streamed answer broke off after its first chunk: the consumer writes `error` as the last event. */
export class CallStreamError extends Error {
  override name = 'CallStreamError';
  constructor(readonly error: CallError) {
    super(error.message);
  }
}

export const invalidRequest = (
  message: string,
  param: string | null = null,
  code: string | null = null,
): CallError => ({ status: 400, type: 'invalid_request_error', message, param, code });

export const modelNotFound = (model: string): CallError => ({
  status: 404,
  type: 'invalid_request_error',
  param: 'model',
  code: 'model_not_found',
  message: `모델 '${model}'이(가) 없거나 이 키로 사용할 수 없습니다. / The model '${model}' does not exist or you do not have access to it.`,
});

/** A 500 that names its request, where there is one (the server's last resort has none). */
export const internalError = (requestId?: string): CallError => ({
  status: 500,
  type: 'server_error',
  code: 'internal_error',
  message:
    requestId === undefined
      ? '내부 오류입니다. / Internal server error.'
      : `내부 오류입니다 (요청 ID ${requestId}). / Internal server error (request ${requestId}).`,
});

/**
 * The database did not give the call a lock in time (storage/busy.ts `isStorageBusy`): nothing was
 * applied or charged, and the same request can be sent again — a 503 that says when, not a 500.
 */
export const storageBusy = (): CallError => ({
  status: 503,
  type: 'server_error',
  code: 'storage_busy',
  message: '저장소가 잠시 바쁩니다. 잠시 후 다시 시도하세요. / Storage is busy; retry shortly.',
  headers: { 'retry-after': '1' },
});

/**
 * What a client is told of an error nothing else answered: a lock the database did not give in time is
 * a 503 to send again (the transaction never began; callers that may have committed before it answer a
 * 500 themselves, as the admin router does), anything else a 500.
 */
export function unexpectedFailure(error: unknown, requestId?: string): CallError {
  return isStorageBusy(error) ? storageBusy() : internalError(requestId);
}

/** No deployment of the product can express what the request asks for (`needs` bits it lacks). */
export function unsupportedFeatures(model: string, missing: number): CallError {
  const names = featureNames(missing);
  const info = names.map((n) => FEATURE_INFO[n]);
  return {
    status: 400,
    type: 'invalid_request_error',
    code: 'unsupported_parameter',
    param: info[0]?.param ?? null,
    message:
      `모델 '${model}'은(는) ${info.map((i) => i.ko).join(', ')}을(를) 지원하지 않습니다. / ` +
      `The model '${model}' does not support ${info.map((i) => i.en).join(', ')}.`,
  };
}

/**
 * The caller's data policy keeps its data on domestic (and perhaps CSAP-certified) deployments, and the
 * model it asked for has none (`placement`: the providers/features.ts Placement bits required).
 */
export function residencyRestricted(model: string, placement: number): CallError {
  const certified = (placement & Placement.certified) !== 0;
  const where = certified ? 'CSAP 인증을 받은 국내 배포' : '국내 배포';
  const whereEn = certified ? 'domestic, CSAP-certified deployments' : 'domestic deployments';
  return {
    status: 403,
    type: 'invalid_request_error',
    param: 'model',
    code: 'residency_restricted',
    message:
      `조직의 데이터 정책은 ${where}만 허용합니다. 모델 '${model}'에는 그런 배포가 없어 요청을 보내지 않았습니다. / ` +
      `Your organisation's data policy allows only ${whereEn}; the model '${model}' has none, so the request was not sent.`,
  };
}

/** This organisation has as many calls open on this replica as it may. */
export const tooManyConcurrentCalls = (limit: number): CallError => ({
  status: 429,
  type: 'rate_limit_error',
  code: 'concurrency_limit_exceeded',
  message: `동시에 처리 중인 요청이 조직 한도(${limit})에 이르렀습니다. 진행 중인 요청이 끝난 뒤 다시 시도하세요. / Your organisation has ${limit} requests in progress, its limit; retry when one has finished.`,
  headers: { 'retry-after': '1' },
});

/** Every deployment that could serve was full for the whole queueing deadline. */
export const capacityExhausted = (model: string, waitedMs: number): CallError => ({
  status: 503,
  type: 'server_error',
  code: 'upstream_capacity_exhausted',
  message: `모델 '${model}'의 공급 용량이 가득 찼습니다 (${Math.round(waitedMs)} ms 대기). 잠시 후 다시 시도하세요. / Every deployment of '${model}' is at its concurrency limit (waited ${Math.round(waitedMs)} ms); retry shortly.`,
  headers: { 'retry-after': '1' },
});

/** HTTP statuses of an upstream's answer that are the client's own mistake, caught by the upstream. */
const CLIENT_MISTAKES = new Set([400, 404, 409, 413, 422]);

/**
 * What the client may read of an upstream's own error message (only for the client's mistakes, which
 * the client needs to correct): URLs, addresses and the supplier's internal model name are taken out.
 */
export function scrubUpstreamMessage(message: string, upstreamModel: string, model: string): string {
  let text = message.slice(0, 1000);
  if (upstreamModel && upstreamModel !== model) text = text.split(upstreamModel).join(model);
  return text
    .replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s'"<>)]+/gi, '[url]')
    .replace(/\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b/g, '[address]')
    .replace(/\[[0-9a-f:]+\](?::\d+)?/gi, '[address]');
}

/**
 * An upstream failure before anything reached the client, as the client reads it. The client's own
 * mistakes the upstream caught (400, 404, 409, 413, 422) keep their status and a scrubbed message;
 * throttling stays 429; time-outs are 504; everything else is 502 with no upstream text at all.
 */
export function fromUpstreamError(
  error: UpstreamError,
  requestId: string,
  model: string,
  upstreamModel: string,
): CallError {
  const status = error.details.status;
  const ref = ` (요청 ID / request ${requestId})`;
  if (error.details.code === DEPLOYMENTS_COOLING_DOWN) {
    return {
      status: 503,
      type: 'upstream_error',
      code: 'model_unavailable',
      message: `모델 '${model}'의 모든 배포가 반복된 실패로 잠시 제외되어 있습니다. 잠시 후 다시 시도하세요. / Every deployment of '${model}' is cooling down after repeated failures; retry shortly.${ref}`,
      headers: { 'retry-after': '5' },
    };
  }
  if (error.kind === 'timeout') {
    return {
      status: 504,
      type: 'upstream_error',
      code: 'upstream_timeout',
      message: `공급기업 모델 서버가 제때 응답하지 않았습니다. / The model upstream did not answer in time.${ref}`,
    };
  }
  if (error.kind === 'http' && status !== undefined) {
    if (CLIENT_MISTAKES.has(status)) {
      return {
        status,
        type: error.details.type ?? 'invalid_request_error',
        param: error.details.param ?? null,
        code: error.details.code ?? null,
        message: scrubUpstreamMessage(error.message, upstreamModel, model),
      };
    }
    if (status === 429) {
      return {
        status: 429,
        type: 'rate_limit_error',
        code: 'upstream_rate_limited',
        message: `공급기업 모델 서버의 요청 한도를 넘었습니다. 잠시 후 다시 시도하세요. / The model upstream is rate limiting; retry later.${ref}`,
        ...(error.details.retryAfter && { headers: { 'retry-after': error.details.retryAfter } }),
      };
    }
    return {
      status: 502,
      type: 'upstream_error',
      code: 'upstream_error',
      message: `공급기업 모델 서버가 오류로 응답했습니다 (HTTP ${status}). / The model upstream failed (HTTP ${status}).${ref}`,
    };
  }
  if (error.kind === 'connect') {
    return {
      status: 502,
      type: 'upstream_error',
      code: 'upstream_unreachable',
      message: `공급기업 모델 서버에 연결하지 못했습니다. / The model upstream could not be reached.${ref}`,
    };
  }
  return {
    status: 502,
    type: 'upstream_error',
    code: 'upstream_error',
    message: `공급기업 모델 서버의 응답이 올바르지 않습니다. / The model upstream answered something the hub could not read.${ref}`,
  };
}
