import { invalidRequest } from '../../calls/errors.ts';
import { BodyTooLargeError, JsonLimitError, MalformedJsonError } from '../body.ts';
import { bodyTooLarge, type OpenAIError } from './errors.ts';

/**
 * Checks the fields the hub itself relies on, naming the field on failure. Everything else passes
 * through to the upstream, which validates its own parameters and answers in OpenAI's shape.
 */
export type Check = OpenAIError | null;

/**
 * The answer to a body that could not be taken (too large, not JSON, over a JSON limit), naming the
 * problem; undefined for any other error.
 */
export function bodyRefusal(error: unknown): OpenAIError | undefined {
  if (error instanceof BodyTooLargeError) return bodyTooLarge(error.limitBytes);
  if (error instanceof JsonLimitError) {
    const { code, path, maxDepth } = error;
    return code === 'nesting_too_deep'
      ? invalidRequest(
          `요청 JSON의 중첩이 너무 깊습니다: '${path}'에서 ${maxDepth}단계를 넘습니다. / Request JSON nests deeper than ${maxDepth} levels at '${path}'.`,
          path,
          code,
        )
      : invalidRequest(
          `'${path}'의 숫자가 표현할 수 있는 범위를 벗어났습니다. / Invalid number at '${path}': out of range (JSON numbers must be finite, at most ±1.7976931348623157e308).`,
          path,
          code,
        );
  }
  if (error instanceof MalformedJsonError) {
    return invalidRequest(`요청 본문이 올바른 JSON이 아닙니다. / ${error.message}.`, null, 'invalid_json');
  }
  return undefined;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  !!v && typeof v === 'object' && !Array.isArray(v);

function optionalType(
  body: Record<string, unknown>,
  field: string,
  type: 'boolean' | 'string' | 'number',
): Check {
  const v = body[field];
  if (v === undefined || v === null || typeof v === type) return null;
  return invalidRequest(
    `'${field}'의 형식이 잘못되었습니다: ${type}이어야 합니다. / Invalid type for '${field}': expected ${type}.`,
    field,
    'invalid_type',
  );
}

function optionalInteger(body: Record<string, unknown>, field: string, min: number): Check {
  const v = body[field];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
    return invalidRequest(
      `'${field}'은(는) ${min} 이상의 정수여야 합니다. / Invalid '${field}': expected an integer >= ${min}.`,
      field,
      typeof v === 'number' ? 'invalid_value' : 'invalid_type',
    );
  }
  return null;
}

export function checkModel(body: Record<string, unknown>): Check {
  if (body.model === undefined) {
    return invalidRequest(
      "'model' 필드가 필요합니다. / Missing required parameter: 'model'.",
      'model',
      'missing_required_parameter',
    );
  }
  if (typeof body.model !== 'string' || body.model === '') {
    return invalidRequest(
      "'model'은(는) 문자열이어야 합니다. / Invalid type for 'model': expected a string.",
      'model',
      'invalid_type',
    );
  }
  return null;
}

export function checkChatRequest(body: Record<string, unknown>): Check {
  const model = checkModel(body);
  if (model) return model;
  const messages = body.messages;
  if (messages === undefined) {
    return invalidRequest(
      "'messages' 필드가 필요합니다. / Missing required parameter: 'messages'.",
      'messages',
      'missing_required_parameter',
    );
  }
  if (!Array.isArray(messages)) {
    return invalidRequest(
      "'messages'는 배열이어야 합니다. / Invalid type for 'messages': expected an array.",
      'messages',
      'invalid_type',
    );
  }
  if (messages.length === 0) {
    return invalidRequest(
      "'messages'가 비어 있습니다. / Invalid 'messages': empty array. Expected at least one message.",
      'messages',
      'empty_array',
    );
  }
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    if (!isObject(m)) {
      return invalidRequest(
        `'messages[${i}]'는 객체여야 합니다. / Invalid type for 'messages[${i}]': expected an object.`,
        `messages[${i}]`,
        'invalid_type',
      );
    }
    if (typeof m.role !== 'string') {
      return invalidRequest(
        `'messages[${i}].role'이 필요합니다. / Missing required parameter: 'messages[${i}].role'.`,
        `messages[${i}].role`,
        'missing_required_parameter',
      );
    }
  }
  if (body.stream_options !== undefined && body.stream_options !== null && !isObject(body.stream_options)) {
    return invalidRequest(
      "'stream_options'는 객체여야 합니다. / Invalid type for 'stream_options': expected an object.",
      'stream_options',
      'invalid_type',
    );
  }
  return (
    optionalType(body, 'stream', 'boolean') ??
    optionalInteger(body, 'max_tokens', 1) ??
    optionalInteger(body, 'max_completion_tokens', 1) ??
    optionalInteger(body, 'n', 1) ??
    optionalType(body, 'temperature', 'number') ??
    optionalType(body, 'top_p', 'number') ??
    optionalType(body, 'user', 'string')
  );
}

export function checkEmbeddingsRequest(body: Record<string, unknown>): Check {
  const model = checkModel(body);
  if (model) return model;
  const input = body.input;
  if (input === undefined) {
    return invalidRequest(
      "'input' 필드가 필요합니다. / Missing required parameter: 'input'.",
      'input',
      'missing_required_parameter',
    );
  }
  const valid =
    typeof input === 'string' ||
    (Array.isArray(input) &&
      input.length > 0 &&
      (input.every((i) => typeof i === 'string') ||
        input.every((i) => Number.isInteger(i)) ||
        input.every((i) => Array.isArray(i) && i.every((t) => Number.isInteger(t)))));
  if (!valid) {
    return invalidRequest(
      "'input'은 문자열, 문자열 배열 또는 토큰 배열이어야 합니다. / Invalid 'input': expected a string, an array of strings, or an array of token arrays.",
      'input',
      'invalid_type',
    );
  }
  if (
    body.encoding_format !== undefined &&
    body.encoding_format !== 'float' &&
    body.encoding_format !== 'base64'
  ) {
    return invalidRequest(
      "'encoding_format'은 'float' 또는 'base64'입니다. / Invalid 'encoding_format': expected 'float' or 'base64'.",
      'encoding_format',
      'invalid_value',
    );
  }
  return optionalInteger(body, 'dimensions', 1);
}
