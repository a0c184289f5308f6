import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, beforeEach, describe, test } from 'node:test';
import { ROOT_CONTEXT, type SpanContext, trace } from '@opentelemetry/api';
import { TraceState, W3CTraceContextPropagator } from '@opentelemetry/core';
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
  served,
  startAttempt,
  TestCall,
} from '../../test/helpers/observed-calls.ts';
import { createLogger } from './logger.ts';
import { createTracing, type Tracing } from './tracing.ts';
import { readTracingSettings } from './tracing-settings.ts';

// ---- what the call tracer tells upstreams, and how its export queue is bounded --------------------------

/** What core's W3C propagator injects for a span context: the reference for the tracer's own format. */
function injected(context: SpanContext): Record<string, string> {
  const headers: Record<string, string> = {};
  new W3CTraceContextPropagator().inject(trace.setSpanContext(ROOT_CONTEXT, context), headers, {
    set: (carrier, key, value) => {
      carrier[key] = value;
    },
  });
  return headers;
}

function plainCall(t: Tracing, call: TestCall): void {
  t.observer.callStarted(call);
  admitAndGuard(t, call);
  startAttempt(t, call, productA, deploymentA);
  t.observer.attemptEnded(call, attempt(productA, deploymentA, null), null);
  meter(t, call);
  t.observer.callEnded(call, served(call, productA, deploymentA));
}

describe('the call tracer', () => {
  let collector: FakeOtlpCollector;
  before(async () => {
    collector = await startFakeOtlpCollector();
  });
  after(() => collector.close());
  beforeEach(() => collector.clear());

  async function tracingWith(env: Record<string, string>, logger?: ReturnType<typeof createLogger>) {
    const tracing = await createTracing(
      readTracingSettings({
        OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
        OTEL_BSP_SCHEDULE_DELAY: '10',
        ...env,
      }),
      logger ? { logger } : {},
    );
    assert.ok(tracing);
    return tracing;
  }

  // a tracestate with spaces, an invalid member and a duplicate key: what the propagator makes of it
  const messyState = ' vendor=abc , not a member,other=1,vendor=dup ';

  test('the traceparent and tracestate sent upstream are what the W3C propagator would inject', async () => {
    for (const sampler of ['always_on', 'always_off']) {
      const tracing = await tracingWith({ OTEL_TRACES_SAMPLER: sampler });
      const incoming = new TestCall(
        'chat',
        'hcx-005',
        chatBody,
        false,
        `00-${INCOMING_TRACE_ID}-${INCOMING_SPAN_ID}-01`,
        messyState,
      );
      plainCall(tracing, incoming);
      const root = new TestCall('chat', 'hcx-005', chatBody);
      plainCall(tracing, root);
      const spans = sampler === 'always_on' ? await exported(tracing, collector, 10) : [];
      await tracing.shutdown();

      const flags = sampler === 'always_on' ? 1 : 0;
      for (const call of [incoming, root]) {
        const sent = call.sentHeaders[0]!;
        const [version, traceId, spanId, flagsHex] = sent.traceparent!.split('-');
        assert.equal(version, '00');
        if (call === incoming) assert.equal(traceId, INCOMING_TRACE_ID, 'the trace goes on');
        else assert.match(traceId!, /^[0-9a-f]{32}$/);
        assert.equal(Number.parseInt(flagsHex!, 16), flags);
        const traceState = call.tracestate === undefined ? undefined : new TraceState(call.tracestate);
        assert.deepEqual(
          sent,
          injected({ traceId: traceId!, spanId: spanId!, traceFlags: flags, traceState }),
        );
        if (sampler === 'always_on') {
          // the span named upstream is the attempt's, exported with the same tracestate
          const upstream = spans.find((s) => s.spanId === spanId)!;
          assert.equal(upstream.name, 'chat HCX-005');
          assert.equal(upstream.traceState, traceState?.serialize() ?? '');
        }
      }
      // normalised as the propagator does it (the invalid member left out, the last of a duplicate key kept)
      assert.equal(incoming.sentHeaders[0]!.tracestate, 'vendor=dup,other=1');
    }
  });

  test('a sampled-out call names one non-recording span in every attempt, with the tracestate', async () => {
    const tracing = await tracingWith({ OTEL_TRACES_SAMPLER: 'parentbased_always_on' });
    const call = new TestCall(
      'chat',
      'hcx-005',
      chatBody,
      false,
      `00-${INCOMING_TRACE_ID}-${INCOMING_SPAN_ID}-00`,
      'vendor=abc',
    );
    tracing.observer.callStarted(call);
    startAttempt(tracing, call, productA, deploymentA);
    tracing.observer.attemptEnded(call, attempt(productA, deploymentA, null), null);
    startAttempt(tracing, call, productA, deploymentA);
    tracing.observer.callEnded(call, served(call, productA, deploymentA));
    await tracing.shutdown();
    const [first, second] = call.sentHeaders;
    assert.match(first!.traceparent!, new RegExp(`^00-${INCOMING_TRACE_ID}-[0-9a-f]{16}-00$`));
    assert.deepEqual(second, first);
    assert.equal(first!.tracestate, 'vendor=abc');
    assert.equal(collector.spans.length, 0);
  });

  test('the export queue holds at most OTEL_BSP_MAX_QUEUE_SIZE spans: a call that does not fit is dropped whole, and said', async () => {
    const lines: Record<string, unknown>[] = [];
    const destination = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line));
        done();
      },
    });
    const tracing = await tracingWith({ OTEL_BSP_MAX_QUEUE_SIZE: '7' }, createLogger('info', destination));
    const kept = new TestCall('chat', 'hcx-005', chatBody);
    plainCall(tracing, kept);
    plainCall(tracing, new TestCall('chat', 'hcx-005', chatBody));
    const spans = await exported(tracing, collector, 5);
    assert.equal(only(spans, 'chat hcx-005').attributes['kaihub.request.id'], kept.requestId);
    const dropped = lines.find((l) => l.msg === 'tracing: spans dropped, the export queue was full');
    assert.equal(dropped?.dropped, 5);
    // once exported, the queue takes calls again
    collector.clear();
    plainCall(tracing, new TestCall('chat', 'hcx-005', chatBody));
    await exported(tracing, collector, 5);
    await tracing.shutdown();
  });

  test('after shutdown, calls are not exported and a flush returns', async () => {
    const tracing = await tracingWith({});
    await tracing.shutdown();
    plainCall(tracing, new TestCall('chat', 'hcx-005', chatBody));
    await tracing.forceFlush();
    assert.equal(collector.spans.length, 0);
  });
});
