import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { type FakeOtlpCollector, startFakeOtlpCollector } from '../../test/fakes/otlp-collector.ts';
import {
  admitAndGuard,
  attempt,
  CLIENT,
  chatBody,
  deploymentA,
  deploymentB,
  ERROR,
  exported,
  INCOMING_SPAN_ID,
  INCOMING_TRACE_ID,
  INTERNAL,
  meter,
  only,
  productA,
  productB,
  SERVER,
  served,
  startAttempt,
  startTracing,
  TestCall,
  traceparentOf,
  UNSET,
} from '../../test/helpers/observed-calls.ts';
import { UpstreamError } from '../providers/adapter.ts';
import type { Tracing } from './tracing.ts';

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
