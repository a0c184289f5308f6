import type { ServerResponse } from 'node:http';
import type { CallError } from '../calls/errors.ts';

/** Sends a JSON body with its length, so keep-alive clients never wait for a close. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body, (_key, value) => (typeof value === 'bigint' ? value.toString() : value));
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** The message of a 500 on every surface: nothing about the cause reaches the client (it is logged). */
const INTERNAL_ERROR_MESSAGE = '내부 오류입니다. / Internal server error.';

/** A 500 without a request id (the server's last resort; the call layer's own names its request). */
export const INTERNAL_FAILURE: CallError = {
  status: 500,
  type: 'server_error',
  code: 'internal_error',
  message: INTERNAL_ERROR_MESSAGE,
};

/** `failure` in the shape of the surface `path` is on: OpenAI's on `/v1`, the admin API's elsewhere. */
export function sendFailure(res: ServerResponse, path: string, failure: CallError): void {
  const body = path.startsWith('/v1/')
    ? {
        error: {
          message: failure.message,
          type: failure.type,
          param: failure.param ?? null,
          code: failure.code ?? null,
        },
      }
    : { error: { code: failure.code ?? 'internal_error', message: failure.message } };
  sendJson(res, failure.status, body, failure.headers);
}
