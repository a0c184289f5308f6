/**
 * Synthetic calls for the tracing tests: an `ObservedCall` as the call layer hands it to the observer,
 * two products (HyperCLOVA X on CLOVA Studio, Solar on an OpenAI-compatible server), the events of a
 * call's stages and attempts, and helpers to read the spans a fake OTLP collector received.
 */
import assert from 'node:assert/strict';
import type { Caller } from '../../src/accounts/key-cache.ts';
import type { UsageRecord } from '../../src/billing/usage-journal.ts';
import type { CallEnd, CallOperation, ObservedCall } from '../../src/calls/observer.ts';
import type { RoutableDeployment, RoutableProduct } from '../../src/catalog/catalog-snapshot.ts';
import { createTracing, type Tracing } from '../../src/observability/tracing.ts';
import { readTracingSettings } from '../../src/observability/tracing-settings.ts';
import type { JsonObject, UpstreamError } from '../../src/providers/adapter.ts';
import type { Attempt } from '../../src/routing/router.ts';
import type { CollectedSpan, FakeOtlpCollector } from '../fakes/otlp-collector.ts';

// OTLP SpanKind and StatusCode numbers, as the collector receives them
export const INTERNAL = 1;
export const SERVER = 2;
export const CLIENT = 3;
export const ERROR = 2;
export const UNSET = 0;

export const INCOMING_TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
export const INCOMING_SPAN_ID = '00f067aa0ba902b7';

// ---- a synthetic call, as the call layer will hand it to the observer ---------------------------------

export const caller: Caller = {
  keyId: 'key_1',
  organizationId: 'org_1',
  organizationName: '한국대학교',
  organizationClass: 'university',
  allowedModels: null,
  fallbackModels: null,
  maxConcurrentRequests: null,
};

export const deploymentA: RoutableDeployment = {
  id: 'dep_a',
  adapter: 'clova-studio',
  baseUrl: 'https://clovastudio.stream.ntruss.com',
  apiKey: 'secret',
  upstreamModel: 'HCX-005',
  weight: 1,
  priority: 0,
  features: 0,
  maxConcurrent: 100,
  target: {
    deploymentId: 'dep_a',
    baseUrl: 'https://clovastudio.stream.ntruss.com',
    apiKey: 'secret',
    upstreamModel: 'HCX-005',
  },
};
export const productA: RoutableProduct = {
  id: 'prod_hcx',
  model: 'hcx-005',
  displayName: 'HyperCLOVA X',
  supplierId: 'sup_naver',
  supplierName: 'NAVER Cloud',
  modality: 'chat',
  residency: 'kr',
  contextWindow: 128_000,
  createdAtSeconds: 0,
  prices: { inputMicroPer1M: 1_250_000_000n, outputMicroPer1M: 5_000_000_000n },
  fallbackModels: ['solar-pro'],
  routingStrategy: 'weighted',
  deployments: [deploymentA],
};
export const deploymentB: RoutableDeployment = {
  id: 'dep_b',
  adapter: 'openai-compatible',
  baseUrl: 'http://127.0.0.1:18081/v1',
  apiKey: null,
  upstreamModel: 'solar-pro2',
  weight: 1,
  priority: 0,
  features: 0,
  maxConcurrent: 100,
  target: {
    deploymentId: 'dep_b',
    baseUrl: 'http://127.0.0.1:18081/v1',
    apiKey: null,
    upstreamModel: 'solar-pro2',
  },
};
export const productB: RoutableProduct = {
  ...productA,
  id: 'prod_solar',
  model: 'solar-pro',
  displayName: 'Solar Pro',
  supplierId: 'sup_upstage',
  supplierName: 'Upstage',
  fallbackModels: [],
  deployments: [deploymentB],
};

export class TestCall implements ObservedCall {
  readonly requestId = `req_${Math.random().toString(36).slice(2)}`;
  readonly caller = caller;
  readonly startedAtMs = Date.now();
  product: RoutableProduct | null = null;
  observation: unknown = undefined;
  upstreamHeaders: Record<string, string> | undefined = undefined;
  /** `upstreamHeaders` as each attempt got them. */
  readonly sentHeaders: (Record<string, string> | undefined)[] = [];

  constructor(
    readonly operation: CallOperation,
    readonly requestedModel: string,
    readonly body: JsonObject,
    readonly stream = false,
    readonly traceparent: string | undefined = undefined,
    readonly tracestate: string | undefined = undefined,
  ) {}
}

export const chatBody: JsonObject = {
  model: 'hcx-005',
  messages: [
    { role: 'system', content: '간결하게 답하세요.' },
    { role: 'user', content: '서울의 인구는?' },
  ],
  max_tokens: 64,
  temperature: 0.2,
  top_p: 0.9,
};

export function record(
  call: TestCall,
  product: RoutableProduct,
  deployment: RoutableDeployment | null,
): UsageRecord {
  return {
    requestId: call.requestId,
    createdAtMs: call.startedAtMs,
    organizationId: caller.organizationId,
    apiKeyId: caller.keyId,
    productId: product.id,
    deploymentId: deployment?.id ?? null,
    model: product.model,
    endpoint: 'chat.completions',
    stream: call.stream,
    status: 'ok',
    httpStatus: 200,
    errorCode: null,
    promptTokens: 12,
    completionTokens: 34,
    usageSource: 'upstream',
    priceInputMicroPer1M: product.prices.inputMicroPer1M,
    priceOutputMicroPer1M: product.prices.outputMicroPer1M,
    costMicroKrw: 185_000n,
    latencyMs: 5,
    ttftMs: null,
    usageNote: null,
  };
}

export function attempt(
  product: RoutableProduct,
  deployment: RoutableDeployment,
  error: UpstreamError | null,
): Attempt {
  return { model: product.model, productId: product.id, deploymentId: deployment.id, error, durationMs: 1 };
}

export function served(call: TestCall, product: RoutableProduct, deployment: RoutableDeployment): CallEnd {
  return {
    httpStatus: 200,
    errorCode: null,
    record: record(call, product, deployment),
    servedProduct: product,
    servedDeployment: deployment,
    responseId: 'chatcmpl-123',
    finishReasons: ['stop'],
  };
}

/** The stages before routing, both passing. */
export function admitAndGuard(t: Tracing, call: TestCall): void {
  t.observer.stageStarted(call, 'admission');
  t.observer.stageEnded(call, 'admission', null);
  t.observer.stageStarted(call, 'guard');
  t.observer.stageEnded(call, 'guard', null);
}

export function startAttempt(
  t: Tracing,
  call: TestCall,
  product: RoutableProduct,
  deployment: RoutableDeployment,
): void {
  t.observer.attemptStarted(call, product, deployment);
  call.sentHeaders.push(call.upstreamHeaders);
}

export function meter(t: Tracing, call: TestCall): void {
  t.observer.stageStarted(call, 'metering');
  t.observer.stageEnded(call, 'metering', null);
}

// ---- helpers on the exported spans ----------------------------------------------------------------------

export function only(spans: CollectedSpan[], name: string): CollectedSpan {
  const found = spans.filter((s) => s.name === name);
  assert.equal(found.length, 1, `one span named "${name}" (got ${spans.map((s) => s.name).join(', ')})`);
  return found[0]!;
}

export function traceparentOf(span: CollectedSpan): string {
  return `00-${span.traceId}-${span.spanId}-01`;
}

/** Exports spans and returns them; fails unless exactly `count` arrived. */
export async function exported(
  t: Tracing,
  collector: FakeOtlpCollector,
  count: number,
): Promise<CollectedSpan[]> {
  await t.forceFlush();
  const spans = await collector.waitForSpans(count);
  assert.equal(spans.length, count, spans.map((s) => s.name).join(', '));
  return spans;
}

export async function startTracing(
  collector: FakeOtlpCollector,
  env: Record<string, string> = {},
): Promise<Tracing> {
  const tracing = await createTracing(
    readTracingSettings({
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
      OTEL_BSP_SCHEDULE_DELAY: '10',
      ...env,
    }),
  );
  assert.ok(tracing);
  return tracing;
}
