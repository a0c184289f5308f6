import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { addHrTimes, millisToHrTime } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import {
  type AttemptData,
  appendCallSpans,
  type CallData,
  decodeCall,
  encodeCall,
  type StageData,
  type UpstreamData,
} from './call-records.mjs';

const START = 1_764_470_000_123;

const clova: UpstreamData = {
  id: 0,
  kind: SpanKind.CLIENT,
  spanModel: 'HCX-005',
  providerName: 'naver.clova_studio',
  upstreamModel: 'HCX-005',
  productId: 'prod_hcx',
  deploymentId: 'dep_a',
  supplierId: 'sup_naver',
  serverAddress: 'clovastudio.stream.ntruss.com',
  serverPort: 443,
};
const local: UpstreamData = {
  id: 1,
  kind: SpanKind.INTERNAL,
  spanModel: 'exaone-local',
  providerName: 'llama.cpp',
  upstreamModel: 'exaone-local',
  productId: 'prod_exaone',
  deploymentId: 'dep_local',
  supplierId: 'sup_lg',
  serverAddress: null,
  serverPort: null,
};

function stage(name: string, at: number, ms: number, error: string | null = null): StageData {
  return { stage: name, at, ms, error };
}

function attempt(fields: Partial<AttemptData> & Pick<AttemptData, 'spanId' | 'upstream'>): AttemptData {
  return {
    at: START + 2,
    ms: 12.345678,
    ttft: null,
    httpStatus: null,
    errorType: null,
    message: null,
    inputTokens: null,
    outputTokens: null,
    ...fields,
  };
}

/** A retried-then-fallen-back streamed call with every field set. */
function fullCall(): CallData {
  return {
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    parentSpanId: '00f067aa0ba902b7',
    traceState: 'vendor=abc',
    operation: 'chat',
    model: 'hcx-005',
    samplerAttributes: { 'sampler.rule': 'all' },
    requestId: 'req_1',
    organizationId: 'org_1',
    apiKeyId: 'key_1',
    stream: true,
    request: { 'gen_ai.request.max_tokens': 64, 'gen_ai.request.stop_sequences': ['\n\n'] },
    inputMessages: '[{"role":"user","parts":[{"type":"text","content":"안녕"}]}]',
    messagesLeftOut: 2,
    startMs: START,
    endMs: START + 40,
    ttft: 0.031,
    httpStatus: 200,
    productId: 'prod_hcx',
    servedProductId: 'prod_exaone',
    servedModel: 'exaone',
    servedUpstream: 1,
    responseId: 'chatcmpl-9',
    finishReasons: ['stop', 'length'],
    inputTokens: 12,
    outputTokens: 34,
    usageSource: 'upstream',
    usageStatus: 'ok',
    costMicroKrw: 185_000,
    errorType: null,
    children: [
      stage('admission', START, 0.123456),
      stage('guard', START + 1, 0.5, 'blocked_pii'),
      attempt({
        spanId: 'aaaaaaaaaaaaaaa1',
        upstream: 0,
        httpStatus: 503,
        errorType: '503',
        message: 'upstream http 503',
      }),
      attempt({
        spanId: 'aaaaaaaaaaaaaaa2',
        upstream: 1,
        at: START + 20,
        ms: 1500.25,
        ttft: 0.00912345,
        inputTokens: 12,
        outputTokens: 34,
      }),
      stage('metering', START + 39, 0.75),
    ],
  };
}

test('a record crosses to the export thread whole: every field through encodeCall, JSON and decodeCall', () => {
  const call = fullCall();
  const back = decodeCall(JSON.parse(JSON.stringify(encodeCall(call))));
  // lengths cross as whole nanoseconds, as the SDK rounds them
  assert.deepEqual(back, call);
  // every field has its own place: a record whose fields all differ comes back field for field
  const blank: CallData = {
    ...call,
    parentSpanId: null,
    traceState: null,
    samplerAttributes: null,
    request: null,
    inputMessages: null,
    servedUpstream: null,
    finishReasons: null,
    costMicroKrw: '9007199254740993',
    children: [],
  };
  assert.deepEqual(decodeCall(JSON.parse(JSON.stringify(encodeCall(blank)))), blank);
  assert.ok(JSON.stringify(encodeCall(call)).length < JSON.stringify(call).length * 0.6, 'no field names');
});

const ids = ['c0c0c0c0c0c0c0c0', 'd1d1d1d1d1d1d1d1', 'd2d2d2d2d2d2d2d2', 'd3d3d3d3d3d3d3d3'];
function rebuild(call: CallData, upstreams: UpstreamData[] = [clova, local]): ReadableSpan[] {
  const out: ReadableSpan[] = [];
  const next = [...ids];
  const count = appendCallSpans(out, call, new Map(upstreams.map((u) => [u.id, u])), {
    resource: resourceFromAttributes({ 'service.name': 'kaihub' }),
    instrumentationScope: { name: 'kaihub' },
    newSpanId: () => next.shift()!,
  });
  assert.equal(count, out.length);
  return out;
}

test('the spans of a record: children in the order they ended, then the call; links, kinds, times, status', () => {
  const spans = rebuild(fullCall());
  assert.deepEqual(
    spans.map((s) => [s.name, s.kind]),
    [
      ['admission', SpanKind.INTERNAL],
      ['guard', SpanKind.INTERNAL],
      ['chat HCX-005', SpanKind.CLIENT],
      ['chat exaone-local', SpanKind.INTERNAL],
      ['metering', SpanKind.INTERNAL],
      ['chat hcx-005', SpanKind.SERVER],
    ],
  );
  const root = spans.at(-1)!;
  // the call's span id is drawn first, then each stage's as it is rebuilt
  assert.deepEqual(root.spanContext(), {
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    spanId: ids[0],
    traceFlags: 1,
    traceState: root.spanContext().traceState,
  });
  assert.equal(root.spanContext().traceState?.serialize(), 'vendor=abc');
  assert.deepEqual(root.parentSpanContext, {
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    spanId: '00f067aa0ba902b7',
    traceFlags: 1,
    isRemote: true,
  });
  assert.deepEqual(
    spans.slice(0, -1).map((s) => s.spanContext().spanId),
    [ids[1], ids[2], 'aaaaaaaaaaaaaaa1', 'aaaaaaaaaaaaaaa2', ids[3]],
  );
  for (const child of spans.slice(0, -1)) {
    assert.equal(child.spanContext().traceId, root.spanContext().traceId);
    assert.equal(child.spanContext().traceState?.serialize(), 'vendor=abc');
    assert.equal(child.parentSpanContext?.spanId, ids[0]);
    assert.equal(child.parentSpanContext?.isRemote, false);
    assert.equal(child.ended, true);
    assert.equal(child.resource, root.resource);
  }
  // as the SDK times them: the call from its given start to Date.now() at its end, a child from
  // Date.now() at its start plus its length on the monotonic clock
  assert.deepEqual(root.startTime, millisToHrTime(START));
  assert.deepEqual(root.endTime, millisToHrTime(START + 40));
  assert.deepEqual(root.duration, [0, 40_000_000]);
  const fallback = spans[3]!;
  assert.deepEqual(fallback.startTime, millisToHrTime(START + 20));
  assert.deepEqual(fallback.endTime, addHrTimes(millisToHrTime(START + 20), millisToHrTime(1500.25)));
  assert.deepEqual(fallback.duration, [1, 500_250_000]);

  assert.deepEqual(spans[0]!.status, { code: SpanStatusCode.UNSET });
  assert.deepEqual(spans[0]!.attributes, {});
  assert.deepEqual(spans[1]!.status, { code: SpanStatusCode.ERROR, message: 'blocked_pii' });
  assert.deepEqual(spans[1]!.attributes, { 'error.type': 'blocked_pii' });
  assert.deepEqual(spans[2]!.status, { code: SpanStatusCode.ERROR, message: 'upstream http 503' });
  assert.deepEqual(root.status, { code: SpanStatusCode.UNSET });
});

test('the attributes of a record, in the order the SDK spans had them set', () => {
  const spans = rebuild(fullCall());
  assert.deepEqual(Object.entries(spans[2]!.attributes), [
    ['gen_ai.operation.name', 'chat'],
    ['gen_ai.provider.name', 'naver.clova_studio'],
    ['gen_ai.request.model', 'HCX-005'],
    ['kaihub.product.id', 'prod_hcx'],
    ['kaihub.deployment.id', 'dep_a'],
    ['kaihub.supplier.id', 'sup_naver'],
    ['server.address', 'clovastudio.stream.ntruss.com'],
    ['server.port', 443],
    ['http.response.status_code', 503],
    ['error.type', '503'],
  ]);
  assert.deepEqual(Object.entries(spans[3]!.attributes), [
    ['gen_ai.operation.name', 'chat'],
    ['gen_ai.provider.name', 'llama.cpp'],
    ['gen_ai.request.model', 'exaone-local'],
    ['kaihub.product.id', 'prod_exaone'],
    ['kaihub.deployment.id', 'dep_local'],
    ['kaihub.supplier.id', 'sup_lg'],
    ['gen_ai.response.time_to_first_chunk', 0.00912345],
    ['gen_ai.usage.input_tokens', 12],
    ['gen_ai.usage.output_tokens', 34],
  ]);
  assert.deepEqual(Object.entries(spans.at(-1)!.attributes), [
    ['gen_ai.operation.name', 'chat'],
    ['gen_ai.request.model', 'hcx-005'],
    ['sampler.rule', 'all'],
    ['kaihub.request.id', 'req_1'],
    ['kaihub.organization.id', 'org_1'],
    ['kaihub.api_key.id', 'key_1'],
    ['gen_ai.request.stream', true],
    ['gen_ai.request.max_tokens', 64],
    ['gen_ai.request.stop_sequences', ['\n\n']],
    ['gen_ai.input.messages', '[{"role":"user","parts":[{"type":"text","content":"안녕"}]}]'],
    ['kaihub.content.messages_left_out', 2],
    ['gen_ai.response.time_to_first_chunk', 0.031],
    ['http.response.status_code', 200],
    ['kaihub.product.id', 'prod_hcx'],
    ['kaihub.served_product.id', 'prod_exaone'],
    ['gen_ai.response.model', 'exaone'],
    ['kaihub.deployment.id', 'dep_local'],
    ['gen_ai.provider.name', 'llama.cpp'],
    ['gen_ai.response.id', 'chatcmpl-9'],
    ['gen_ai.response.finish_reasons', ['stop', 'length']],
    ['gen_ai.usage.input_tokens', 12],
    ['gen_ai.usage.output_tokens', 34],
    ['kaihub.usage.source', 'upstream'],
    ['kaihub.usage.status', 'ok'],
    ['kaihub.cost.micro_krw', 185_000],
  ]);
});

test('a refused root call: no parent, no tracestate, 4xx not an error status, 5xx an error', () => {
  const refused: CallData = {
    ...fullCall(),
    parentSpanId: null,
    traceState: null,
    samplerAttributes: null,
    stream: false,
    request: null,
    inputMessages: null,
    messagesLeftOut: 0,
    ttft: null,
    httpStatus: 429,
    servedProductId: null,
    servedModel: null,
    servedUpstream: null,
    responseId: null,
    finishReasons: null,
    inputTokens: null,
    outputTokens: null,
    usageSource: null,
    usageStatus: null,
    costMicroKrw: null,
    errorType: 'rate_limited',
    children: [stage('admission', START, 0.2, 'rate_limited')],
  };
  const [admission, root] = rebuild(refused);
  assert.equal(root!.parentSpanContext, undefined);
  assert.equal(root!.spanContext().traceState, undefined);
  assert.equal(admission!.spanContext().traceState, undefined);
  assert.deepEqual(root!.status, { code: SpanStatusCode.UNSET });
  assert.deepEqual(root!.attributes, {
    'gen_ai.operation.name': 'chat',
    'gen_ai.request.model': 'hcx-005',
    'kaihub.request.id': 'req_1',
    'kaihub.organization.id': 'org_1',
    'kaihub.api_key.id': 'key_1',
    'http.response.status_code': 429,
    'kaihub.product.id': 'prod_hcx',
    'error.type': 'rate_limited',
  });
  const [, failed] = rebuild({ ...refused, httpStatus: 504, errorType: 'upstream_timeout' });
  assert.deepEqual(failed!.status, { code: SpanStatusCode.ERROR, message: 'upstream_timeout' });
});

test('an end before the start is the start (as the SDK ends such a span); an unknown deployment is left out', () => {
  const call: CallData = {
    ...fullCall(),
    endMs: START - 5,
    children: [attempt({ spanId: 'aaaaaaaaaaaaaaa9', upstream: 7 }), stage('metering', START, 0)],
  };
  const spans = rebuild(call);
  assert.deepEqual(
    spans.map((s) => s.name),
    ['metering', 'chat hcx-005'],
  );
  assert.deepEqual(spans[1]!.endTime, spans[1]!.startTime);
  assert.deepEqual(spans[1]!.duration, [0, 0]);
  assert.deepEqual(spans[0]!.endTime, spans[0]!.startTime);
});
