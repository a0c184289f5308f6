import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, beforeEach, describe, test } from 'node:test';
import {
  type CollectedSpan,
  type FakeOtlpCollector,
  startFakeOtlpCollector,
} from '../../test/fakes/otlp-collector.ts';
import type { Caller } from '../accounts/key-cache.ts';
import type { UsageRecord } from '../billing/usage-journal.ts';
import type { CallEnd, CallOperation, ObservedCall } from '../calls/observer.ts';
import type { RoutableDeployment, RoutableProduct } from '../catalog/catalog-snapshot.ts';
import { type JsonObject, UpstreamError } from '../providers/adapter.ts';
import type { Attempt } from '../routing/router.ts';
import { createTracing, type Tracing } from './tracing.ts';
import { readTracingSettings } from './tracing-settings.ts';

// OTLP SpanKind and StatusCode numbers, as the collector receives them
const INTERNAL = 1;
const SERVER = 2;
const CLIENT = 3;
const ERROR = 2;
const UNSET = 0;

const INCOMING_TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const INCOMING_SPAN_ID = '00f067aa0ba902b7';

// ---- a synthetic call, as the call layer will hand it to the observer ---------------------------------

const caller: Caller = {
  keyId: 'key_1',
  organizationId: 'org_1',
  organizationName: '한국대학교',
  organizationClass: 'university',
  allowedModels: null,
  fallbackModels: null,
};

const deploymentA: RoutableDeployment = {
  id: 'dep_a',
  adapter: 'clova-studio',
  baseUrl: 'https://clovastudio.stream.ntruss.com',
  apiKey: 'secret',
  upstreamModel: 'HCX-005',
  weight: 1,
  priority: 0,
};
const productA: RoutableProduct = {
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
const deploymentB: RoutableDeployment = {
  id: 'dep_b',
  adapter: 'openai-compatible',
  baseUrl: 'http://127.0.0.1:18081/v1',
  apiKey: null,
  upstreamModel: 'solar-pro2',
  weight: 1,
  priority: 0,
};
const productB: RoutableProduct = {
  ...productA,
  id: 'prod_solar',
  model: 'solar-pro',
  displayName: 'Solar Pro',
  supplierId: 'sup_upstage',
  supplierName: 'Upstage',
  fallbackModels: [],
  deployments: [deploymentB],
};

class TestCall implements ObservedCall {
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

const chatBody: JsonObject = {
  model: 'hcx-005',
  messages: [
    { role: 'system', content: '간결하게 답하세요.' },
    { role: 'user', content: '서울의 인구는?' },
  ],
  max_tokens: 64,
  temperature: 0.2,
  top_p: 0.9,
};

function record(
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
  };
}

function attempt(
  product: RoutableProduct,
  deployment: RoutableDeployment,
  error: UpstreamError | null,
): Attempt {
  return { model: product.model, productId: product.id, deploymentId: deployment.id, error, durationMs: 1 };
}

function served(call: TestCall, product: RoutableProduct, deployment: RoutableDeployment): CallEnd {
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
function admitAndGuard(t: Tracing, call: TestCall): void {
  t.observer.stageStarted(call, 'admission');
  t.observer.stageEnded(call, 'admission', null);
  t.observer.stageStarted(call, 'guard');
  t.observer.stageEnded(call, 'guard', null);
}

function startAttempt(
  t: Tracing,
  call: TestCall,
  product: RoutableProduct,
  deployment: RoutableDeployment,
): void {
  t.observer.attemptStarted(call, product, deployment);
  call.sentHeaders.push(call.upstreamHeaders);
}

function meter(t: Tracing, call: TestCall): void {
  t.observer.stageStarted(call, 'metering');
  t.observer.stageEnded(call, 'metering', null);
}

// ---- helpers on the exported spans ----------------------------------------------------------------------

function only(spans: CollectedSpan[], name: string): CollectedSpan {
  const found = spans.filter((s) => s.name === name);
  assert.equal(found.length, 1, `one span named "${name}" (got ${spans.map((s) => s.name).join(', ')})`);
  return found[0]!;
}

function traceparentOf(span: CollectedSpan): string {
  return `00-${span.traceId}-${span.spanId}-01`;
}

/** Exports spans and returns them; fails unless exactly `count` arrived. */
async function exported(t: Tracing, collector: FakeOtlpCollector, count: number): Promise<CollectedSpan[]> {
  await t.forceFlush();
  const spans = await collector.waitForSpans(count);
  assert.equal(spans.length, count, spans.map((s) => s.name).join(', '));
  return spans;
}

async function startTracing(
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

// ---- the span trees, in both OTLP/HTTP encodings ---------------------------------------------------------

for (const protocol of ['http/protobuf', 'http/json'] as const) {
  describe(`span trees over OTLP ${protocol}`, () => {
    let collector: FakeOtlpCollector;
    let tracing: Tracing;
    before(async () => {
      collector = await startFakeOtlpCollector();
      tracing = await startTracing(collector, { OTEL_EXPORTER_OTLP_PROTOCOL: protocol });
    });
    after(async () => {
      await tracing.shutdown();
      await collector.close();
    });
    beforeEach(() => collector.clear());

    test('a plain call: SERVER span with admission, guard, one CLIENT attempt and metering', async () => {
      const call = new TestCall('chat', 'hcx-005', chatBody);
      tracing.observer.callStarted(call);
      call.product = productA;
      admitAndGuard(tracing, call);
      startAttempt(tracing, call, productA, deploymentA);
      tracing.observer.attemptEnded(call, attempt(productA, deploymentA, null), {
        promptTokens: 12,
        completionTokens: 34,
      });
      meter(tracing, call);
      tracing.observer.callEnded(call, served(call, productA, deploymentA));
      assert.equal(call.observation, undefined, 'the observer lets go of its spans at the end');

      const spans = await exported(tracing, collector, 5);
      assert.equal(
        collector.exports[0]!.contentType,
        protocol === 'http/json' ? 'application/json' : 'application/x-protobuf',
      );
      const root = only(spans, 'chat hcx-005');
      assert.equal(root.kind, SERVER);
      assert.equal(root.parentSpanId, '', 'no incoming traceparent: a root span');
      assert.equal(root.status.code, UNSET);
      assert.equal(root.scope, 'kaihub');
      assert.equal(root.resource['service.name'], 'kaihub');
      assert.ok(root.startTimeUnixNano <= BigInt(call.startedAtMs + 1) * 1_000_000n, 'starts at the arrival');
      assert.deepEqual(
        {
          ...root.attributes,
          'kaihub.request.id': root.attributes['kaihub.request.id'] === call.requestId,
        },
        {
          'gen_ai.operation.name': 'chat',
          'gen_ai.request.model': 'hcx-005',
          'gen_ai.request.max_tokens': 64,
          'gen_ai.request.temperature': 0.2,
          'gen_ai.request.top_p': 0.9,
          'gen_ai.response.model': 'hcx-005',
          'gen_ai.response.id': 'chatcmpl-123',
          'gen_ai.response.finish_reasons': ['stop'],
          'gen_ai.provider.name': 'naver.clova_studio',
          'gen_ai.usage.input_tokens': 12,
          'gen_ai.usage.output_tokens': 34,
          'http.response.status_code': 200,
          'kaihub.request.id': true,
          'kaihub.organization.id': 'org_1',
          'kaihub.api_key.id': 'key_1',
          'kaihub.product.id': 'prod_hcx',
          'kaihub.served_product.id': 'prod_hcx',
          'kaihub.deployment.id': 'dep_a',
          'kaihub.usage.source': 'upstream',
          'kaihub.usage.status': 'ok',
          'kaihub.cost.micro_krw': 185_000,
        },
      );
      for (const name of ['admission', 'guard', 'metering']) {
        const stage = only(spans, name);
        assert.equal(stage.kind, INTERNAL);
        assert.equal(stage.parentSpanId, root.spanId);
        assert.equal(stage.traceId, root.traceId);
        assert.equal(stage.status.code, UNSET);
      }
      const upstream = only(spans, 'chat HCX-005');
      assert.equal(upstream.kind, CLIENT);
      assert.equal(upstream.parentSpanId, root.spanId);
      assert.equal(upstream.status.code, UNSET);
      assert.deepEqual(upstream.attributes, {
        'gen_ai.operation.name': 'chat',
        'gen_ai.provider.name': 'naver.clova_studio',
        'gen_ai.request.model': 'HCX-005',
        'gen_ai.usage.input_tokens': 12,
        'gen_ai.usage.output_tokens': 34,
        'server.address': 'clovastudio.stream.ntruss.com',
        'server.port': 443,
        'kaihub.product.id': 'prod_hcx',
        'kaihub.deployment.id': 'dep_a',
        'kaihub.supplier.id': 'sup_naver',
      });
      assert.deepEqual(call.sentHeaders, [{ traceparent: traceparentOf(upstream) }]);
      assert.equal(root.attributes['gen_ai.input.messages'], undefined, 'no prompt text without the opt-in');
    });

    test('a streamed call: the first token is timed on the call and on its attempt', async () => {
      const call = new TestCall('chat', 'hcx-005', { ...chatBody, stream: true }, true);
      tracing.observer.callStarted(call);
      call.product = productA;
      admitAndGuard(tracing, call);
      startAttempt(tracing, call, productA, deploymentA);
      await new Promise((resolve) => setTimeout(resolve, 5));
      tracing.observer.firstToken(call);
      tracing.observer.attemptEnded(call, attempt(productA, deploymentA, null), {
        promptTokens: 12,
        completionTokens: 34,
      });
      meter(tracing, call);
      tracing.observer.callEnded(call, served(call, productA, deploymentA));

      const spans = await exported(tracing, collector, 5);
      const root = only(spans, 'chat hcx-005');
      const upstream = only(spans, 'chat HCX-005');
      assert.equal(root.attributes['gen_ai.request.stream'], true);
      const callTtft = root.attributes['gen_ai.response.time_to_first_chunk'] as number;
      const attemptTtft = upstream.attributes['gen_ai.response.time_to_first_chunk'] as number;
      assert.ok(attemptTtft >= 0.004 && attemptTtft < 5, `attempt's time to first chunk ${attemptTtft} s`);
      assert.ok(callTtft >= attemptTtft - 0.002, `the call's (${callTtft} s) counts from arrival`);
      assert.equal(upstream.parentSpanId, root.spanId);
      // the SDK ends a span given its start time (the arrival) at Date.now(), whole milliseconds
      assert.ok(upstream.endTimeUnixNano <= root.endTimeUnixNano + 1_000_000n);
    });

    test('retried then fallen back: two failed CLIENT spans on A, one served on B, traceparent per attempt', async () => {
      const call = new TestCall(
        'chat',
        'hcx-005',
        chatBody,
        false,
        `00-${INCOMING_TRACE_ID}-${INCOMING_SPAN_ID}-01`,
        'vendor=abc',
      );
      tracing.observer.callStarted(call);
      call.product = productA;
      admitAndGuard(tracing, call);
      for (let i = 0; i < 2; i++) {
        startAttempt(tracing, call, productA, deploymentA);
        const failure = new UpstreamError('http', 'fake upstream error 503 from 10.0.0.7', { status: 503 });
        tracing.observer.attemptEnded(call, attempt(productA, deploymentA, failure), null);
      }
      startAttempt(tracing, call, productB, deploymentB);
      tracing.observer.attemptEnded(call, attempt(productB, deploymentB, null), {
        promptTokens: 12,
        completionTokens: 34,
      });
      meter(tracing, call);
      tracing.observer.callEnded(call, served(call, productB, deploymentB));

      const spans = await exported(tracing, collector, 7);
      const root = only(spans, 'chat hcx-005');
      assert.equal(root.traceId, INCOMING_TRACE_ID, "the client's trace goes on");
      assert.equal(root.parentSpanId, INCOMING_SPAN_ID, 'the call is a child of the remote span');
      assert.equal(root.traceState, 'vendor=abc');
      for (const s of spans) assert.equal(s.traceId, INCOMING_TRACE_ID);
      assert.equal(root.attributes['kaihub.product.id'], 'prod_hcx');
      assert.equal(root.attributes['kaihub.served_product.id'], 'prod_solar');
      assert.equal(root.attributes['kaihub.deployment.id'], 'dep_b');
      assert.equal(root.attributes['gen_ai.response.model'], 'solar-pro');
      assert.equal(root.attributes['gen_ai.provider.name'], 'upstage');
      assert.equal(root.status.code, UNSET, 'the call succeeded');

      const failed = spans.filter((s) => s.name === 'chat HCX-005');
      assert.equal(failed.length, 2);
      for (const f of failed) {
        assert.equal(f.kind, CLIENT);
        assert.equal(f.parentSpanId, root.spanId);
        assert.equal(f.status.code, ERROR);
        assert.equal(f.status.message, 'upstream http 503');
        assert.equal(f.attributes['error.type'], '503');
        assert.equal(f.attributes['http.response.status_code'], 503);
        assert.equal(f.attributes['gen_ai.usage.input_tokens'], undefined);
      }
      const fallback = only(spans, 'chat solar-pro2');
      assert.equal(fallback.kind, CLIENT);
      assert.equal(fallback.parentSpanId, root.spanId);
      assert.equal(fallback.status.code, UNSET);
      assert.equal(fallback.attributes['gen_ai.provider.name'], 'upstage');
      assert.equal(fallback.attributes['server.address'], '127.0.0.1');
      assert.equal(fallback.attributes['server.port'], 18081);
      assert.equal(fallback.attributes['kaihub.product.id'], 'prod_solar');
      assert.equal(fallback.attributes['error.type'], undefined);

      // each attempt carried its own span as the parent (the spans are exported in the order they
      // ended), and the client's tracestate
      assert.deepEqual(
        call.sentHeaders,
        [failed[0]!, failed[1]!, fallback].map((s) => ({
          traceparent: traceparentOf(s),
          tracestate: 'vendor=abc',
        })),
      );
    });

    test('a refused call: admission says rate_limited, the call ends 429 with nothing metered', async () => {
      const call = new TestCall('chat', 'hcx-005', chatBody);
      tracing.observer.callStarted(call);
      call.product = productA;
      tracing.observer.stageStarted(call, 'admission');
      tracing.observer.stageEnded(call, 'admission', 'rate_limited');
      tracing.observer.callEnded(call, {
        httpStatus: 429,
        errorCode: 'rate_limited',
        record: null,
        servedProduct: null,
        servedDeployment: null,
        responseId: null,
        finishReasons: null,
      });

      const spans = await exported(tracing, collector, 2);
      const root = only(spans, 'chat hcx-005');
      const admission = only(spans, 'admission');
      assert.equal(admission.parentSpanId, root.spanId);
      assert.equal(admission.status.code, ERROR);
      assert.equal(admission.status.message, 'rate_limited');
      assert.equal(admission.attributes['error.type'], 'rate_limited');
      assert.equal(root.attributes['error.type'], 'rate_limited');
      assert.equal(root.attributes['http.response.status_code'], 429);
      assert.equal(root.status.code, UNSET, 'a refusal is no server error');
      for (const key of [
        'kaihub.cost.micro_krw',
        'gen_ai.usage.input_tokens',
        'gen_ai.response.model',
        'gen_ai.provider.name',
      ]) {
        assert.equal(root.attributes[key], undefined, key);
      }
    });

    test('an upstream failure that ends the call: 502 is an error on the SERVER span', async () => {
      const call = new TestCall('embeddings', 'hcx-emb', { model: 'hcx-emb', input: ['a'], dimensions: 256 });
      tracing.observer.callStarted(call);
      startAttempt(tracing, call, productB, deploymentB);
      tracing.observer.attemptEnded(
        call,
        attempt(productB, deploymentB, new UpstreamError('timeout', 'timed out')),
        null,
      );
      tracing.observer.callEnded(call, {
        httpStatus: 504,
        errorCode: 'upstream_timeout',
        record: null,
        servedProduct: null,
        servedDeployment: null,
        responseId: null,
        finishReasons: null,
      });
      const spans = await exported(tracing, collector, 2);
      const root = only(spans, 'embeddings hcx-emb');
      assert.equal(root.status.code, ERROR);
      assert.equal(root.attributes['error.type'], 'upstream_timeout');
      assert.equal(root.attributes['gen_ai.embeddings.dimension.count'], 256);
      const upstream = only(spans, 'embeddings solar-pro2');
      assert.equal(upstream.attributes['error.type'], 'timeout');
      assert.equal(upstream.status.message, 'upstream timeout');
    });
  });
}

// ---- sampling, content, configuration ---------------------------------------------------------------------

describe('tracing choices', () => {
  let collector: FakeOtlpCollector;
  before(async () => {
    collector = await startFakeOtlpCollector();
  });
  after(() => collector.close());
  beforeEach(() => collector.clear());

  /** The plain call's whole sequence. */
  function plainCall(t: Tracing, call: TestCall): void {
    t.observer.callStarted(call);
    admitAndGuard(t, call);
    startAttempt(t, call, productA, deploymentA);
    t.observer.attemptEnded(call, attempt(productA, deploymentA, null), null);
    meter(t, call);
    t.observer.callEnded(call, served(call, productA, deploymentA));
  }

  test('a sampled-out call exports nothing but still passes the trace upstream, marked not sampled', async () => {
    const tracing = await startTracing(collector, { OTEL_TRACES_SAMPLER: 'always_off' });
    const call = new TestCall(
      'chat',
      'hcx-005',
      chatBody,
      false,
      `00-${INCOMING_TRACE_ID}-${INCOMING_SPAN_ID}-01`,
    );
    plainCall(tracing, call);
    assert.equal(call.observation, undefined);
    const [headers] = call.sentHeaders;
    assert.match(headers!.traceparent!, new RegExp(`^00-${INCOMING_TRACE_ID}-[0-9a-f]{16}-00$`));
    assert.notEqual(headers!.traceparent!.split('-')[2], INCOMING_SPAN_ID);
    await tracing.shutdown();
    assert.equal(collector.spans.length, 0);
  });

  test('the default sampler follows the client: a traceparent marked not sampled is not recorded', async () => {
    const tracing = await startTracing(collector);
    plainCall(
      tracing,
      new TestCall('chat', 'hcx-005', chatBody, false, `00-${INCOMING_TRACE_ID}-${INCOMING_SPAN_ID}-00`),
    );
    plainCall(tracing, new TestCall('chat', 'hcx-005', chatBody, false, 'garbage'));
    await tracing.shutdown();
    assert.equal(
      collector.spans.length,
      5,
      'only the call with an unreadable traceparent (a new root) is kept',
    );
    assert.ok(collector.spans.every((s) => s.traceId !== INCOMING_TRACE_ID));
    assert.equal(only(collector.spans, 'chat hcx-005').parentSpanId, '');
  });

  test('KAIHUB_TRACE_CONTENT=true: the prompt as gen_ai.input.messages, and the upstream error text', async () => {
    const tracing = await startTracing(collector, {
      KAIHUB_TRACE_CONTENT: 'true',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    });
    const call = new TestCall('chat', 'hcx-005', chatBody);
    tracing.observer.callStarted(call);
    startAttempt(tracing, call, productA, deploymentA);
    tracing.observer.attemptEnded(
      call,
      attempt(productA, deploymentA, new UpstreamError('http', 'bad prompt', { status: 400 })),
      null,
    );
    tracing.observer.callEnded(call, {
      ...served(call, productA, deploymentA),
      httpStatus: 400,
      errorCode: 'upstream_error',
      record: null,
    });
    const spans = await exported(tracing, collector, 2);
    await tracing.shutdown();
    const root = only(spans, 'chat hcx-005');
    assert.deepEqual(JSON.parse(root.attributes['gen_ai.input.messages'] as string), [
      { role: 'system', parts: [{ type: 'text', content: '간결하게 답하세요.' }] },
      { role: 'user', parts: [{ type: 'text', content: '서울의 인구는?' }] },
    ]);
    assert.equal(only(spans, 'chat HCX-005').status.message, 'upstream http 400: bad prompt');
  });

  test("a client's made-up model name is cut in the span; events of an unobserved call do nothing", async () => {
    const tracing = await startTracing(collector);
    const long = 'm'.repeat(10_000);
    plainCall(tracing, new TestCall('chat', long, { ...chatBody, model: long }));
    const stray = new TestCall('chat', 'hcx-005', chatBody);
    tracing.observer.stageStarted(stray, 'guard');
    tracing.observer.stageEnded(stray, 'guard', 'blocked');
    tracing.observer.attemptStarted(stray, productA, deploymentA);
    tracing.observer.firstToken(stray);
    tracing.observer.attemptEnded(stray, attempt(productA, deploymentA, null), null);
    tracing.observer.callEnded(stray, served(stray, productA, deploymentA));
    assert.equal(stray.upstreamHeaders, undefined);
    const spans = await exported(tracing, collector, 5);
    await tracing.shutdown();
    const root = spans.find((s) => s.kind === SERVER)!;
    assert.equal(root.name, `chat ${'m'.repeat(128)}…`);
    assert.equal(root.attributes['gen_ai.request.model'], `${'m'.repeat(128)}…`);
  });

  test('exporter headers and resource attributes come from the OTEL_* variables', async () => {
    const tracing = await startTracing(collector, {
      OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20abc,x-tenant=one',
      OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x-tenant=two',
      OTEL_SERVICE_NAME: 'kaihub-seoul',
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=staging,service.name=ignored',
    });
    plainCall(tracing, new TestCall('chat', 'hcx-005', chatBody));
    const spans = await exported(tracing, collector, 5);
    await tracing.shutdown();
    assert.equal(collector.exports[0]!.headers.authorization, 'Bearer abc');
    assert.equal(collector.exports[0]!.headers['x-tenant'], 'two');
    assert.equal(spans[0]!.resource['service.name'], 'kaihub-seoul');
    assert.equal(spans[0]!.resource['deployment.environment.name'], 'staging');
    assert.equal(spans[0]!.resource['telemetry.sdk.language'], 'nodejs');
    assert.match(String(spans[0]!.resource['service.instance.id']), /^[0-9a-f-]{36}$/);
  });

  test('a collector that cannot be reached does not disturb calls', async () => {
    const tracing = await createTracing(
      readTracingSettings({
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:9/v1/traces',
        OTEL_EXPORTER_OTLP_TIMEOUT: '200',
      }),
    );
    assert.ok(tracing);
    const call = new TestCall('chat', 'hcx-005', chatBody);
    plainCall(tracing, call);
    assert.equal(call.sentHeaders.length, 1);
    await tracing.shutdown();
  });
});

test('tracing off: null settings give no tracing, and starting the hub loads no OpenTelemetry SDK', async () => {
  assert.equal(readTracingSettings({}), null);
  assert.equal(await createTracing(null), null);
  // a fresh process: what the composition root imports when no OTLP endpoint is set
  const script = `
    import { createRequire } from 'node:module';
    const { loadConfig } = await import('./src/config.ts');
    const { createTracing } = await import('./src/observability/tracing.ts');
    await import('./src/app.ts');
    const tracing = await createTracing(loadConfig({}).tracing);
    const loaded = Object.keys(createRequire(import.meta.url).cache).filter((f) => f.includes('@opentelemetry'));
    process.stdout.write(JSON.stringify({ tracing, loaded }));
  `;
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: new URL('../..', import.meta.url).pathname,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '' },
  });
  assert.equal(child.status, 0, child.stderr);
  const { tracing, loaded } = JSON.parse(child.stdout) as { tracing: null; loaded: string[] };
  assert.equal(tracing, null);
  // prom-client brings the API (for exemplars); no SDK, exporter, resource or core package is loaded
  assert.deepEqual(
    loaded.filter((f) => !f.includes('/@opentelemetry/api/')),
    [],
  );
});
