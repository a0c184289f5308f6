import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, beforeEach, describe, test } from 'node:test';
import { type FakeOtlpCollector, startFakeOtlpCollector } from '../../test/fakes/otlp-collector.ts';
import {
  admitAndGuard,
  attempt,
  chatBody,
  deploymentA,
  exported,
  INCOMING_SPAN_ID,
  INCOMING_TRACE_ID,
  meter,
  only,
  productA,
  SERVER,
  served,
  startAttempt,
  startTracing,
  TestCall,
} from '../../test/helpers/observed-calls.ts';
import { UpstreamError } from '../providers/adapter.ts';
import { createTracing, type Tracing } from './tracing.ts';
import { readTracingSettings } from './tracing-settings.ts';

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
