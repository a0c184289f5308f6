import type * as OtelApi from '@opentelemetry/api';
import type { Attributes, TextMapGetter } from '@opentelemetry/api';
import type { W3CTraceContextPropagator } from '@opentelemetry/core';
import type { Sampler } from '@opentelemetry/sdk-trace-base';
import type { CallEnd, CallObserver, CallStage, ObservedCall } from '../calls/observer.ts';
import type { RoutableDeployment, RoutableProduct } from '../catalog/catalog-snapshot.ts';
import type { Attempt } from '../routing/router.ts';
import type { AttemptData, CallData, StageData, UpstreamData } from './call-records.mjs';
import { type AttributeValue, hostOf, providerNameOf, setRequestAttributes } from './gen-ai-attributes.ts';
import { inputMessagesJson } from './gen-ai-content.ts';
import { newSpanId, newTraceId } from './trace-ids.mjs';

/**
 * The call observer that traces calls (decision 0009). Its spans are
 *
 *   SERVER  `{operation} {requested model}`        the call, from arrival to its end
 *   ├─ INTERNAL `admission` / `guard` / `metering`  each stage the call layer opens
 *   └─ CLIENT   `{operation} {upstream model}`     each upstream attempt (INTERNAL for in-process models)
 *
 * but no span object is made on the event loop: the SDK's spans cost the request path several
 * microseconds each (`startSpan`, `setAttribute`, then copying them for the exporter's thread). A sampled
 * call keeps one `CallRecord` in `call.observation` — ids, times, the attributes that vary by call — and
 * at its end the record goes to the exporter's thread (span-export.ts), which rebuilds the spans the SDK
 * would have made (call-records.mjs). What is constant for a deployment is sent there once. A call the
 * sampler drops keeps only its trace id, for the `traceparent` sent upstream.
 *
 * The SDK's sampler still decides, and core's W3C propagator reads the incoming trace context.
 * Loaded only when tracing is on (observability/tracing.ts imports it lazily, through loadCallTracer).
 */

// OpenTelemetry's API and core are imported by loadCallTracer, not at the top: the hub's start bundle
// hoists a bundled module's package imports to its own top, so a hub without tracing loaded them.
let api: typeof OtelApi;
let propagator: W3CTraceContextPropagator;

/** CallTracer, once OpenTelemetry's API and core are loaded. */
export async function loadCallTracer(): Promise<typeof CallTracer> {
  const [otel, core] = await Promise.all([import('@opentelemetry/api'), import('@opentelemetry/core')]);
  api = otel;
  propagator ??= new core.W3CTraceContextPropagator();
  return CallTracer;
}

const incomingTraceContext: TextMapGetter<ObservedCall> = {
  keys: () => ['traceparent', 'tracestate'],
  get(call, key) {
    if (key === 'traceparent') return call.traceparent;
    if (key === 'tracestate') return call.tracestate;
    return undefined;
  },
};

const NO_LINKS: [] = [];
/** SamplingDecision.RECORD_AND_SAMPLED of @opentelemetry/api. */
const RECORD_AND_SAMPLED = 2;

/** The model a client asked for names its span: a made-up name of any length must not follow it there. */
const MAX_MODEL_CHARS = 128;

function boundedModel(model: string): string {
  return model.length <= MAX_MODEL_CHARS ? model : `${model.slice(0, MAX_MODEL_CHARS)}…`;
}

/** Where a traced call's record goes (span-export.ts). */
export interface CallRecordSink {
  /** A deployment's constants, before the first call that names them. */
  addUpstream(upstream: UpstreamData): void;
  /** A call that ended, with `1 + children.length` spans. */
  addCall(call: CallData): void;
}

class StageRecord implements StageData {
  constructor(
    readonly stage: CallStage,
    readonly at: number,
    /** Minus the start's performance.now() while open, the length once ended. */
    public ms: number,
  ) {}
  error: string | null = null;
}

class AttemptRecord implements AttemptData {
  ttft: number | null = null;
  httpStatus: number | null = null;
  errorType: string | null = null;
  message: string | null = null;
  inputTokens: number | null = null;
  outputTokens: number | null = null;

  constructor(
    readonly spanId: string,
    readonly upstream: number,
    readonly at: number,
    /** Minus the start's performance.now() while open, the length once ended. */
    public ms: number,
  ) {}
}

/**
 * A sampled call: fixed fields, filled as its events arrive. The open stages and attempt are also held
 * in their own fields; they are null again once the call has ended (and so cross to the exporter's
 * thread as nulls).
 */
class CallRecord implements CallData {
  samplerAttributes: Attributes | null = null;
  request: Record<string, AttributeValue> | null = null;
  inputMessages: string | null = null;
  messagesLeftOut = 0;
  endMs = 0;
  ttft: number | null = null;
  httpStatus = 0;
  productId: string | null = null;
  servedProductId: string | null = null;
  servedModel: string | null = null;
  servedUpstream: number | null = null;
  responseId: string | null = null;
  finishReasons: readonly string[] | null = null;
  inputTokens: number | null = null;
  outputTokens: number | null = null;
  usageSource: string | null = null;
  usageStatus: string | null = null;
  costMicroKrw: number | string | null = null;
  errorType: string | null = null;
  /** Ended stages and attempts, in the order they ended. */
  readonly children: (StageRecord | AttemptRecord)[] = [];
  admission: StageRecord | null = null;
  guard: StageRecord | null = null;
  metering: StageRecord | null = null;
  attempt: AttemptRecord | null = null;

  constructor(
    readonly traceId: string,
    readonly parentSpanId: string | null,
    readonly traceState: string | null,
    readonly operation: 'chat' | 'embeddings',
    readonly model: string,
    readonly requestId: string,
    readonly organizationId: string,
    readonly apiKeyId: string,
    readonly stream: boolean,
    readonly startMs: number,
  ) {}

  /** The request parameters (gen-ai-attributes.ts writes them here as it would into a span). */
  setAttribute(key: string, value: AttributeValue): void {
    if (this.request === null) this.request = {};
    this.request[key] = value;
  }
}

/** A call the sampler dropped: what its upstream attempts are told (the trace, not sampled). */
class UnsampledCall {
  /** The id of the call's non-recording span, drawn at the first attempt. */
  spanId: string | null = null;

  constructor(
    readonly traceId: string,
    readonly traceState: string | null,
  ) {}
}

function closeStage(stage: StageRecord | null, children: (StageRecord | AttemptRecord)[], now: number): void {
  if (stage === null) return;
  stage.ms += now;
  children.push(stage);
}

/** What the tracer knows of a deployment, built at its first attempt. */
interface Upstream {
  id: number;
  providerName: string;
}

/** The upstream's own error text can echo the prompt: it goes into spans only with content opted in. */
const MAX_ERROR_MESSAGE_CHARS = 512;
const MAX_EXACT_MICRO_KRW = BigInt(Number.MAX_SAFE_INTEGER);

export interface CallTracerOptions {
  /** KAIHUB_TRACE_CONTENT: prompts (`gen_ai.input.messages`) and upstream error text in spans. */
  recordContent: boolean;
  /** Masks personal data in recorded content (guardrails/pii-guard.ts): spans never carry it unmasked. */
  redact?: (text: string) => string;
}

export class CallTracer implements CallObserver {
  private readonly recordContent: boolean;
  private readonly redact: (text: string) => string;
  // deployments are rebuilt with every catalog snapshot: a weak map forgets the old ones
  private readonly upstreams = new WeakMap<RoutableDeployment, Upstream>();
  /**
   * The same constants under a new snapshot's deployment object keep their id, so that the exporter's
   * thread holds one entry per distinct deployment setting, not one per snapshot.
   */
  private readonly upstreamIds = new Map<string, Upstream>();

  constructor(
    private readonly sampler: Sampler,
    private readonly sink: CallRecordSink,
    options: CallTracerOptions,
  ) {
    this.recordContent = options.recordContent;
    this.redact = options.redact ?? ((text) => text);
  }

  private upstream(deployment: RoutableDeployment, product: RoutableProduct): Upstream {
    let upstream = this.upstreams.get(deployment);
    if (upstream === undefined) {
      upstream = this.newUpstream(deployment, product);
      this.upstreams.set(deployment, upstream);
    }
    return upstream;
  }

  private newUpstream(deployment: RoutableDeployment, product: RoutableProduct): Upstream {
    const host = hostOf(deployment.baseUrl);
    const data: Omit<UpstreamData, 'id'> = {
      // an in-process model is no remote call: INTERNAL, as the conventions allow
      kind: deployment.adapter === 'local' || host === null ? api.SpanKind.INTERNAL : api.SpanKind.CLIENT,
      spanModel: deployment.upstreamModel || product.model,
      providerName: providerNameOf(deployment, product),
      upstreamModel: deployment.upstreamModel,
      productId: product.id,
      deploymentId: deployment.id,
      supplierId: product.supplierId,
      serverAddress: host?.address ?? null,
      serverPort: host?.port ?? null,
    };
    const key = JSON.stringify(data);
    let upstream = this.upstreamIds.get(key);
    if (upstream === undefined) {
      upstream = { id: this.upstreamIds.size, providerName: data.providerName };
      this.upstreamIds.set(key, upstream);
      this.sink.addUpstream({ id: upstream.id, ...data });
    }
    return upstream;
  }

  callStarted(call: ObservedCall): void {
    const parent =
      call.traceparent === undefined
        ? api.ROOT_CONTEXT
        : propagator.extract(api.ROOT_CONTEXT, call, incomingTraceContext);
    // as the SDK's tracer: a valid incoming context is the parent, else a new trace begins
    const remote = parent === api.ROOT_CONTEXT ? undefined : api.trace.getSpanContext(parent);
    const valid = remote !== undefined && api.trace.isSpanContextValid(remote);
    const traceId = valid ? remote.traceId : newTraceId();
    const model = boundedModel(call.requestedModel);
    // only what a sampler may look at is given to it
    const attributes: Attributes = { 'gen_ai.operation.name': call.operation, 'gen_ai.request.model': model };
    const sampling = this.sampler.shouldSample(
      parent,
      traceId,
      `${call.operation} ${model}`,
      api.SpanKind.SERVER,
      attributes,
      NO_LINKS,
    );
    const state = sampling.traceState ?? (valid ? remote.traceState : undefined);
    const traceState = state === undefined ? null : state.serialize();
    // a span the SDK would record but not sample is never exported: for the hub it is a dropped call
    if (sampling.decision !== RECORD_AND_SAMPLED) {
      call.observation = new UnsampledCall(traceId, traceState);
      return;
    }
    const r = new CallRecord(
      traceId,
      valid ? remote.spanId : null,
      traceState,
      call.operation,
      model,
      call.requestId,
      call.caller.organizationId,
      call.caller.keyId,
      call.stream,
      call.startedAtMs,
    );
    if (sampling.attributes !== undefined && Object.keys(sampling.attributes).length > 0) {
      r.samplerAttributes = sampling.attributes;
    }
    setRequestAttributes(call.operation, call.body, r);
    if (this.recordContent && call.operation === 'chat') {
      const messages = inputMessagesJson(call.body.messages);
      if (messages !== null) {
        r.inputMessages = this.redact(messages.json);
        r.messagesLeftOut = messages.leftOut;
      }
    }
    call.observation = r;
  }

  stageStarted(call: ObservedCall, stage: CallStage): void {
    const r = call.observation;
    // as the SDK takes a span's start: the wall clock, then the monotonic one for its length
    if (r instanceof CallRecord) r[stage] = new StageRecord(stage, Date.now(), -performance.now());
  }

  stageEnded(call: ObservedCall, stage: CallStage, error: string | null): void {
    const r = call.observation;
    if (!(r instanceof CallRecord)) return;
    const s = r[stage];
    if (s === null) return;
    r[stage] = null;
    s.error = error;
    closeStage(s, r.children, performance.now());
  }

  attemptStarted(call: ObservedCall, product: RoutableProduct, deployment: RoutableDeployment): void {
    const r = call.observation;
    let traceparent: string;
    let traceState: string | null;
    if (r instanceof CallRecord) {
      const spanId = newSpanId();
      const upstream = this.upstream(deployment, product);
      r.attempt = new AttemptRecord(spanId, upstream.id, Date.now(), -performance.now());
      traceparent = `00-${r.traceId}-${spanId}-01`;
      traceState = r.traceState;
    } else if (r instanceof UnsampledCall) {
      // sampled out: the upstream still learns the trace, and that it is not sampled
      r.spanId ??= newSpanId();
      traceparent = `00-${r.traceId}-${r.spanId}-00`;
      traceState = r.traceState;
    } else {
      return;
    }
    // what core's W3C propagator injects: version 00, the span, its flags; the tracestate as received
    call.upstreamHeaders = traceState === null ? { traceparent } : { traceparent, tracestate: traceState };
  }

  attemptEnded(
    call: ObservedCall,
    attempt: Attempt,
    usage: { promptTokens: number; completionTokens: number } | null,
  ): void {
    const r = call.observation;
    if (!(r instanceof CallRecord) || r.attempt === null) return;
    const a = r.attempt;
    r.attempt = null;
    const error = attempt.error;
    if (error !== null) {
      const status = error.details.status;
      if (status !== undefined) a.httpStatus = status;
      a.errorType = error.kind === 'http' && status !== undefined ? String(status) : error.kind;
      const summary = status !== undefined ? `upstream ${error.kind} ${status}` : `upstream ${error.kind}`;
      a.message = this.recordContent
        ? `${summary}: ${this.redact(error.message.slice(0, MAX_ERROR_MESSAGE_CHARS))}`
        : summary;
    }
    if (usage !== null) {
      a.inputTokens = usage.promptTokens;
      a.outputTokens = usage.completionTokens;
    }
    a.ms += performance.now();
    r.children.push(a);
  }

  firstToken(call: ObservedCall): void {
    const r = call.observation;
    if (!(r instanceof CallRecord)) return;
    // seconds, as the conventions define it: the call's from arrival, the attempt's from its request
    r.ttft = (Date.now() - call.startedAtMs) / 1000;
    if (r.attempt !== null) r.attempt.ttft = (performance.now() + r.attempt.ms) / 1000;
  }

  callEnded(call: ObservedCall, end: CallEnd): void {
    const r = call.observation;
    call.observation = undefined;
    if (!(r instanceof CallRecord)) return;
    // the contract closes every pair; should a bug leave one open, it is still exported
    const now = performance.now();
    closeStage(r.admission, r.children, now);
    closeStage(r.guard, r.children, now);
    closeStage(r.metering, r.children, now);
    if (r.attempt !== null) {
      r.attempt.ms += now;
      r.children.push(r.attempt);
    }
    r.admission = null;
    r.guard = null;
    r.metering = null;
    r.attempt = null;
    r.httpStatus = end.httpStatus;
    if (call.product !== null) r.productId = call.product.id;
    const served = end.servedProduct;
    if (served !== null) {
      r.servedProductId = served.id;
      r.servedModel = served.model;
      if (end.servedDeployment !== null) r.servedUpstream = this.upstream(end.servedDeployment, served).id;
    }
    r.responseId = end.responseId;
    r.finishReasons = end.finishReasons;
    const record = end.record;
    if (record !== null) {
      r.inputTokens = record.promptTokens;
      r.outputTokens = record.completionTokens;
      r.usageSource = record.usageSource;
      r.usageStatus = record.status;
      // µ₩ are exact in a double up to 2^53 (9 billion won for one call); beyond, the decimal text
      const cost = record.costMicroKrw;
      r.costMicroKrw = cost <= MAX_EXACT_MICRO_KRW ? Number(cost) : cost.toString();
    }
    if (end.errorCode !== null || end.httpStatus >= 400) {
      r.errorType = end.errorCode ?? String(end.httpStatus);
    }
    r.endMs = Date.now();
    this.sink.addCall(r);
  }
}
