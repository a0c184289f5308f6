// Types of call-records.mjs: the compact records of traced calls (observability/call-tracer.ts fills
// them), their encoding for the hand-over to the exporter's thread, and the spans rebuilt from them.
import type { Attributes } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';

/** An attribute value as it crosses the thread boundary (JSON). */
export type RecordAttributeValue = string | number | boolean | string[];

/** What attempt spans on one deployment share, sent once (not with every call). */
export interface UpstreamData {
  /** Small integer the calls' records name it by. */
  id: number;
  /** SpanKind of its attempts: CLIENT, or INTERNAL for an in-process model. */
  kind: number;
  /** The attempt span's name after the operation: the upstream's model, else the product's. */
  spanModel: string;
  providerName: string;
  upstreamModel: string;
  productId: string;
  deploymentId: string;
  supplierId: string;
  /** `server.address` and `server.port`; null when the deployment has no network address. */
  serverAddress: string | null;
  serverPort: number | null;
}

/** A stage span (`admission`, `guard`, `metering`), child of the call's. */
export interface StageData {
  stage: string;
  /** Epoch milliseconds at its start (Date.now(), as the SDK takes a span's start). */
  at: number;
  /** Its length in milliseconds, on the monotonic clock (performance.now()). */
  ms: number;
  /** The stage's error code, null when it passed. */
  error: string | null;
}

/** An upstream attempt's span, child of the call's. */
export interface AttemptData {
  /** Its span id: the upstream got it in `traceparent`. */
  spanId: string;
  /** UpstreamData.id of its deployment. */
  upstream: number;
  at: number;
  ms: number;
  /** `gen_ai.response.time_to_first_chunk`, seconds. */
  ttft: number | null;
  httpStatus: number | null;
  /** `error.type` and the status message of a failed attempt, null when it served. */
  errorType: string | null;
  message: string | null;
  inputTokens: number | null;
  outputTokens: number | null;
}

/** One sampled call: its SERVER span and, in `children`, its stages and attempts in the order they ended. */
export interface CallData {
  traceId: string;
  /** The incoming (remote) parent's span id; null for a new trace. */
  parentSpanId: string | null;
  /** The serialised W3C tracestate every span of the call carries. */
  traceState: string | null;
  operation: string;
  /** The requested model, bounded: the call span's name after the operation, and its request model. */
  model: string;
  /** Attributes the sampler added, if any. */
  samplerAttributes: Attributes | null;
  requestId: string;
  organizationId: string;
  apiKeyId: string;
  stream: boolean;
  /** The request parameters the conventions record (gen-ai-attributes.ts). */
  request: Record<string, RecordAttributeValue> | null;
  /** `gen_ai.input.messages` (content opt-in) and how many messages it left out. */
  inputMessages: string | null;
  messagesLeftOut: number;
  /** Epoch milliseconds: the call's arrival and its end. */
  startMs: number;
  endMs: number;
  ttft: number | null;
  httpStatus: number;
  productId: string | null;
  servedProductId: string | null;
  servedModel: string | null;
  /** UpstreamData.id of the deployment that served. */
  servedUpstream: number | null;
  responseId: string | null;
  finishReasons: readonly string[] | null;
  inputTokens: number | null;
  outputTokens: number | null;
  usageSource: string | null;
  usageStatus: string | null;
  costMicroKrw: number | string | null;
  /** `error.type` of a call that failed or was refused; its status is ERROR for a 5xx. */
  errorType: string | null;
  children: (StageData | AttemptData)[];
}

/** A call record as it crosses to the exporter's thread: its fields in a fixed order (JSON text). */
export type EncodedCall = unknown[];

/** The record as an array of its fields (children included), for JSON.stringify. */
export function encodeCall(call: CallData): EncodedCall;

/** The record back from `encodeCall`'s array (once parsed from JSON). */
export function decodeCall(encoded: EncodedCall): CallData;

export interface RebuildContext {
  resource: Resource;
  instrumentationScope: ReadableSpan['instrumentationScope'];
  /** Ids of the spans the event loop did not need to know: the call's and its stages'. */
  newSpanId: () => string;
}

/**
 * Appends the spans of one call to `out`: its stages and attempts in the order they ended, then the
 * call's span (the order the SDK ended them in). An attempt whose deployment is unknown is left out.
 * Returns how many spans were appended.
 */
export function appendCallSpans(
  out: ReadableSpan[],
  call: CallData,
  upstreams: ReadonlyMap<number, UpstreamData>,
  context: RebuildContext,
): number;
