import type { Caller } from '../accounts/key-cache.ts';
import type { MeterBase, MeterOutcome } from '../billing/meter.ts';
import { estimateEmbeddingInputTokens, estimatePromptTokens } from '../billing/token-estimate.ts';
import type { UsageBounds } from '../billing/usage-check.ts';
import type { UsageRecord, UsageStatus } from '../billing/usage-journal.ts';
import type { RoutableDeployment, RoutableProduct } from '../catalog/catalog-snapshot.ts';
import type { AdmissionTicket } from '../limits/admission.ts';
import {
  type CallOptions,
  type ChatStreamPart,
  type CompletedCall,
  type JsonObject,
  type TokenUsage,
  UpstreamError,
} from '../providers/adapter.ts';
import { chatRequestFeatures } from '../providers/features.ts';
import { CapacityError } from '../routing/load.ts';
import type { Attempt, RoutedCall, Served } from '../routing/router.ts';
import { CallAbort } from './call-abort.ts';
import type { CallLayer } from './call-layer.ts';
import type { DeadlineEntry } from './deadlines.ts';
import {
  type CallError,
  capacityExhausted,
  fromUpstreamError,
  modelNotFound,
  residencyRestricted,
  tooManyConcurrentCalls,
  unexpectedFailure,
  unsupportedFeatures,
} from './errors.ts';
import { type Guard, type GuardSession, isRefusal } from './guard.ts';
import type { CallEnd, CallOperation, CallStage, ObservedCall } from './observer.ts';
import {
  admissionError,
  describe,
  ignoredParamsOf,
  kindOf,
  lastDeploymentOf,
  statusOf,
  usageAttemptsOf,
} from './outcome-details.ts';
import { completePlainCall } from './plain-answer.ts';
import { pumpStream } from './stream-pump.ts';

/** One call as its caller hands it over: who asks, for what, and when it arrived. */
export interface CallInput {
  requestId: string;
  caller: Caller;
  operation: CallOperation;
  /** The OpenAI request, its fields the hub relies on already validated (http/openai/validate.ts). */
  body: JsonObject;
  /** performance.now() at arrival. */
  startedAt: number;
  /** Date.now() at arrival. */
  startedAtMs: number;
  /** W3C trace context of the incoming request, if any. */
  traceparent: string | undefined;
  tracestate: string | undefined;
}

export type CallOutcome =
  | { type: 'completed'; body: JsonObject }
  /**
   * A streamed answer: chunks in OpenAI's `chat.completion.chunk` shape, already rewritten for the
   * client. The stream ends normally (then the consumer writes `[DONE]`) or throws a `CallStreamError`
   * (the consumer writes it as the last event). Read it to its end or `return()` it.
   */
  | { type: 'stream'; stream: AsyncGenerator<JsonObject, void, undefined> }
  | { type: 'error'; error: CallError };

/** 499 as nginx uses it: the client closed the connection before the answer. */
export const CLIENT_CLOSED = 499;

/** The call's total time is up (`CallLayer.deadlines`). */
export function onTotalTimeout(call: ModelCall): void {
  call.abortUpstream(new DOMException('total upstream time exceeded', 'TimeoutError'));
  if (call.handedOver)
    call.watchForAbandonedStream(call.layer.deps.settings.abandonedStreamGraceMs ?? 10_000);
}

function onAbandonedStream(call: ModelCall): void {
  call.reclaimStream();
}

/**
 * The life of one model call, owned here from start to end. `run()` resolves the product, admits,
 * guards, routes (retries, failover, fallbacks) and — for a plain call — meters and settles before it
 * returns; a stream hands the rest of the life to its pump (stream-pump.ts), which meters and settles
 * when the stream ends, however it ends.
 *
 * Every pair closes exactly once, by structure: `run()`'s `finally` (or the pump's) calls `close()`,
 * which releases what is still open — the admission ticket (exactly one `settle` or `release`), the
 * guard session, an open observer stage, the organisation's concurrency slot, the total-time timer,
 * the in-flight gauge — and ends the call for the observer and the metrics. A failure anywhere (an
 * admission that throws, a journal that cannot be written) becomes a 500 with nothing charged.
 *
 * One object per call, fields declared up front (one hidden class); the router and the observer take
 * the call itself, so routing allocates no closures (docs/decisions/0006).
 */
export class ModelCall implements ObservedCall, RoutedCall<unknown> {
  // --- what the observer reads (ObservedCall) ---
  readonly requestId: string;
  readonly operation: CallOperation;
  readonly caller: Caller;
  readonly requestedModel: string;
  /** The client's request; a handed-over stream keeps it without `messages` (`forgetMessages`). */
  body: JsonObject;
  readonly stream: boolean;
  readonly startedAtMs: number;
  readonly traceparent: string | undefined;
  readonly tracestate: string | undefined;
  product: RoutableProduct | null = null;
  observation: unknown = undefined;
  upstreamHeaders: Record<string, string> | undefined = undefined;

  // --- what the router reads (RoutedCall) ---
  readonly signal: AbortSignal;
  needs = 0;
  readonly attempts: Attempt[] = [];
  readonly organizationId: string;
  timeoutsCountAgainstHealth = true;

  // --- the call's own state (internal to calls/) ---
  readonly startedAt: number;
  readonly layer: CallLayer;
  /** What the upstream gets: the client's request, or the guard's version of it. */
  request: JsonObject;
  promptEstimate = 0;
  maxTokens: number | null = null;
  served: Served<unknown> | null = null;
  /** performance.now() when the first chunk was handed to the client. */
  firstTokenAt: number | null = null;
  guardSession: GuardSession | null = null;
  /** The client went away (or an in-process caller cancelled). */
  clientGone = false;
  /** A stream took over the rest of the life (see stream-pump.ts). */
  handedOver = false;
  /** The pump of a streamed answer, once handed over; `pumpStarted` once its consumer first read it. */
  pump: AsyncGenerator<JsonObject, void, undefined> | null = null;
  pumpStarted = false;
  /** Fields of the request the serving adapter does not pass on, for the client's information. */
  ignoredParams: string | null = null;
  /** What admission sends with the answer (`x-ratelimit-*`); null: nothing. */
  admissionHeaders: Readonly<Record<string, string>> | null = null;
  drainTimer: NodeJS.Timeout | undefined = undefined;
  // the total time's deadline (DeadlineEntry): linked into the layer's list while it runs
  deadlineAt = 0;
  deadlinePrev: DeadlineEntry | null = null;
  deadlineNext: DeadlineEntry | null = null;
  private readonly abort: CallAbort;
  private readonly options: CallOptions;
  /** After the total time, the grace a stream's consumer has to take its failure (watchForAbandonedStream). */
  private timer: NodeJS.Timeout | undefined = undefined;
  private ticket: AdmissionTicket | null = null;
  private holdsOrganizationSlot = false;
  private openStage: CallStage | null = null;
  private started = false;
  private closed = false;
  private end: CallEnd | null = null;

  constructor(layer: CallLayer, input: CallInput) {
    this.layer = layer;
    this.requestId = input.requestId;
    this.operation = input.operation;
    this.caller = input.caller;
    this.requestedModel = input.body.model as string;
    this.body = input.body;
    this.request = input.body;
    this.stream = input.operation === 'chat' && input.body.stream === true;
    this.startedAt = input.startedAt;
    this.startedAtMs = input.startedAtMs;
    this.traceparent = input.traceparent;
    this.tracestate = input.tracestate;
    this.organizationId = input.caller.organizationId;
    this.abort = new CallAbort();
    this.signal = this.abort.signal;
    const settings = layer.deps.settings;
    this.options = {
      signal: this.signal,
      headersTimeoutMs: settings.upstreamHeadersTimeoutMs,
      idleTimeoutMs: settings.upstreamIdleTimeoutMs,
      headers: undefined,
    };
  }

  /** Runs the call, once. Never throws: every failure comes back as an `error` outcome. */
  async run(): Promise<CallOutcome> {
    if (this.started) throw new Error('a call runs once');
    this.started = true;
    const deps = this.layer.deps;
    deps.metrics.inFlight.inc();
    deps.observer.callStarted(this);
    try {
      return await this.live();
    } catch (error) {
      return this.internalFailure(error);
    } finally {
      if (!this.handedOver) this.close();
    }
  }

  /**
   * The client went away, or an in-process caller gives up. Before a streamed answer started, the
   * upstream call stops at once; once it streams, the pump stops forwarding and reads the upstream on
   * for `streamDrainMs` at most, for the upstream's own usage counts.
   */
  cancel(): void {
    if (this.closed || this.clientGone) return;
    this.clientGone = true;
    if (!this.handedOver) {
      this.abortUpstream(new DOMException('the client went away', 'AbortError'));
      return;
    }
    this.armDrainDeadline();
  }

  /** From now on the upstream is read for `streamDrainMs` at most (0: it stops at once). */
  armDrainDeadline(): void {
    if (this.drainTimer !== undefined) return;
    const drainMs = this.layer.deps.settings.streamDrainMs;
    if (drainMs <= 0) this.abortUpstream(new DOMException('the client went away', 'AbortError'));
    else this.drainTimer = setTimeout(onDrainDeadline, drainMs, this);
  }

  watchForAbandonedStream(graceMs: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(onAbandonedStream, graceMs, this);
  }

  /**
   * The backstop for a consumer that dropped a stream without reading it to its end or returning it:
   * past the total time and a grace period the call reads its own stream (never started) or returns it
   * (left at a chunk), which meters, settles or releases, and closes, as for any stream.
   */
  reclaimStream(): void {
    const pump = this.pump;
    if (this.closed || pump === null) return;
    this.layer.deps.logger.warn({ requestId: this.requestId }, 'stream abandoned by its consumer');
    if (this.pumpStarted) {
      pump.return(undefined).catch(() => {});
      return;
    }
    void (async () => {
      try {
        for await (const _ of pump) {
          // nobody reads it: the answer is dropped, the call ends as any other
        }
      } catch {
        // the failure was metered; there is no one to tell
      }
    })();
  }

  /** Stops the upstream call (total time up, client gone, drain over); the call's failure follows. */
  abortUpstream(reason: DOMException): void {
    this.abort.abort(reason);
  }

  private async live(): Promise<CallOutcome> {
    const deps = this.layer.deps;
    const product = this.layer.resolve(this.caller, this.requestedModel);
    if (!product) return this.refuse(modelNotFound(this.requestedModel));
    this.product = product;

    const placement = deps.guard.placement?.(this.caller, product) ?? 0;
    if (this.operation === 'chat') {
      this.needs = chatRequestFeatures(this.body);
      this.promptEstimate = estimatePromptTokens(this.body);
      const max = this.body.max_completion_tokens ?? this.body.max_tokens;
      this.maxTokens = typeof max === 'number' ? max : null;
    } else {
      this.promptEstimate = estimateEmbeddingInputTokens(this.body.input);
      this.maxTokens = 0;
    }
    if ((this.needs | placement) !== 0) {
      const refusal = this.unservable(product, this.needs, placement);
      if (refusal !== null) return this.refuse(refusal);
      this.needs |= placement;
    }
    this.timeoutsCountAgainstHealth = this.hasOrdinarySize(product);

    const limit = this.caller.maxConcurrentRequests ?? deps.settings.organizationMaxConcurrent;
    if (!deps.concurrency.enter(this.organizationId, limit))
      return this.refuse(tooManyConcurrentCalls(limit));
    this.holdsOrganizationSlot = true;

    this.beginStage('admission');
    const decision = await deps.admission.admit({
      requestId: this.requestId,
      caller: this.caller,
      product,
      estimatedPromptTokens: this.promptEstimate,
      maxCompletionTokens: this.maxTokens,
    });
    if (!decision.admitted) {
      this.endStage(decision.code);
      return this.refuse(admissionError(decision));
    }
    this.endStage(null);
    this.ticket = decision.ticket;
    this.admissionHeaders = decision.ticket.responseHeaders ?? null;

    this.beginStage('guard');
    const begun = deps.guard.begin(this);
    const guarded = begun instanceof Promise ? await begun : begun;
    if (guarded !== null && isRefusal(guarded)) {
      this.endStage(guarded.refused.code ?? 'refused');
      return this.refuse(guarded.refused);
    }
    this.endStage(null);
    if (guarded !== null) {
      this.guardSession = guarded;
      this.request = guarded.request;
    }

    this.layer.deadlines.add(this);
    let served: Served<unknown>;
    try {
      served = await deps.router.route(this, product);
    } catch (error) {
      return this.routingFailed(error);
    }
    this.served = served;
    this.ignoredParams = ignoredParamsOf(this.layer.adapterOf(served.deployment), this.operation, this.body);
    if (this.stream) {
      this.handedOver = true;
      this.pump = pumpStream(this, served.result as AsyncIterable<ChatStreamPart>);
      if (!deps.settings.logContent) this.forgetMessages();
      return { type: 'stream', stream: this.pump };
    }
    return completePlainCall(this, served as Served<CompletedCall>);
  }

  /** Every attempt failed before the client saw an answer (or no slot freed): recorded, never charged. */
  private async routingFailed(error: unknown): Promise<CallOutcome> {
    const product = this.product!;
    if (error instanceof CapacityError) {
      const refusal = capacityExhausted(product.model, error.waitedMs);
      await this.meterUnserved('rejected', refusal.status, refusal.code ?? 'capacity', null);
      return this.fail(refusal);
    }
    if (!(error instanceof UpstreamError)) throw error;
    const deploymentId = lastDeploymentOf(product, this.attempts);
    const upstreamModel =
      product.deployments.find((d) => d.id === deploymentId)?.upstreamModel ?? product.model;
    const mapped = fromUpstreamError(error, this.requestId, product.model, upstreamModel);
    const cancelled = error.kind === 'cancelled';
    const status = cancelled ? CLIENT_CLOSED : mapped.status;
    this.layer.deps.logger.warn(
      { requestId: this.requestId, model: product.model, deploymentId, upstream: describe(error) },
      'upstream failed',
    );
    await this.meterUnserved(
      statusOf(error),
      status,
      cancelled ? 'client_closed' : (mapped.code ?? error.kind),
      deploymentId,
    );
    return this.fail(cancelled ? { ...mapped, status } : mapped);
  }

  private async meterUnserved(
    status: UsageStatus,
    httpStatus: number,
    errorCode: string,
    deploymentId: string | null,
  ): Promise<void> {
    const record = await this.meter(this.product!, {
      firstTokenAt: null,
      deploymentId,
      status,
      httpStatus,
      errorCode,
      promptTokens: 0,
      completionTokens: 0,
      usageSource: 'none',
      usageNote: null,
      chargeable: false,
    });
    this.release();
    this.ended(httpStatus, errorCode, record, null, null, null);
  }

  /**
   * The upstream accepted the stream, so no retry or fallback will send the request again, and what the
   * rest of the call reads of it (`n`, `stream_options`) is not the prompt: an open stream stops holding
   * its messages, which with a real prompt are most of what it holds (a prompt of 4,000 characters at
   * 2,000 streams: docs/benchmarks.md). Not with the content log, which writes the request at the end.
   */
  private forgetMessages(): void {
    const guarded = this.request !== this.body;
    const { messages: _messages, ...rest } = this.body;
    this.body = rest;
    if (guarded) {
      const { messages: _guardedMessages, ...guardedRest } = this.request;
      this.request = guardedRest;
    } else {
      this.request = rest;
    }
  }

  // --- pieces the stream pump shares -----------------------------------------------------------

  /** Makes the usage record durable; the metering stage around it. */
  async meter(product: RoutableProduct, outcome: MeterOutcome): Promise<UsageRecord> {
    const base: MeterBase = {
      requestId: this.requestId,
      startedAtMs: this.startedAtMs,
      startedAt: this.startedAt,
      caller: this.caller,
      product,
      endpoint: this.operation === 'chat' ? 'chat.completions' : 'embeddings',
      stream: this.stream,
      attempts: usageAttemptsOf(this.attempts),
      voucherId: this.ticket?.voucherId ?? null,
    };
    this.beginStage('metering');
    const record = await this.layer.deps.meter.record(base, outcome);
    this.endStage(null);
    return record;
  }

  /** What bounds plausible upstream counts for this call on `product`. */
  usageBounds(product: RoutableProduct): UsageBounds {
    const input = this.body.input;
    return {
      contextWindow: product.contextWindow,
      promptContexts: this.operation === 'embeddings' && Array.isArray(input) ? input.length : 1,
      choices: this.operation === 'embeddings' ? 0 : typeof this.body.n === 'number' ? this.body.n : 1,
      maxCompletionTokens: this.operation === 'embeddings' ? 0 : this.maxTokens,
    };
  }

  /** The call was charged: exactly once, only with a durable record. */
  settle(record: UsageRecord): void {
    const ticket = this.ticket;
    if (ticket === null) return;
    this.ticket = null;
    try {
      ticket.settle(record);
    } catch (error) {
      // the record is durable: settlement reconciles from the journal; the client keeps its answer
      this.layer.deps.logger.error({ err: error, requestId: this.requestId }, 'admission settle failed');
    }
  }

  /** The call ended with nothing charged. */
  release(): void {
    const ticket = this.ticket;
    if (ticket === null) return;
    this.ticket = null;
    try {
      ticket.release();
    } catch (error) {
      this.layer.deps.logger.error({ err: error, requestId: this.requestId }, 'admission release failed');
    }
  }

  /**
   * The opt-in body log (KAIHUB_LOG_CONTENT): what the upstream was sent and what the client got, each
   * through the guard's `redact`, so that no personal data reaches the log unmasked.
   */
  logContent(answer: { response: unknown } | { streamedText: string }): void {
    const deps = this.layer.deps;
    const guard = deps.guard;
    const redacted =
      'response' in answer
        ? { response: redactJson(guard, answer.response) }
        : { streamedText: guard.redact?.(answer.streamedText) ?? answer.streamedText };
    deps.logger.info(
      { requestId: this.requestId, request: redactJson(guard, this.request), ...redacted },
      'content',
    );
  }

  /** How the call ended, for the observer and the metrics (`close` reports it). */
  ended(
    httpStatus: number,
    errorCode: string | null,
    record: UsageRecord | null,
    served: Served<unknown> | null,
    responseId: string | null,
    finishReasons: readonly string[] | null,
  ): void {
    this.end = {
      httpStatus,
      errorCode,
      record,
      servedProduct: served?.product ?? null,
      servedDeployment: served?.deployment ?? null,
      responseId,
      finishReasons,
    };
  }

  /** The attempt that served has ended (its answer finished or broke off). */
  servedAttemptEnded(failure: UpstreamError | null, usage: TokenUsage | null): void {
    const attempt = this.attempts[this.attempts.length - 1];
    if (attempt === undefined) return;
    if (failure !== null) {
      this.layer.deps.metrics.upstreamErrors
        .labels(attempt.model, attempt.deploymentId, kindOf(failure))
        .inc();
    }
    this.layer.deps.observer.attemptEnded(
      this,
      failure === null ? attempt : { ...attempt, error: failure },
      usage,
    );
  }

  /**
   * An internal failure (a bug, a journal that cannot be written): 500, nothing charged; a lock the
   * database did not give in time: 503, to be sent again. Nothing of the call was applied then: its one
   * write is its usage record (on SQLite a line in the journal file, applied by the worker's own
   * connection, never refused a lock on the hub's; on PostgreSQL or in-memory SQLite one group-commit
   * transaction, the one refused); everything else it does with the database reads.
   */
  internalFailure(error: unknown): CallOutcome {
    const failure = unexpectedFailure(error, this.requestId);
    this.layer.deps.logger[failure.status === 503 ? 'warn' : 'error'](
      { err: error, requestId: this.requestId },
      'call failed',
    );
    this.release();
    this.ended(failure.status, failure.code ?? 'internal_error', null, null, null, null);
    return { type: 'error', error: failure };
  }

  beginStage(stage: CallStage): void {
    this.openStage = stage;
    this.layer.deps.observer.stageStarted(this, stage);
  }

  endStage(error: string | null): void {
    const stage = this.openStage;
    if (stage === null) return;
    this.openStage = null;
    this.layer.deps.observer.stageEnded(this, stage, error);
  }

  /**
   * The one place a call's pairs close; idempotent. Whatever is still open was interrupted: the
   * ticket is released (never settled here: only a durable record settles), the stage ends with an
   * error, the guard session ends, the timers stop, the slot and the gauge are given back.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const deps = this.layer.deps;
    this.layer.deadlines.remove(this);
    clearTimeout(this.timer);
    clearTimeout(this.drainTimer);
    if (this.openStage !== null) this.endStage('interrupted');
    this.release();
    if (this.guardSession !== null) {
      try {
        this.guardSession.end();
      } catch (error) {
        deps.logger.error({ err: error, requestId: this.requestId }, 'guard end failed');
      }
    }
    if (this.holdsOrganizationSlot) {
      this.holdsOrganizationSlot = false;
      deps.concurrency.leave(this.organizationId);
    }
    deps.metrics.inFlight.dec();
    const end = this.end ?? {
      httpStatus: 500,
      errorCode: 'internal_error',
      record: null,
      servedProduct: null,
      servedDeployment: null,
      responseId: null,
      finishReasons: null,
    };
    deps.metrics.requests
      .labels(
        this.product?.model ?? '',
        this.operation === 'chat' ? 'chat.completions' : 'embeddings',
        String(end.httpStatus),
      )
      .inc();
    deps.observer.callEnded(this, end);
  }

  // --- RoutedCall ------------------------------------------------------------------------------

  attempt(_product: RoutableProduct, deployment: RoutableDeployment): Promise<unknown> {
    const adapter = this.layer.adapterOf(deployment);
    this.options.headers = this.upstreamHeaders;
    if (this.operation === 'embeddings')
      return adapter.embeddings(deployment.target, this.request, this.options);
    if (this.stream) return adapter.chatStream(deployment.target, this.request, this.options);
    return adapter.chat(deployment.target, this.request, this.options);
  }

  *fallbacks(product: RoutableProduct): Generator<RoutableProduct> {
    const chain = this.caller.fallbackModels?.[product.model] ?? product.fallbackModels;
    for (const model of chain) {
      const next = this.layer.resolve(this.caller, model);
      if (!next) continue;
      const refusal = this.ticket?.reroute?.(next) ?? null;
      if (refusal !== null) {
        this.layer.deps.logger.debug(
          { requestId: this.requestId, model: next.model, refusal: refusal.code },
          'fallback refused by admission',
        );
        continue;
      }
      yield next;
    }
  }

  attemptStarted(product: RoutableProduct, deployment: RoutableDeployment): void {
    this.layer.deps.observer.attemptStarted(this, product, deployment);
  }

  attemptFailed(attempt: Attempt): void {
    const deps = this.layer.deps;
    const error = attempt.error!;
    if (error.kind !== 'cancelled')
      deps.metrics.upstreamErrors.labels(attempt.model, attempt.deploymentId, kindOf(error)).inc();
    if (deps.logger.isLevelEnabled('debug')) {
      deps.logger.debug(
        {
          requestId: this.requestId,
          model: attempt.model,
          deploymentId: attempt.deploymentId,
          durationMs: Math.round(attempt.durationMs),
          error: describe(error),
        },
        'upstream attempt failed',
      );
    }
    deps.observer.attemptEnded(this, attempt, null);
  }

  // --- helpers ---------------------------------------------------------------------------------

  /**
   * Why no deployment of `product` may serve this call, or null when one may: it cannot express the
   * request (400), or none runs where the caller's data policy allows (403; a fallback is no way
   * around that: data leaves the country only when nothing asked for it to stay).
   */
  private unservable(product: RoutableProduct, features: number, placement: number): CallError | null {
    const needs = features | placement;
    let offered = 0;
    let capable = false;
    for (const d of product.deployments) {
      if ((d.features & needs) === needs) return null;
      if ((d.features & features) === features) capable = true;
      offered |= d.features;
    }
    if (!capable) return unsupportedFeatures(product.model, features & ~offered);
    return residencyRestricted(product.model, placement);
  }

  private refuse(error: CallError): CallOutcome {
    this.ended(error.status, error.code ?? null, null, null, null, null);
    return { type: 'error', error };
  }

  private fail(error: CallError): CallOutcome {
    return { type: 'error', error };
  }

  /**
   * Whether this request is ordinary in size, so that a time-out says something about the deployment.
   * A plain call waits for the whole answer, so its `max_tokens` counts; a stream's headers come after
   * the prompt is read, so only its prompt does.
   */
  private hasOrdinarySize(product: RoutableProduct): boolean {
    const size = this.promptEstimate + (this.stream ? 0 : (this.maxTokens ?? 0));
    const limit = Math.min(this.layer.deps.settings.largeRequestTokens, product.contextWindow / 2);
    return size < limit;
  }
}

/** `value` with personal data masked; masking only changes text inside JSON strings, so it parses again. */
function redactJson(guard: Guard, value: unknown): unknown {
  if (guard.redact === undefined) return value;
  const json = JSON.stringify(value);
  const masked = guard.redact(json);
  if (masked === json) return value;
  try {
    return JSON.parse(masked);
  } catch {
    return masked;
  }
}

function onDrainDeadline(call: ModelCall): void {
  call.abortUpstream(new DOMException('the client went away', 'AbortError'));
}
