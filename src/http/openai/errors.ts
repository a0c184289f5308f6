import type { ServerResponse } from 'node:http';
import type { CallError } from '../../calls/errors.ts';
import { sendJson } from '../respond.ts';

/**
 * OpenAI's error object on the wire: `{error: {message, type, param, code}}`. The call layer's errors
 * (src/calls/errors.ts) already have this shape; the ones here are refusals before a call exists.
 * Messages: Korean first, English second.
 */
export type OpenAIError = CallError;

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

export const invalidApiKey = (): OpenAIError => ({
  status: 401,
  type: 'invalid_request_error',
  code: 'invalid_api_key',
  message:
    'API 키가 올바르지 않거나 폐기되었습니다. / Incorrect, revoked or missing API key. Send it as "Authorization: Bearer sk-kai-…".',
});

export const bodyTooLarge = (limitBytes: number): OpenAIError => ({
  status: 413,
  type: 'invalid_request_error',
  code: 'request_too_large',
  message: `요청 본문이 너무 큽니다 (최대 ${limitBytes} 바이트). / Request body too large (limit ${limitBytes} bytes).`,
});
