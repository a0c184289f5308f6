import type { Caller } from '../accounts/key-cache.ts';
import type { UsageRecord } from '../billing/usage-journal.ts';
import type { RoutableDeployment, RoutableProduct } from '../catalog/catalog-snapshot.ts';
import type { JsonObject } from '../providers/adapter.ts';
import type { Attempt } from '../routing/router.ts';

export type CallOperation = 'chat' | 'embeddings';

/** The stages of a call an observer sees open and close (each upstream attempt has its own events). */
export type CallStage = 'admission' | 'guard' | 'metering';

/** What an observer may read of a call; one object per call, the same at every event. */
export interface ObservedCall {
  readonly requestId: string;
  readonly operation: CallOperation;
  readonly caller: Caller;
  /** The `model` the client asked for. */
  readonly requestedModel: string;
  /**
   * The request as the client sent it (read only; never logged or exported unless the operator opts in).
   * Once a stream is handed over its `messages` are gone (`ModelCall.forgetMessages`): read them when
   * the call starts.
   */
  readonly body: JsonObject;
  readonly stream: boolean;
  /** Epoch milliseconds at arrival. */
  readonly startedAtMs: number;
  /** W3C trace context of the incoming request, when it carried one. */
  readonly traceparent: string | undefined;
  readonly tracestate: string | undefined;
  /** The product the model name resolved to, null before (or when it resolved to none). */
  readonly product: RoutableProduct | null;
  /** The observer's own state for this call (its spans): set and read only by the observer. */
  observation: unknown;
  /**
   * Headers the next upstream attempt sends (a `traceparent`): set by the observer in
   * `attemptStarted`, read when the attempt is made.
   */
  upstreamHeaders: Record<string, string> | undefined;
}

/** How a call ended, once: the answer's status, and its usage record when it was metered. */
export interface CallEnd {
  /** The HTTP status the client got (499: it went away first). */
  httpStatus: number;
  /** OpenAI `code` of the error the client got, null on success. */
  errorCode: string | null;
  /** null when the call was refused before anything was metered. */
  record: UsageRecord | null;
  /** The product and deployment that served (a fallback's), null when none did. */
  servedProduct: RoutableProduct | null;
  servedDeployment: RoutableDeployment | null;
  /** `id` of the answer, and each choice's `finish_reason`, when known. */
  responseId: string | null;
  finishReasons: readonly string[] | null;
}

/**
 * The call observer seam: call start and end, each stage, each upstream attempt (retries, failovers and
 * fallbacks apart) and the first token. Events arrive in order, each pair closed exactly once:
 * `callStarted` … `callEnded`; `stageStarted` … `stageEnded`; `attemptStarted` … `attemptEnded` (for
 * the attempt that served, at the end of its answer, streams included). Methods must not throw and
 * must not allocate per request when the observer has nothing to do.
 */
export interface CallObserver {
  callStarted(call: ObservedCall): void;
  stageStarted(call: ObservedCall, stage: CallStage): void;
  /** `error`: what went wrong in the stage (a short code), null when it passed. */
  stageEnded(call: ObservedCall, stage: CallStage, error: string | null): void;
  attemptStarted(call: ObservedCall, product: RoutableProduct, deployment: RoutableDeployment): void;
  /** `usage`: the upstream's own counts, when this attempt served and reported them. */
  attemptEnded(
    call: ObservedCall,
    attempt: Attempt,
    usage: { promptTokens: number; completionTokens: number } | null,
  ): void;
  /** The first chunk of a streamed answer was handed to the client. */
  firstToken(call: ObservedCall): void;
  callEnded(call: ObservedCall, end: CallEnd): void;
}

/** The default: observes nothing, costs a call per event. */
export const observeNothing: CallObserver = {
  callStarted() {},
  stageStarted() {},
  stageEnded() {},
  attemptStarted() {},
  attemptEnded() {},
  firstToken() {},
  callEnded() {},
};
