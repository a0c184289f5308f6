import type { CallError } from '../calls/errors.ts';
import { PII_LABELS, PII_TYPES, type PiiType } from './pii/types.ts';

/**
 * The answer to a request a `block` policy stops: 400 naming the types found (in the type names of
 * the API and in Korean), never the values.
 */
export function piiRefused(types: readonly PiiType[]): CallError {
  const ordered = PII_TYPES.filter((t) => types.includes(t));
  return {
    status: 400,
    type: 'invalid_request_error',
    param: 'messages',
    code: 'pii_blocked',
    message:
      `요청에 개인정보(${ordered.map((t) => PII_LABELS[t]).join(', ')})가 있어 조직의 데이터 정책에 따라 보내지 않았습니다. / ` +
      `The request contains personal data (${ordered.join(', ')}); your organisation's data policy blocks it, so it was not sent.`,
  };
}
