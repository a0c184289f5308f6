import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { Admission } from '../../src/limits/admission.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { type FakeOpenAI, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import { type FakeOtlpCollector, startFakeOtlpCollector } from '../fakes/otlp-collector.ts';
import { type Catalog, seedCatalog, startTestHub, type TestHub } from '../helpers/hub.ts';
import { addProduct, usageEvent } from '../helpers/v1.ts';

test('a hub with an OTLP endpoint starts the tracer, and closes it with the hub', async () => {
  const collector = await startFakeOtlpCollector();
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  const hub = await startTestHub(
    { OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' },
    { logger: createLogger('info', destination) },
  );
  try {
    const started = lines.find((l) => l.msg === 'tracing on: exporting spans over OTLP');
    assert.ok(started, 'the hub says where its spans go');
    assert.equal(started.url, `${collector.url}/v1/traces`);
    assert.equal(started.protocol, 'http/json');
    assert.equal(started.content, false);
  } finally {
    await hub.close();
    await collector.close();
  }
});

describe('the span tree of calls through the hub', () => {
  let collector: FakeOtlpCollector;
  let fake: FakeOpenAI;
  let t: TestHub;
  let catalog: Catalog;
  let refusedKey: string;
  const refusedOrganizations = new Set<string>();
  before(async () => {
    collector = await startFakeOtlpCollector();
    fake = await startFakeOpenAI({ apiKey: 'upstream-secret' });
    const admission: Admission = {
      admit: (r) =>
        refusedOrganizations.has(r.caller.organizationId)
          ? {
              admitted: false,
              status: 429,
              code: 'rate_limited',
              message: '요청이 너무 많습니다. / Too many requests.',
            }
          : { admitted: true, ticket: { settle() {}, release() {} } },
    };
    t = await startTestHub(
      {
        OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_BSP_SCHEDULE_DELAY: '20',
        KAIHUB_UPSTREAM_RETRIES: '1',
        KAIHUB_UPSTREAM_RETRY_BASE_MS: '1',
      },
      { hub: { admission } },
    );
    catalog = await seedCatalog(t, fake.url);
    const org = await t.admin('POST', '/organizations', { name: '거절기관', class: 'sme' });
    refusedOrganizations.add(org.body.id);
    refusedKey = (await t.admin('POST', `/organizations/${org.body.id}/keys`, {})).body.key;
  });
  after(async () => {
    await t?.close();
    await fake?.close();
    await collector?.close();
  });

  const traceId = () => randomBytes(16).toString('hex');
  const parentId = 'b7ad6b7169203331';
  const hello = [{ role: 'user', content: '비밀 프롬프트 secret prompt' }];

  /** Every span of one trace, once the call span (the root of the hub's tree) has arrived. */
  async function trace(id: string) {
    const deadline = Date.now() + 5000;
    for (;;) {
      const spans = collector.spans.filter((s) => s.traceId === id);
      const root = spans.find((s) => s.kind === 2);
      if (root) {
        // children end before their parent: once it arrived, a short wait brings any stragglers
        await new Promise((r) => setTimeout(r, 50));
        const all = collector.spans.filter((s) => s.traceId === id);
        return { root, all, children: all.filter((s) => s.parentSpanId === root.spanId) };
      }
      if (Date.now() > deadline) assert.fail(`no call span for trace ${id}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async function call(key: string, body: Record<string, unknown>, id: string) {
    const res = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${key}`,
        'content-type': 'application/json',
        traceparent: `00-${id}-${parentId}-01`,
      },
      body: JSON.stringify(body),
    });
    return { res, text: await res.text() };
  }

  test('a plain call: one server span under the caller’s, stages, one client span whose traceparent the supplier got', async () => {
    const id = traceId();
    const { res } = await call(catalog.key, { model: 'hcx-test', messages: hello }, id);
    assert.equal(res.status, 200);
    const { root, children } = await trace(id);
    assert.equal(root.parentSpanId, parentId, 'the incoming traceparent is honoured');
    assert.equal(root.name, 'chat hcx-test');
    assert.equal(root.attributes['gen_ai.operation.name'], 'chat');
    assert.equal(root.attributes['gen_ai.request.model'], 'hcx-test');
    assert.equal(root.attributes['gen_ai.response.model'], 'hcx-test');
    const event = await usageEvent(t, res.headers.get('x-request-id')!);
    assert.equal(root.attributes['gen_ai.usage.input_tokens'], event.promptTokens);
    assert.equal(root.attributes['gen_ai.usage.output_tokens'], event.completionTokens);
    assert.equal(String(root.attributes['kaihub.cost.micro_krw']), event.costMicroKrw);
    assert.equal(root.attributes['kaihub.organization.id'], catalog.organizationId);
    assert.deepEqual(children.map((s) => s.name).sort(), [
      'admission',
      'chat fake-chat',
      'guard',
      'metering',
    ]);
    const attempt = children.find((s) => s.kind === 3)!;
    assert.equal(attempt.attributes['kaihub.deployment.id'], catalog.deploymentId);
    const upstream = fake.requests.at(-1)!;
    assert.equal(
      upstream.headers.traceparent,
      `00-${id}-${attempt.spanId}-01`,
      'passed upstream, naming the attempt',
    );
    assert.doesNotMatch(
      JSON.stringify(collector.spans, (_k, v) => (typeof v === 'bigint' ? String(v) : v)),
      /secret prompt|비밀 프롬프트/,
      'no prompt text by default',
    );
  });

  test('a streamed call: the same tree, its usage and first-chunk time on the call span', async () => {
    const id = traceId();
    const { res, text } = await call(catalog.key, { model: 'hcx-test', messages: hello, stream: true }, id);
    assert.equal(res.status, 200);
    assert.match(text, /\[DONE\]/);
    const { root, children } = await trace(id);
    assert.equal(root.attributes['gen_ai.request.stream'], true);
    assert.ok(Number(root.attributes['gen_ai.response.time_to_first_chunk']) >= 0);
    const event = await usageEvent(t, res.headers.get('x-request-id')!);
    assert.equal(root.attributes['gen_ai.usage.output_tokens'], event.completionTokens);
    assert.equal(children.filter((s) => s.kind === 3).length, 1);
  });

  test('a retried then fallen-back call: each attempt its own span, the failed ones marked', async () => {
    const main = await addProduct(
      t,
      catalog,
      'tr-main',
      [{ baseUrl: fake.url, upstreamModel: 'main-chat' }],
      {
        fallbackModels: [],
      },
    );
    await addProduct(t, catalog, 'tr-fallback', [{ baseUrl: fake.url, upstreamModel: 'fb-chat' }]);
    await t.admin('PATCH', `/products/${main.productId}`, { fallbackModels: ['tr-fallback'] });
    fake.setBehavior('error:503', { model: 'main-chat' });
    const id = traceId();
    const { res } = await call(catalog.key, { model: 'tr-main', messages: hello }, id);
    assert.equal(res.status, 200);
    const { root, children } = await trace(id);
    const attempts = children
      .filter((s) => s.kind === 3)
      .sort((a, b) => Number(a.startTimeUnixNano - b.startTimeUnixNano));
    assert.deepEqual(
      attempts.map((s) => [s.name, s.status.code]),
      [
        ['chat main-chat', 2],
        ['chat main-chat', 2],
        ['chat fb-chat', 0],
      ],
    );
    assert.equal(attempts[0]!.attributes['error.type'], '503');
    assert.equal(root.attributes['gen_ai.request.model'], 'tr-main');
    assert.equal(root.attributes['gen_ai.response.model'], 'tr-fallback');
    fake.setBehavior('ok', { model: 'main-chat' });
  });

  test('a refused call: the admission span says why, no upstream attempt', async () => {
    const id = traceId();
    const { res } = await call(refusedKey, { model: 'hcx-test', messages: hello }, id);
    assert.equal(res.status, 429);
    const { root, children } = await trace(id);
    assert.deepEqual(
      children.map((s) => s.name),
      ['admission'],
    );
    assert.equal(children[0]!.status.code, 2);
    assert.match(children[0]!.status.message, /rate_limited/);
    assert.ok(root.attributes['error.type']);
  });
});
