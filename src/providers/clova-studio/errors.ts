import { UpstreamError } from '../adapter.ts';

/**
 * CLOVA Studio's envelope: `{status: {code, message}, result}`. `code` is a five-digit string whose
 * first three digits are the HTTP status (`20000` OK, `40001` invalid parameter, `42901` too many
 * requests, `50000` internal error…).
 */
export interface ClovaStatus {
  code: string;
  message: string;
}

export const CLOVA_OK = '20000';

/** The `status` object of a parsed CLOVA answer or error event; null when there is none. */
export function readClovaStatus(parsed: unknown): ClovaStatus | null {
  if (!parsed || typeof parsed !== 'object') return null;
  const status = (parsed as { status?: unknown }).status;
  if (!status || typeof status !== 'object') return null;
  const s = status as { code?: unknown; message?: unknown };
  const code = typeof s.code === 'string' || typeof s.code === 'number' ? String(s.code) : '';
  if (code === '') return null;
  return { code, message: typeof s.message === 'string' ? s.message : `CLOVA Studio status ${code}` };
}

/** For `postJson`'s `readError`: the upstream's own message, and CLOVA's code as `code`. */
export function readClovaError(parsed: unknown): { message: string; code: string; type: string } | null {
  const status = readClovaStatus(parsed);
  if (!status) return null;
  return { message: status.message, code: `clova_${status.code}`, type: typeOf(httpStatusOf(status, 502)) };
}

/** The HTTP status a CLOVA code stands for (`42901` → 429), else `fallback`. */
export function httpStatusOf(status: ClovaStatus, fallback: number): number {
  const n = Number(status.code.slice(0, 3));
  return /^\d{5}$/.test(status.code) && n >= 400 && n <= 599 ? n : fallback;
}

function typeOf(status: number): string {
  if (status === 429) return 'rate_limit_error';
  return status >= 500 ? 'upstream_error' : 'invalid_request_error';
}

/**
 * A CLOVA error that did not come as an error status: a 200 answer whose envelope is not `20000`, or
 * an `event: error` in the middle of a stream (reported as 502 unless its code says otherwise).
 */
export function clovaStatusError(status: ClovaStatus, fallbackStatus: number): UpstreamError {
  const http = httpStatusOf(status, fallbackStatus);
  return new UpstreamError('http', status.message, {
    status: http,
    type: typeOf(http),
    code: `clova_${status.code}`,
  });
}

/** An OpenAI request the protocol cannot express: refused as the client's mistake (400). */
export function unsupported(message: string, param: string): UpstreamError {
  return new UpstreamError('http', message, {
    status: 400,
    type: 'invalid_request_error',
    code: 'unsupported_parameter',
    param,
  });
}
