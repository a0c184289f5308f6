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

export { decodeCall, encodeCall } from './call-encoding.mjs';

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
