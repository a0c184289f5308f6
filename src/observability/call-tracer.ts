import {
  type Context,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  type SpanOptions,
  SpanStatusCode,
  type TextMapGetter,
  type TextMapSetter,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import type { CallEnd, CallObserver, CallStage, ObservedCall } from '../calls/observer.ts';
import type { RoutableDeployment, RoutableProduct } from '../catalog/catalog-snapshot.ts';
import type { Attempt } from '../routing/router.ts';
import { hostOf, providerNameOf, setRequestAttributes } from './gen-ai-attributes.ts';
import { inputMessagesJson } from './gen-ai-content.ts';

/**
 * The call observer that turns a call's events into spans (decision 0009):
 *
 *   SERVER  `{operation} {requested model}`        the call, from arrival to its end
 *   ├─ INTERNAL `admission` / `guard` / `metering`  each stage the call layer opens
 *   └─ CLIENT   `{operation} {upstream model}`     each upstream attempt (INTERNAL for in-process models)
 *
 * Everything a call needs lives in one `CallTrace` in `call.observation`. A call the sampler drops keeps
 * only its non-recording span there (for the `traceparent` sent upstream) and costs nothing more.
 * Loaded only when tracing is on (observability/tracing.ts imports it lazily).
 */

const propagator = new W3CTraceContextPropagator();

const incomingTraceContext: TextMapGetter<ObservedCall> = {
  keys: () => ['traceparent', 'tracestate'],
  get(call, key) {
    if (key === 'traceparent') return call.traceparent;
    if (key === 'tracestate') return call.tracestate;
    return undefined;
  },
};

const headerSetter: TextMapSetter<Record<string, string>> = {
  set(headers, key, value) {
    headers[key] = value;
  },
};

const STAGE_SPAN: SpanOptions = { kind: SpanKind.INTERNAL };

/** The model a client asked for names its span: a made-up name of any length must not follow it there. */
const MAX_MODEL_CHARS = 128;

function boundedModel(model: string): string {
  return model.length <= MAX_MODEL_CHARS ? model : `${model.slice(0, MAX_MODEL_CHARS)}…`;
}

/** Per deployment and operation, built once: the attempt span's name and start options. */
interface AttemptTemplate {
  name: string;
  options: SpanOptions;
}

/** What the tracer knows of an upstream deployment, built at its first attempt. */
interface Upstream {
  providerName: string;
  chat: AttemptTemplate;
  embeddings: AttemptTemplate;
}

function upstreamOf(deployment: RoutableDeployment, product: RoutableProduct): Upstream {
  const providerName = providerNameOf(deployment, product);
  const host = hostOf(deployment.baseUrl);
  // an in-process model is no remote call: INTERNAL, as the conventions allow
  const kind = deployment.adapter === 'local' || host === null ? SpanKind.INTERNAL : SpanKind.CLIENT;
  const template = (operation: 'chat' | 'embeddings'): AttemptTemplate => {
    const attributes: Record<string, string | number> = {
      'gen_ai.operation.name': operation,
      'gen_ai.provider.name': providerName,
      'gen_ai.request.model': deployment.upstreamModel,
      'kaihub.product.id': product.id,
      'kaihub.deployment.id': deployment.id,
      'kaihub.supplier.id': product.supplierId,
    };
    if (host !== null) {
      attributes['server.address'] = host.address;
      attributes['server.port'] = host.port;
    }
    return {
      name: `${operation} ${deployment.upstreamModel || product.model}`,
      options: { kind, attributes },
    };
  };
  return { providerName, chat: template('chat'), embeddings: template('embeddings') };
}

/** The spans of one sampled call; `admission`, `guard` and `metering` are named as the stages are. */
class CallTrace {
  admission: Span | undefined = undefined;
  guard: Span | undefined = undefined;
  metering: Span | undefined = undefined;
  attempt: Span | undefined = undefined;
  /** performance.now() at the attempt's start, for its time to first chunk. */
  attemptStartedAt = 0;

  constructor(
    readonly span: Span,
    /** The parent of every child span: the incoming context with the call span in it. */
    readonly context: Context,
  ) {}
}

function endError(span: Span, errorType: string, message: string): void {
  span.setAttribute('error.type', errorType);
  span.setStatus({ code: SpanStatusCode.ERROR, message });
}

/** The upstream's own error text can echo the prompt: it goes into spans only with content opted in. */
const MAX_ERROR_MESSAGE_CHARS = 512;
const MAX_EXACT_MICRO_KRW = BigInt(Number.MAX_SAFE_INTEGER);

export interface CallTracerOptions {
  /** KAIHUB_TRACE_CONTENT: prompts (`gen_ai.input.messages`) and upstream error text in spans. */
  recordContent: boolean;
}

export class CallTracer implements CallObserver {
  private readonly recordContent: boolean;
  // deployments are rebuilt with every catalog snapshot: a weak map forgets the old ones
  private readonly upstreams = new WeakMap<RoutableDeployment, Upstream>();

  constructor(
    private readonly tracer: Tracer,
    options: CallTracerOptions,
  ) {
    this.recordContent = options.recordContent;
  }

  private upstream(deployment: RoutableDeployment, product: RoutableProduct): Upstream {
    let upstream = this.upstreams.get(deployment);
    if (upstream === undefined) {
      upstream = upstreamOf(deployment, product);
      this.upstreams.set(deployment, upstream);
    }
    return upstream;
  }

  callStarted(call: ObservedCall): void {
    const parent =
      call.traceparent === undefined
        ? ROOT_CONTEXT
        : propagator.extract(ROOT_CONTEXT, call, incomingTraceContext);
    // only what a sampler may look at is given at creation; the rest is set once the span records
    const model = boundedModel(call.requestedModel);
    const span = this.tracer.startSpan(
      `${call.operation} ${model}`,
      {
        kind: SpanKind.SERVER,
        startTime: call.startedAtMs,
        attributes: { 'gen_ai.operation.name': call.operation, 'gen_ai.request.model': model },
      },
      parent,
    );
    if (!span.isRecording()) {
      call.observation = span;
      return;
    }
    span.setAttribute('kaihub.request.id', call.requestId);
    span.setAttribute('kaihub.organization.id', call.caller.organizationId);
    span.setAttribute('kaihub.api_key.id', call.caller.keyId);
    if (call.stream) span.setAttribute('gen_ai.request.stream', true);
    setRequestAttributes(call.operation, call.body, span);
    if (this.recordContent && call.operation === 'chat') {
      const messages = inputMessagesJson(call.body.messages);
      if (messages !== null) {
        span.setAttribute('gen_ai.input.messages', messages.json);
        if (messages.leftOut > 0) span.setAttribute('kaihub.content.messages_left_out', messages.leftOut);
      }
    }
    call.observation = new CallTrace(span, trace.setSpan(parent, span));
  }

  stageStarted(call: ObservedCall, stage: CallStage): void {
    const t = call.observation;
    if (t instanceof CallTrace) t[stage] = this.tracer.startSpan(stage, STAGE_SPAN, t.context);
  }

  stageEnded(call: ObservedCall, stage: CallStage, error: string | null): void {
    const t = call.observation;
    if (!(t instanceof CallTrace)) return;
    const span = t[stage];
    if (span === undefined) return;
    t[stage] = undefined;
    if (error !== null) endError(span, error, error);
    span.end();
  }

  attemptStarted(call: ObservedCall, product: RoutableProduct, deployment: RoutableDeployment): void {
    const t = call.observation;
    let current: Span;
    if (t instanceof CallTrace) {
      const template = this.upstream(deployment, product)[call.operation];
      t.attempt = this.tracer.startSpan(template.name, template.options, t.context);
      t.attemptStartedAt = performance.now();
      current = t.attempt;
    } else if (t !== undefined && t !== null) {
      // sampled out: the upstream still learns the trace (and that it is not sampled)
      current = t as Span;
    } else {
      return;
    }
    const headers: Record<string, string> = {};
    propagator.inject(trace.setSpan(ROOT_CONTEXT, current), headers, headerSetter);
    call.upstreamHeaders = headers;
  }

  attemptEnded(
    call: ObservedCall,
    attempt: Attempt,
    usage: { promptTokens: number; completionTokens: number } | null,
  ): void {
    const t = call.observation;
    if (!(t instanceof CallTrace) || t.attempt === undefined) return;
    const span = t.attempt;
    t.attempt = undefined;
    const error = attempt.error;
    if (error !== null) {
      const status = error.details.status;
      if (status !== undefined) span.setAttribute('http.response.status_code', status);
      const type = error.kind === 'http' && status !== undefined ? String(status) : error.kind;
      const summary = status !== undefined ? `upstream ${error.kind} ${status}` : `upstream ${error.kind}`;
      const message = this.recordContent
        ? `${summary}: ${error.message.slice(0, MAX_ERROR_MESSAGE_CHARS)}`
        : summary;
      endError(span, type, message);
    }
    if (usage !== null) {
      span.setAttribute('gen_ai.usage.input_tokens', usage.promptTokens);
      span.setAttribute('gen_ai.usage.output_tokens', usage.completionTokens);
    }
    span.end();
  }

  firstToken(call: ObservedCall): void {
    const t = call.observation;
    if (!(t instanceof CallTrace)) return;
    // seconds, as the conventions define it: the call's from arrival, the attempt's from its request
    t.span.setAttribute('gen_ai.response.time_to_first_chunk', (Date.now() - call.startedAtMs) / 1000);
    t.attempt?.setAttribute(
      'gen_ai.response.time_to_first_chunk',
      (performance.now() - t.attemptStartedAt) / 1000,
    );
  }

  callEnded(call: ObservedCall, end: CallEnd): void {
    const t = call.observation;
    call.observation = undefined;
    if (!(t instanceof CallTrace)) return;
    // the contract closes every pair; should a bug leave one open, it is still exported
    if (t.admission !== undefined) t.admission.end();
    if (t.guard !== undefined) t.guard.end();
    if (t.metering !== undefined) t.metering.end();
    if (t.attempt !== undefined) t.attempt.end();
    const span = t.span;
    span.setAttribute('http.response.status_code', end.httpStatus);
    if (call.product !== null) span.setAttribute('kaihub.product.id', call.product.id);
    const served = end.servedProduct;
    if (served !== null) {
      span.setAttribute('kaihub.served_product.id', served.id);
      span.setAttribute('gen_ai.response.model', served.model);
      if (end.servedDeployment !== null) {
        span.setAttribute('kaihub.deployment.id', end.servedDeployment.id);
        span.setAttribute('gen_ai.provider.name', this.upstream(end.servedDeployment, served).providerName);
      }
    }
    if (end.responseId !== null) span.setAttribute('gen_ai.response.id', end.responseId);
    if (end.finishReasons !== null) {
      span.setAttribute('gen_ai.response.finish_reasons', end.finishReasons as string[]);
    }
    const record = end.record;
    if (record !== null) {
      span.setAttribute('gen_ai.usage.input_tokens', record.promptTokens);
      span.setAttribute('gen_ai.usage.output_tokens', record.completionTokens);
      span.setAttribute('kaihub.usage.source', record.usageSource);
      span.setAttribute('kaihub.usage.status', record.status);
      // µ₩ are exact in a double up to 2^53 (9 billion won for one call); beyond, the decimal text
      const cost = record.costMicroKrw;
      span.setAttribute(
        'kaihub.cost.micro_krw',
        cost <= MAX_EXACT_MICRO_KRW ? Number(cost) : cost.toString(),
      );
    }
    if (end.errorCode !== null || end.httpStatus >= 400) {
      const type = end.errorCode ?? String(end.httpStatus);
      span.setAttribute('error.type', type);
      // a refusal (4xx) is the hub working as meant; a server span is an error only for 5xx
      if (end.httpStatus >= 500) span.setStatus({ code: SpanStatusCode.ERROR, message: type });
    }
    span.end();
  }
}
