/**
 * Asking a product one chat, in-process: the evaluation account's call goes through the call layer
 * exactly as a `/v1/chat/completions` request would (resolve → admit → guard → route → meter →
 * settle), without an HTTP hop. The answer is its text, or why there is none and whether asking again
 * may help.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Caller } from '../../accounts/key-cache.ts';
import type { CallLayer } from '../../calls/call-layer.ts';
import type { JsonObject } from '../../providers/adapter.ts';
import { newRequestId } from '../../storage/ids.ts';
import type { ChatMessage } from '../suites/prompts.ts';
import type { CallParameters } from '../suites/suite-spec.ts';

export type Answer =
  | { ok: true; text: string; requestId: string }
  | {
      ok: false;
      /** Worth asking again after a pause: rate limits, capacity, upstream failures, time-outs. */
      retryable: boolean;
      status: number;
      code: string | null;
      message: string;
      requestId: string;
    };

/** What a run asks a product through: the call layer in-process, or a stand-in in unit tests. */
export interface ModelAsker {
  ask(model: string, messages: readonly ChatMessage[], parameters: CallParameters): Promise<Answer>;
}

const RETRYABLE = new Set([408, 409, 429, 500, 502, 503, 504]);

export function isRetryable(status: number): boolean {
  return RETRYABLE.has(status);
}

function textOf(body: JsonObject): string | null {
  const choices = body.choices;
  if (!Array.isArray(choices) || choices.length === 0) return null;
  const message = (choices[0] as { message?: { content?: unknown } }).message;
  const content = message?.content;
  if (typeof content === 'string') return content;
  // a refusal or a tool call: no text to score, which is an unparsed answer, not a failure
  return content === null || content === undefined ? '' : null;
}

export interface RetrySettings {
  /** Extra attempts of a call that failed in a way worth retrying (429, 5xx, time-outs). */
  retries: number;
  /** The first pause before a retry; each later one doubles it (jittered). */
  retryBaseMs: number;
}

/** Asks, and asks again after a jittered, doubling pause while the failure is worth retrying. */
export async function askWithRetries(
  asker: ModelAsker,
  model: string,
  messages: readonly ChatMessage[],
  parameters: CallParameters,
  settings: RetrySettings,
  signal?: AbortSignal,
  onRetry?: (answer: Extract<Answer, { ok: false }>, attempt: number, pause: number) => void,
): Promise<Answer> {
  for (let attempt = 0; ; attempt++) {
    const answer = await asker.ask(model, messages, parameters);
    if (answer.ok || !answer.retryable || attempt >= settings.retries || signal?.aborted) return answer;
    const pause = settings.retryBaseMs * 2 ** attempt * (0.5 + Math.random() / 2);
    onRetry?.(answer, attempt + 1, pause);
    await sleep(pause, undefined, { signal }).catch(() => {});
  }
}

export class CallLayerAsker implements ModelAsker {
  constructor(
    private readonly calls: CallLayer,
    private readonly caller: () => Caller,
  ) {}

  async ask(model: string, messages: readonly ChatMessage[], parameters: CallParameters): Promise<Answer> {
    const requestId = newRequestId();
    const body: JsonObject = { model, messages: messages.map((m) => ({ ...m })), ...parameters };
    const call = this.calls.create({
      requestId,
      caller: this.caller(),
      operation: 'chat',
      body,
      startedAt: performance.now(),
      startedAtMs: Date.now(),
      traceparent: undefined,
      tracestate: undefined,
    });
    const outcome = await call.run();
    if (outcome.type === 'completed') {
      const text = textOf(outcome.body);
      if (text !== null) return { ok: true, text, requestId };
      return {
        ok: false,
        retryable: false,
        status: 502,
        code: 'no_message',
        message: '답변에 메시지가 없습니다 / the answer holds no message',
        requestId,
      };
    }
    if (outcome.type === 'stream') {
      // never asked for; read it out so the call ends and is metered
      for await (const _ of outcome.stream) {
        // drained
      }
      return {
        ok: false,
        retryable: false,
        status: 500,
        code: 'unexpected_stream',
        message: 'unexpected stream',
        requestId,
      };
    }
    const e = outcome.error;
    return {
      ok: false,
      retryable: isRetryable(e.status),
      status: e.status,
      code: e.code ?? null,
      message: e.message,
      requestId,
    };
  }
}
