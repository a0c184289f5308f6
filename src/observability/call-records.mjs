// On the exporter's thread: the spans of a traced call, rebuilt from the compact record the event loop
// made of it (call-tracer.ts; the shapes are in span-rebuild.d.mts), in the read-only form the SDK's
// spans have once ended, for the official OTLP exporter. What they hold is what the SDK's spans held
// when the event loop made them itself (decision 0009): names, kinds, links, times, status and
// attributes, set in the same order. Plain JavaScript, so the thread starts without the TypeScript loader.
import { addHrTimes, hrTimeDuration, isAttributeValue, millisToHrTime } from '@opentelemetry/core';

// @opentelemetry/api's SpanKind and SpanStatusCode
const INTERNAL = 0;
const SERVER = 1;
const UNSET = Object.freeze({ code: 0 });
const ERROR = 2;
const SAMPLED = 1;
const NO_LINKS = Object.freeze([]);
const NO_EVENTS = Object.freeze([]);

// ---- the hand-over encoding ------------------------------------------------------------------------
// encodeCall and decodeCall list the same fields in the same order; a test sends every field through.

// Times go as integers, which JSON writes faster than fractions (and shorter): a child's start in
// milliseconds after the call's, lengths in nanoseconds (the SDK rounds them to nanoseconds too).
function encodeChild(c, startMs) {
  const at = c.at - startMs;
  const ns = Math.round(c.ms * 1e6);
  return typeof c.stage === 'string'
    ? [c.stage, at, ns, c.error]
    : [
        c.spanId,
        c.upstream,
        at,
        ns,
        c.ttft,
        c.httpStatus,
        c.errorType,
        c.message,
        c.inputTokens,
        c.outputTokens,
      ];
}

function decodeChild(t, startMs) {
  if (t.length === 4) return { stage: t[0], at: startMs + t[1], ms: t[2] / 1e6, error: t[3] };
  return {
    spanId: t[0],
    upstream: t[1],
    at: startMs + t[2],
    ms: t[3] / 1e6,
    ttft: t[4],
    httpStatus: t[5],
    errorType: t[6],
    message: t[7],
    inputTokens: t[8],
    outputTokens: t[9],
  };
}

export function encodeCall(r) {
  const children = new Array(r.children.length);
  for (let i = 0; i < children.length; i++) children[i] = encodeChild(r.children[i], r.startMs);
  return [
    r.traceId,
    r.parentSpanId,
    r.traceState,
    r.operation,
    r.model,
    r.samplerAttributes,
    r.requestId,
    r.organizationId,
    r.apiKeyId,
    r.stream,
    r.request,
    r.inputMessages,
    r.messagesLeftOut,
    r.startMs,
    r.endMs - r.startMs,
    r.ttft,
    r.httpStatus,
    r.productId,
    r.servedProductId,
    r.servedModel,
    r.servedUpstream,
    r.responseId,
    r.finishReasons,
    r.inputTokens,
    r.outputTokens,
    r.usageSource,
    r.usageStatus,
    r.costMicroKrw,
    r.errorType,
    children,
  ];
}

export function decodeCall(t) {
  const startMs = t[13];
  return {
    traceId: t[0],
    parentSpanId: t[1],
    traceState: t[2],
    operation: t[3],
    model: t[4],
    samplerAttributes: t[5],
    requestId: t[6],
    organizationId: t[7],
    apiKeyId: t[8],
    stream: t[9],
    request: t[10],
    inputMessages: t[11],
    messagesLeftOut: t[12],
    startMs,
    endMs: startMs + t[14],
    ttft: t[15],
    httpStatus: t[16],
    productId: t[17],
    servedProductId: t[18],
    servedModel: t[19],
    servedUpstream: t[20],
    responseId: t[21],
    finishReasons: t[22],
    inputTokens: t[23],
    outputTokens: t[24],
    usageSource: t[25],
    usageStatus: t[26],
    costMicroKrw: t[27],
    errorType: t[28],
    children: t[29].map((c) => decodeChild(c, startMs)),
  };
}

// ---- the spans rebuilt ------------------------------------------------------------------------------

/** A serialised tracestate as the exporter reads it (`traceState.serialize()`). */
class SerializedTraceState {
  constructor(text) {
    this.text = text;
  }
  serialize() {
    return this.text;
  }
}

/** An ended span, as sdk-trace-base's ReadableSpan. */
class RebuiltSpan {
  constructor(name, kind, spanContext, parentSpanContext, startTime, endTime, status, attributes, ctx) {
    this.name = name;
    this.kind = kind;
    this.context = spanContext;
    this.parentSpanContext = parentSpanContext;
    this.startTime = startTime;
    this.endTime = endTime;
    // as the SDK's end(): an end before the start is the start
    let duration = hrTimeDuration(startTime, endTime);
    if (duration[0] < 0) {
      this.endTime = startTime.slice();
      duration = [0, 0];
    }
    this.duration = duration;
    this.status = status;
    this.attributes = attributes;
    this.links = NO_LINKS;
    this.events = NO_EVENTS;
    this.ended = true;
    this.resource = ctx.resource;
    this.instrumentationScope = ctx.instrumentationScope;
    this.droppedAttributesCount = 0;
    this.droppedEventsCount = 0;
    this.droppedLinksCount = 0;
  }
  spanContext() {
    return this.context;
  }
}

/** As the SDK's setAttribute: no value, or one OTLP cannot carry, sets nothing. */
function set(attributes, key, value) {
  if (value != null && isAttributeValue(value)) attributes[key] = value;
}

function setAll(attributes, values) {
  if (values === null) return;
  for (const key of Object.keys(values)) set(attributes, key, values[key]);
}

/** Start, and end after `ms` measured on the monotonic clock, as the SDK times a span it started. */
function childTimes(at, ms) {
  const start = millisToHrTime(at);
  return [start, addHrTimes(start, millisToHrTime(ms))];
}

function errorStatus(message) {
  return { code: ERROR, message };
}

export function appendCallSpans(out, call, upstreams, ctx) {
  const traceState = call.traceState === null ? undefined : new SerializedTraceState(call.traceState);
  const callContext = { traceId: call.traceId, spanId: ctx.newSpanId(), traceFlags: SAMPLED, traceState };
  // the call's span is the children's local parent
  const parentOfChildren = {
    traceId: call.traceId,
    spanId: callContext.spanId,
    traceFlags: SAMPLED,
    traceState,
    isRemote: false,
  };
  let appended = 0;
  for (const child of call.children) {
    const [start, end] = childTimes(child.at, child.ms);
    if (typeof child.stage === 'string') {
      const attributes = {};
      let status = UNSET;
      if (child.error !== null) {
        set(attributes, 'error.type', child.error);
        status = errorStatus(child.error);
      }
      const context = { traceId: call.traceId, spanId: ctx.newSpanId(), traceFlags: SAMPLED, traceState };
      out.push(
        new RebuiltSpan(
          child.stage,
          INTERNAL,
          context,
          parentOfChildren,
          start,
          end,
          status,
          attributes,
          ctx,
        ),
      );
      appended++;
      continue;
    }
    const upstream = upstreams.get(child.upstream);
    if (upstream === undefined) continue;
    const attributes = {};
    set(attributes, 'gen_ai.operation.name', call.operation);
    set(attributes, 'gen_ai.provider.name', upstream.providerName);
    set(attributes, 'gen_ai.request.model', upstream.upstreamModel);
    set(attributes, 'kaihub.product.id', upstream.productId);
    set(attributes, 'kaihub.deployment.id', upstream.deploymentId);
    set(attributes, 'kaihub.supplier.id', upstream.supplierId);
    if (upstream.serverAddress !== null) {
      set(attributes, 'server.address', upstream.serverAddress);
      set(attributes, 'server.port', upstream.serverPort);
    }
    set(attributes, 'gen_ai.response.time_to_first_chunk', child.ttft);
    set(attributes, 'http.response.status_code', child.httpStatus);
    let status = UNSET;
    if (child.errorType !== null) {
      set(attributes, 'error.type', child.errorType);
      status = errorStatus(child.message);
    }
    set(attributes, 'gen_ai.usage.input_tokens', child.inputTokens);
    set(attributes, 'gen_ai.usage.output_tokens', child.outputTokens);
    const context = { traceId: call.traceId, spanId: child.spanId, traceFlags: SAMPLED, traceState };
    out.push(
      new RebuiltSpan(
        `${call.operation} ${upstream.spanModel}`,
        upstream.kind,
        context,
        parentOfChildren,
        start,
        end,
        status,
        attributes,
        ctx,
      ),
    );
    appended++;
  }

  const attributes = {};
  set(attributes, 'gen_ai.operation.name', call.operation);
  set(attributes, 'gen_ai.request.model', call.model);
  setAll(attributes, call.samplerAttributes);
  set(attributes, 'kaihub.request.id', call.requestId);
  set(attributes, 'kaihub.organization.id', call.organizationId);
  set(attributes, 'kaihub.api_key.id', call.apiKeyId);
  if (call.stream) set(attributes, 'gen_ai.request.stream', true);
  setAll(attributes, call.request);
  set(attributes, 'gen_ai.input.messages', call.inputMessages);
  if (call.messagesLeftOut > 0) set(attributes, 'kaihub.content.messages_left_out', call.messagesLeftOut);
  set(attributes, 'gen_ai.response.time_to_first_chunk', call.ttft);
  set(attributes, 'http.response.status_code', call.httpStatus);
  set(attributes, 'kaihub.product.id', call.productId);
  if (call.servedProductId !== null) {
    set(attributes, 'kaihub.served_product.id', call.servedProductId);
    set(attributes, 'gen_ai.response.model', call.servedModel);
    const served = call.servedUpstream === null ? undefined : upstreams.get(call.servedUpstream);
    if (served !== undefined) {
      set(attributes, 'kaihub.deployment.id', served.deploymentId);
      set(attributes, 'gen_ai.provider.name', served.providerName);
    }
  }
  set(attributes, 'gen_ai.response.id', call.responseId);
  set(attributes, 'gen_ai.response.finish_reasons', call.finishReasons);
  if (call.inputTokens !== null) {
    set(attributes, 'gen_ai.usage.input_tokens', call.inputTokens);
    set(attributes, 'gen_ai.usage.output_tokens', call.outputTokens);
    set(attributes, 'kaihub.usage.source', call.usageSource);
    set(attributes, 'kaihub.usage.status', call.usageStatus);
    set(attributes, 'kaihub.cost.micro_krw', call.costMicroKrw);
  }
  let status = UNSET;
  if (call.errorType !== null) {
    set(attributes, 'error.type', call.errorType);
    // a refusal (4xx) is the hub working as meant; a server span is an error only for 5xx
    if (call.httpStatus >= 500) status = errorStatus(call.errorType);
  }
  const parent =
    call.parentSpanId === null
      ? undefined
      : // extracted from the request's traceparent: a remote parent
        { traceId: call.traceId, spanId: call.parentSpanId, traceFlags: SAMPLED, isRemote: true };
  out.push(
    new RebuiltSpan(
      `${call.operation} ${call.model}`,
      SERVER,
      callContext,
      parent,
      millisToHrTime(call.startMs),
      millisToHrTime(call.endMs),
      status,
      attributes,
      ctx,
    ),
  );
  return appended + 1;
}
