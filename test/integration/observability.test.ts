import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import OpenAI from 'openai';
import { type FakeOpenAI, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import { testEngine } from '../helpers/databases.ts';
import { ADMIN_TOKEN, type Catalog, seedCatalog, startTestHub, type TestHub } from '../helpers/hub.ts';
import { captureLogs } from '../helpers/logs.ts';

/** One sample of Prometheus' text format: `name{a="b",…} value`. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    assert.ok(m, `not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]!] = l[2]!;
    }
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

/** The sum over every series of `name` whose labels include `labels`. */
function total(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

async function scrape(t: TestHub): Promise<{ text: string; samples: Sample[] }> {
  const res = await fetch(`${t.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
  const text = await res.text();
  return { text, samples: parseMetrics(text) };
}

const MARKER = 'PROMPT-MARKER-비밀-7f3a9c';
const METRICS_TOKEN = 'metrics-scraper-token-5e1d';

describe('observability', () => {
  let fake: FakeOpenAI;

  before(async () => {
    fake = await startFakeOpenAI({ apiKey: 'upstream-secret' });
  });
  after(async () => {
    await fake?.close();
  });
  beforeEach(() => fake.reset());

  describe('health, metrics and request ids', () => {
    let t: TestHub;
    let catalog: Catalog;
    let client: OpenAI;

    before(async () => {
      // one attempt per request, no cooldowns: routing.test.ts covers those
      t = await startTestHub({
        KAIHUB_UPSTREAM_RETRIES: '0',
        KAIHUB_UPSTREAM_COOLDOWN_FAILURES: '0',
        KAIHUB_METRICS_TOKEN: METRICS_TOKEN,
      });
      catalog = await seedCatalog(t, fake.url);
      client = new OpenAI({ apiKey: catalog.key, baseURL: `${t.url}/v1`, maxRetries: 0 });
    });
    after(async () => {
      await t?.close();
    });

    test('/metrics answers the metrics token and the operator only', async () => {
      const scrape = (authorization?: string) =>
        fetch(`${t.url}/metrics`, { headers: authorization ? { authorization } : {} });
      for (const authorization of [undefined, 'Bearer wrong-token-0123456789', `Basic ${METRICS_TOKEN}`]) {
        const res = await scrape(authorization);
        assert.equal(res.status, 401, String(authorization));
        assert.equal(res.headers.get('www-authenticate'), 'Bearer');
        const text = await res.text();
        assert.match(text, /KAIHUB_METRICS_TOKEN/);
        assert.ok(!text.includes('kaihub_'), 'no metric leaks into the refusal');
      }
      for (const token of [METRICS_TOKEN, ADMIN_TOKEN]) {
        const res = await scrape(`Bearer ${token}`);
        assert.equal(res.status, 200);
        assert.match(await res.text(), /kaihub_requests_total/);
      }
      const user = await t.admin('POST', '/users', { name: '기관 관리자', email: 'metrics@example.kr' });
      await t.admin('POST', `/users/${user.body.id}/memberships`, {
        role: 'org_admin',
        organizationId: catalog.organizationId,
      });
      const pat = (await t.admin('POST', `/users/${user.body.id}/tokens`, {})).body.token;
      assert.equal((await scrape(`Bearer ${pat}`)).status, 403, 'an organisation admin does not see revenue');
      await t.admin('POST', `/users/${user.body.id}/memberships`, { role: 'operator' });
      assert.equal((await scrape(`Bearer ${pat}`)).status, 200, 'an operator user does');
      const admin = await fetch(`${t.url}/admin/v1/suppliers`, {
        headers: { authorization: `Bearer ${METRICS_TOKEN}` },
      });
      assert.equal(admin.status, 401, 'the metrics token opens /metrics and nothing else');
    });

    test('/healthz answers 200, /readyz 200 naming the database engine', async () => {
      const health = await fetch(`${t.url}/healthz`);
      assert.equal(health.status, 200);
      assert.deepEqual(await health.json(), { status: 'ok' });
      const ready = await fetch(`${t.url}/readyz`);
      assert.equal(ready.status, 200);
      const body = (await ready.json()) as { status: string; database: string };
      assert.equal(body.status, 'ready');
      assert.equal(body.database, testEngine());
    });

    test('/metrics counts requests, latency, tokens, cost and upstream errors by product', async () => {
      const before = (await scrape(t)).samples;
      const data = await client.chat.completions.create({
        model: 'hcx-test',
        messages: [{ role: 'user', content: '측정 해 주세요' }],
      });
      const stream = await client.chat.completions.create({
        model: 'hcx-test',
        messages: [{ role: 'user', content: '스트림 도' }],
        stream: true,
        stream_options: { include_usage: true },
      });
      let streamUsage: OpenAI.CompletionUsage | undefined;
      for await (const chunk of stream) if (chunk.usage) streamUsage = chunk.usage;
      assert.ok(data.usage && streamUsage, 'both calls report usage');
      fake.setBehavior('error:500', { model: 'fake-chat' });
      await assert.rejects(
        client.chat.completions.create({ model: 'hcx-test', messages: [{ role: 'user', content: 'x' }] }),
      );

      const { text, samples } = await scrape(t);
      for (const name of [
        'kaihub_requests_total',
        'kaihub_request_duration_seconds',
        'kaihub_tokens_total',
        'kaihub_cost_micro_krw_total',
        'kaihub_upstream_errors_total',
      ]) {
        assert.match(text, new RegExp(`^# HELP ${name} `, 'm'));
      }
      assert.match(text, /^# TYPE kaihub_requests_total counter$/m);
      assert.match(text, /^# TYPE kaihub_request_duration_seconds histogram$/m);
      const delta = (name: string, labels: Record<string, string>) =>
        total(samples, name, labels) - total(before, name, labels);
      const hcx = { product: 'hcx-test' };

      assert.equal(
        delta('kaihub_requests_total', { ...hcx, endpoint: 'chat.completions', status: '200' }),
        2,
      );
      assert.equal(
        delta('kaihub_requests_total', { ...hcx, endpoint: 'chat.completions', status: '502' }),
        1,
      );
      assert.ok(
        samples.some(
          (s) => s.name === 'kaihub_request_duration_seconds_bucket' && s.labels.product === 'hcx-test',
        ),
        'latency histogram buckets by product',
      );
      assert.equal(
        delta('kaihub_request_duration_seconds_count', { ...hcx, endpoint: 'chat.completions' }),
        3,
      );
      assert.equal(delta('kaihub_request_duration_seconds_bucket', { ...hcx, le: '+Inf' }), 3);
      const prompt = data.usage.prompt_tokens + streamUsage.prompt_tokens;
      const completion = data.usage.completion_tokens + streamUsage.completion_tokens;
      assert.equal(delta('kaihub_tokens_total', { ...hcx, kind: 'prompt' }), prompt);
      assert.equal(delta('kaihub_tokens_total', { ...hcx, kind: 'completion' }), completion);
      assert.equal(delta('kaihub_cost_micro_krw_total', hcx), prompt * 1000 + completion * 3000);
      assert.equal(
        delta('kaihub_upstream_errors_total', { ...hcx, deployment: catalog.deploymentId, kind: '500' }),
        1,
      );
      assert.ok(
        samples.some(
          (s) => s.name === 'kaihub_time_to_first_token_seconds_count' && s.labels.product === 'hcx-test',
        ),
        'time to first token by product',
      );
    });

    test('requests without a valid key cannot grow the metrics without bound', async () => {
      const paths = Array.from({ length: 5 }, (_, i) => `/v1/made-up-${i}-${Date.now()}`);
      for (const path of paths) {
        const res = await fetch(`${t.url}${path}`);
        assert.equal(res.status, 401);
        await res.arrayBuffer();
      }
      const { text, samples } = await scrape(t);
      for (const path of paths) assert.ok(!text.includes(path.slice(4)), `${path} became a metric label`);
      assert.ok(
        total(samples, 'kaihub_requests_total', { endpoint: 'other', status: '401' }) >= paths.length,
        'refused requests are still counted',
      );
    });

    test('every /v1 response carries its own x-request-id, errors included', async () => {
      const ids = new Set<string>();
      const check = (res: Response, status: number, what: string) => {
        assert.equal(res.status, status, what);
        const id = res.headers.get('x-request-id');
        assert.match(id ?? '', /^req_[0-9a-f]{32}$/, `${what}: x-request-id`);
        assert.ok(!ids.has(id!), `${what}: request id reused`);
        ids.add(id!);
      };
      const auth = { authorization: `Bearer ${catalog.key}`, 'content-type': 'application/json' };
      const call = async (path: string, init: RequestInit = {}) => {
        const res = await fetch(`${t.url}${path}`, {
          ...init,
          headers: { ...auth, ...(init.headers ?? {}) },
        });
        await res.arrayBuffer();
        return res;
      };
      const chatBody = (extra: Record<string, unknown> = {}) =>
        JSON.stringify({ model: 'hcx-test', messages: [{ role: 'user', content: 'hi' }], ...extra });

      check(await call('/v1/chat/completions', { method: 'POST', body: chatBody() }), 200, 'chat');
      check(
        await call('/v1/chat/completions', { method: 'POST', body: chatBody({ stream: true }) }),
        200,
        'stream',
      );
      check(await call('/v1/models'), 200, 'models');
      check(await call('/v1/models/hcx-test'), 200, 'model');
      check(await call('/v1/models/nope'), 404, 'unknown model');
      check(
        await call('/v1/embeddings', {
          method: 'POST',
          body: JSON.stringify({ model: 'embed-test', input: 'x' }),
        }),
        200,
        'embeddings',
      );
      check(await call('/v1/chat/completions', { method: 'POST', body: '{oops' }), 400, 'malformed JSON');
      check(
        await call('/v1/chat/completions', { method: 'POST', body: chatBody({ max_tokens: -1 }) }),
        400,
        'bad field',
      );
      check(
        await call('/v1/chat/completions', { method: 'POST', body: chatBody({ model: 'nope' }) }),
        404,
        'unknown',
      );
      check(await call('/v1/nope'), 404, 'unknown path');
      check(await call('/v1/chat/completions'), 404, 'GET on chat');
      check(
        await call('/v1/chat/completions', {
          method: 'POST',
          body: chatBody(),
          headers: { authorization: 'Bearer sk-kai-nope' },
        }),
        401,
        'bad key',
      );
      const noKey = await fetch(`${t.url}/v1/models`);
      await noKey.arrayBuffer();
      check(noKey, 401, 'no key');
      check(
        await call('/v1/chat/completions', { method: 'POST', body: Buffer.alloc(17 * 1024 * 1024, 'a') }),
        413,
        'too large',
      );
      fake.setBehavior('error:503', { model: 'fake-chat' });
      check(await call('/v1/chat/completions', { method: 'POST', body: chatBody() }), 502, 'upstream 503');
      fake.setBehavior('error:429', { model: 'fake-chat' });
      check(await call('/v1/chat/completions', { method: 'POST', body: chatBody() }), 429, 'upstream 429');
    });
  });

  describe('logs', () => {
    test('JSON lines with request ids, and no prompt or completion text by default', async () => {
      const logs = captureLogs();
      const t = await startTestHub({}, { logger: logs.logger });
      try {
        const catalog = await seedCatalog(t, fake.url);
        const client = new OpenAI({ apiKey: catalog.key, baseURL: `${t.url}/v1`, maxRetries: 0 });
        const messages = [{ role: 'user' as const, content: `비밀 ${MARKER} 입니다` }];
        const { data, response } = await client.chat.completions
          .create({ model: 'hcx-test', messages })
          .withResponse();
        assert.ok(data.choices[0]?.message.content?.includes(MARKER), 'the fake echoes the marker back');
        const stream = await client.chat.completions.create({ model: 'hcx-test', messages, stream: true });
        for await (const _chunk of stream) {
          // drain
        }
        await client.embeddings.create({ model: 'embed-test', input: MARKER, encoding_format: 'float' });
        await assert.rejects(client.chat.completions.create({ model: 'hcx-test', messages, max_tokens: -1 }));
        fake.setBehavior('error:500', { model: 'fake-chat' });
        await assert.rejects(client.chat.completions.create({ model: 'hcx-test', messages }));

        const records = logs.records();
        assert.ok(records.length > 0, 'the hub logged nothing');
        for (const r of records) {
          assert.equal(typeof r.level, 'number');
          assert.equal(typeof r.time, 'string');
          assert.equal(r.service, 'kaihub');
        }
        const requestId = response.headers.get('x-request-id');
        const line = records.find((r) => r.requestId === requestId);
        assert.ok(line, 'the request is logged with its request id');
        assert.equal(line.msg, 'request');
        assert.equal(line.model, 'hcx-test');
        assert.equal(line.status, 'ok');
        assert.equal(line.promptTokens, data.usage?.prompt_tokens);
        assert.equal(records.filter((r) => r.msg === 'request').length, 4, 'one line per metered request');

        const text = logs.text();
        assert.ok(!text.includes(MARKER), 'prompt or completion text reached the logs');
        assert.ok(!text.includes(catalog.key), 'an API key reached the logs');
        assert.ok(!text.includes('upstream-secret'), "a supplier's key reached the logs");
      } finally {
        await t.close();
      }
    });

    test('KAIHUB_LOG_CONTENT=true logs the prompt and the answer, with the request id', async () => {
      const logs = captureLogs();
      const t = await startTestHub({ KAIHUB_LOG_CONTENT: 'true' }, { logger: logs.logger });
      try {
        const catalog = await seedCatalog(t, fake.url);
        const client = new OpenAI({ apiKey: catalog.key, baseURL: `${t.url}/v1`, maxRetries: 0 });
        const { response } = await client.chat.completions
          .create({ model: 'hcx-test', messages: [{ role: 'user', content: `보여도 됨 ${MARKER}` }] })
          .withResponse();
        const requestId = response.headers.get('x-request-id');
        const content = logs.records().find((r) => r.msg === 'content');
        assert.ok(content, 'no content line');
        assert.equal(content.requestId, requestId);
        assert.ok(JSON.stringify(content.request).includes(MARKER), 'the prompt is logged');
        assert.ok(JSON.stringify(content.response).includes(MARKER), 'the answer is logged');
        assert.ok(!logs.text().includes(catalog.key), 'an API key reached the logs');
      } finally {
        await t.close();
      }
    });
  });
});
