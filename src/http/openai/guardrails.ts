import { invalidRequest } from '../../calls/errors.ts';
import { checkPii } from '../../guardrails/pii-check.ts';
import { sendJson } from '../respond.ts';
import type { RequestContext } from './context.ts';
import { sendOpenAIError } from './errors.ts';

/**
 * `POST /v1/guardrails/check` `{"input": "<text>"}` → `{"findings": [{type, start, end}], "masked"}`:
 * what the guard would find in a text, for clients that check before they send. Nothing is logged.
 */
export function handleGuardrailsCheck(ctx: RequestContext, body: Record<string, unknown>): void {
  const input = body.input;
  if (typeof input !== 'string') {
    sendOpenAIError(
      ctx.res,
      invalidRequest(
        "'input'은(는) 문자열이어야 합니다. / 'input' must be a string: the text to check.",
        'input',
        'invalid_type',
      ),
      ctx.requestId,
    );
    return;
  }
  sendJson(ctx.res, 200, checkPii(input), { 'x-request-id': ctx.requestId });
}
