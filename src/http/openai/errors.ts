import type { ServerResponse } from 'node:http';
import type { UpstreamError } from '../../providers/adapter.ts';
import { sendJson } from '../respond.ts';

/** OpenAI's error object: `{error: {message, type, param, code}}`. Messages: Korean first, English second. */
export interface OpenAIError {
  status: number;
  message: string;
  type: string;
  param?: string | null;
  code?: string | null;
  headers?: Record<string, string>;
}

export function sendOpenAIError(res: ServerResponse, error: OpenAIError, requestId?: string): void {
  if (res.headersSent) return;
  sendJson(
    res,
    error.status,
    {
      error: {
        message: error.message,
        type: error.type,
        param: error.param ?? null,
        code: error.code ?? null,
      },
    },
    { ...(requestId && { 'x-request-id': requestId }), ...error.headers },
  );
}

export const invalidRequest = (
  message: string,
  param: string | null = null,
  code: string | null = null,
): OpenAIError => ({
  status: 400,
  type: 'invalid_request_error',
  message,
  param,
  code,
});

export const invalidApiKey = (): OpenAIError => ({
  status: 401,
  type: 'invalid_request_error',
  code: 'invalid_api_key',
  message:
    'API 키가 올바르지 않거나 폐기되었습니다. / Incorrect, revoked or missing API key. Send it as "Authorization: Bearer sk-kai-…".',
});

export const modelNotFound = (model: string): OpenAIError => ({
  status: 404,
  type: 'invalid_request_error',
  param: 'model',
  code: 'model_not_found',
  message: `모델 '${model}'이(가) 없거나 이 키로 사용할 수 없습니다. / The model '${model}' does not exist or you do not have access to it.`,
});

export const internalError = (): OpenAIError => ({
  status: 500,
  type: 'server_error',
  code: 'internal_error',
  message: '내부 오류입니다. / Internal server error.',
});

export const bodyTooLarge = (limitBytes: number): OpenAIError => ({
  status: 413,
  type: 'invalid_request_error',
  code: 'request_too_large',
  message: `요청 본문이 너무 큽니다 (최대 ${limitBytes} 바이트). / Request body too large (limit ${limitBytes} bytes).`,
});

/**
 * An upstream failure before anything reached the client. The client's own mistakes that the
 * upstream caught (400, 404, 413, 422) keep their status; throttling stays 429; everything else is
 * the hub's or the supplier's problem: 502, or 504 for time-outs. The upstream's message is carried.
 */
export function fromUpstreamError(error: UpstreamError): OpenAIError {
  const status = error.details.status;
  if (error.kind === 'timeout') {
    return {
      status: 504,
      type: 'upstream_error',
      code: 'upstream_timeout',
      message: `공급기업 모델 서버가 제때 응답하지 않았습니다. / The model upstream timed out: ${error.message}`,
    };
  }
  if (error.kind === 'http' && status !== undefined) {
    if ([400, 404, 409, 413, 422].includes(status)) {
      return {
        status,
        type: error.details.type ?? 'invalid_request_error',
        param: error.details.param ?? null,
        code: error.details.code ?? null,
        message: error.message,
      };
    }
    if (status === 429) {
      return {
        status: 429,
        type: 'rate_limit_error',
        code: error.details.code ?? 'rate_limit_exceeded',
        message: `공급기업 모델 서버의 요청 한도를 넘었습니다. / The model upstream is rate limiting: ${error.message}`,
        ...(error.details.retryAfter && { headers: { 'retry-after': error.details.retryAfter } }),
      };
    }
    return {
      status: 502,
      type: 'upstream_error',
      code: 'upstream_error',
      message: `공급기업 모델 서버 오류 (HTTP ${status}). / The model upstream failed (HTTP ${status}): ${error.message}`,
    };
  }
  return {
    status: 502,
    type: 'upstream_error',
    code: error.kind === 'connect' ? 'upstream_unreachable' : 'upstream_error',
    message: `공급기업 모델 서버에 연결하지 못했습니다. / The model upstream failed: ${error.message}`,
  };
}
