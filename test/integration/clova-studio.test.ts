import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import OpenAI from 'openai';
import { type FakeClova, startFakeClova } from '../fakes/clova-studio-upstream.ts';
import { countPromptTokens, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import { type Catalog, seedCatalog, startTestHub, type TestHub } from '../helpers/hub.ts';
import {
  assertMatchesSchema,
  CHAT_COMPLETION_CHUNK,
  CHAT_COMPLETION_RESPONSE,
  EMBEDDING_RESPONSE,
  ERROR_RESPONSE,
} from '../helpers/openapi.ts';
import { addProduct } from '../helpers/v1.ts';

describe('CLOVA Studio (HyperCLOVA X) through the hub', () => {
  let fake: FakeClova;
  let t: TestHub;
  let catalog: Catalog;
  let client: OpenAI;

  before(async () => {
    fake = await startFakeClova({ apiKey: 'nv-clova-key' });
    // one attempt per request, no cooldowns: these tests map single upstream errors (routing.test.ts retries)
    t = await startTestHub({ KAIHUB_UPSTREAM_RETRIES: '0', KAIHUB_UPSTREAM_COOLDOWN_FAILURES: '0' });
    catalog = await seedCatalog(t, `${fake.url}/v1`, 'nv-clova-key');
    // both products served by CLOVA Studio instead of the OpenAI-compatible fake
    const chat = await t.admin('PATCH', `/deployments/${catalog.deploymentId}`, {
      adapter: 'clova-studio',
      baseUrl: fake.url,
      upstreamModel: 'HCX-005',
    });
    assert.equal(chat.status, 200, JSON.stringify(chat.body));
    const list = await t.admin('GET', `/deployments?productId=${catalog.embeddingProductId}`);
    const embed = await t.admin('PATCH', `/deployments/${list.body.data[0].id}`, {
      adapter: 'clova-studio',
      baseUrl: fake.url,
      upstreamModel: 'v2',
    });
    assert.equal(embed.status, 200, JSON.stringify(embed.body));
    client = new OpenAI({ apiKey: catalog.key, baseURL: `${t.url}/v1`, maxRetries: 0 });
  });
  after(async () => {
    await t?.close();
    await fake?.close();
  });
  beforeEach(() => fake.reset());

  async function usageEvent(requestId: string) {
    const r = await t.admin('GET', `/usage/events?requestId=${requestId}`);
    assert.equal(r.status, 200);
    return r.body.data[0];
  }

  test('a plain completion: CLOVA envelope → chat.completion, metered from CLOVA usage', async () => {
    const messages = [
      { role: 'system' as const, content: '당신은 친절한 비서입니다.' },
      { role: 'user' as const, content: '서울의 날씨를 알려줘' },
    ];
    const { data, response } = await client.chat.completions
      .create({
        model: 'hcx-test',
        messages,
        max_tokens: 50,
        top_p: 0.8,
        temperature: 0.5,
        seed: 7,
        stop: '끝',
      })
      .withResponse();
    assertMatchesSchema(CHAT_COMPLETION_RESPONSE, data);
    assert.equal(data.model, 'hcx-test');
    assert.equal(data.choices[0]?.message.content, 'Echo: 서울의 날씨를 알려줘');
    assert.equal(data.choices[0]?.finish_reason, 'stop');

    const upstream = fake.requests.at(-1)!;
    assert.equal(upstream.path, '/v3/chat-completions/HCX-005');
    assert.equal(upstream.headers.authorization, 'Bearer nv-clova-key');
    assert.equal(upstream.headers.accept, 'application/json');
    const upstreamId = upstream.headers['x-ncp-clovastudio-request-id'];
    assert.match(String(upstreamId), /^[0-9a-f]{32}$/);
    assert.equal(data.id, `chatcmpl-${upstreamId}`);
    assert.deepEqual(upstream.body, {
      messages,
      maxTokens: 50,
      topP: 0.8,
      temperature: 0.5,
      seed: 7,
      stop: ['끝'],
    });

    const promptTokens = countPromptTokens(messages);
    assert.deepEqual(data.usage, {
      prompt_tokens: promptTokens,
      completion_tokens: 4,
      total_tokens: promptTokens + 4,
    });
    const event = await usageEvent(response.headers.get('x-request-id')!);
    assert.equal(event.promptTokens, promptTokens);
    assert.equal(event.completionTokens, 4);
    assert.equal(event.usageSource, 'upstream');
    assert.equal(event.deploymentId, catalog.deploymentId);
    assert.equal(event.costMicroKrw, (BigInt(promptTokens) * 1000n + 4n * 3000n).toString());
  });

  test('parameters map to CLOVA names; OpenAI-only ones are dropped; length maps to length', async () => {
    const data = await client.chat.completions.create({
      model: 'hcx-test',
      messages: [
        { role: 'developer', content: 'be brief' },
        { role: 'user', content: 'one two three four' },
      ],
      max_completion_tokens: 2,
      max_tokens: 9,
      presence_penalty: 0.5,
      frequency_penalty: 0.5,
      logprobs: false,
      user: 'someone',
      // vLLM-style extras for CLOVA's own knobs
      ...({ top_k: 5, repetition_penalty: 1.1 } as object),
    });
    assert.equal(data.choices[0]?.message.content, 'Echo: one');
    assert.equal(data.choices[0]?.finish_reason, 'length');
    assert.deepEqual(fake.requests.at(-1)!.body, {
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'one two three four' },
      ],
      topK: 5,
      repetitionPenalty: 1.1,
      maxTokens: 2,
    });
  });

  test('a stream: token events become chunks, the result event the finish and (if asked) usage', async () => {
    const { data: stream, response } = await client.chat.completions
      .create({
        model: 'hcx-test',
        messages: [{ role: 'user', content: 'count these words please' }],
        stream: true,
        stream_options: { include_usage: true },
      })
      .withResponse();
    let text = '';
    let usage: OpenAI.CompletionUsage | null | undefined;
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      assertMatchesSchema(CHAT_COMPLETION_CHUNK, chunk);
      assert.equal(chunk.model, 'hcx-test');
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(text, 'Echo: count these words please');
    assert.equal(finish, 'stop');
    assert.ok(usage);
    assert.equal(usage.completion_tokens, 5);
    const upstream = fake.requests.at(-1)!;
    assert.equal(upstream.headers.accept, 'text/event-stream');
    assert.equal((upstream.body as { stream?: unknown }).stream, undefined);
    const event = await usageEvent(response.headers.get('x-request-id')!);
    assert.equal(event.promptTokens, usage.prompt_tokens);
    assert.equal(event.completionTokens, 5);
    assert.equal(event.usageSource, 'upstream');
    assert.equal(event.stream, true);
  });

  test('a stream without include_usage gets no usage chunk, and is still metered from CLOVA', async () => {
    const { data: stream, response } = await client.chat.completions
      .create({ model: 'hcx-test', messages: [{ role: 'user', content: '하나 둘 셋' }], stream: true })
      .withResponse();
    let chunks = 0;
    for await (const chunk of stream) {
      assertMatchesSchema(CHAT_COMPLETION_CHUNK, chunk);
      assert.equal(chunk.usage ?? null, null);
      chunks++;
    }
    assert.equal(chunks, 5); // four words and the finish
    const event = await usageEvent(response.headers.get('x-request-id')!);
    assert.equal(event.completionTokens, 4);
    assert.equal(event.usageSource, 'upstream');
  });

  test("upstream errors: 400 stays 400 with CLOVA's message, 429 stays 429, 5xx becomes 502; server errors keep CLOVA's words in the log", async () => {
    for (const [upstream, expected] of [
      [400, 400],
      [429, 429],
      [500, 502],
      [503, 502],
    ] as const) {
      fake.queueBehaviors(`error:${upstream}`);
      const res = await fetch(`${t.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${catalog.key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'hcx-test', messages: [{ role: 'user', content: 'x' }] }),
      });
      assert.equal(res.status, expected, `upstream ${upstream}`);
      const body = (await res.json()) as { error: { message: string; code: string | null } };
      assertMatchesSchema(ERROR_RESPONSE, body);
      // the client's own mistake is told in the supplier's words; a server error only names the request
      if (upstream === 400) assert.match(body.error.message, /fake clova error 400/);
      else {
        assert.doesNotMatch(body.error.message, /fake clova error/);
        assert.ok(body.error.message.includes(res.headers.get('x-request-id')!));
      }
      if (upstream === 400) assert.equal(body.error.code, 'clova_40000');
      if (upstream === 429) assert.equal(res.headers.get('retry-after'), '1');
      const event = await usageEvent(res.headers.get('x-request-id')!);
      assert.equal(event.status, 'upstream_error');
      assert.equal(event.costMicroKrw, '0');
    }
    // and a stream request that fails before its first byte is a clean error too
    fake.queueBehaviors('error:429');
    await assert.rejects(
      client.chat.completions.create({
        model: 'hcx-test',
        messages: [{ role: 'user', content: 'x' }],
        stream: true,
      }),
      (e: unknown) => e instanceof OpenAI.RateLimitError && e.code === 'upstream_rate_limited',
    );
  });

  test('n > 1 is refused as a 400 naming the parameter', async () => {
    await assert.rejects(
      client.chat.completions.create({ model: 'hcx-test', messages: [{ role: 'user', content: 'x' }], n: 2 }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === 'n',
    );
    assert.equal(fake.requests.length, 0);
  });

  test('an error event mid-stream ends the stream with an OpenAI error; what was delivered is charged', async () => {
    fake.queueBehaviors('error-event');
    const res = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${catalog.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'hcx-test',
        messages: [{ role: 'user', content: 'one two three four' }],
        stream: true,
      }),
    });
    assert.equal(res.status, 200);
    const text = await res.text();
    const events = text
      .split('\n\n')
      .filter((e) => e.startsWith('data: '))
      .map((e) => e.slice(6));
    assert.equal(events.includes('[DONE]'), false);
    const last = JSON.parse(events.at(-1)!) as { error: { message: string } };
    assertMatchesSchema(ERROR_RESPONSE, last);
    assert.doesNotMatch(last.error.message, /fake clova error event/);
    const delivered = events
      .slice(0, -1)
      .map((e) => JSON.parse(e) as { choices: { delta: { content?: string } }[] });
    assert.equal(delivered.map((c) => c.choices[0]?.delta.content ?? '').join(''), 'Echo: one');
    const event = await usageEvent(res.headers.get('x-request-id')!);
    assert.equal(event.status, 'upstream_error');
    // the client holds "Echo: one": charged for it (estimated: the upstream's counts never came)
    assert.equal(event.usageSource, 'estimate');
    assert.equal(event.completionTokens, 3);
    assert.ok(BigInt(event.costMicroKrw) > 0n);
  });

  test('embeddings: one CLOVA call per input, answered as one OpenAI list', async () => {
    const { data, response } = await client.embeddings
      .create({ model: 'embed-test', input: ['오늘 날씨 알려줘', 'how is the weather'] })
      .withResponse();
    assertMatchesSchema(EMBEDDING_RESPONSE, data);
    assert.equal(data.data.length, 2);
    assert.equal(data.data[0]?.embedding.length, 1024);
    assert.equal(data.usage.prompt_tokens, 3 + 4);
    // the calls run concurrently, so they may arrive in either order
    assert.deepEqual(fake.requests.map((r) => `${r.path} ${(r.body as { text: string }).text}`).sort(), [
      '/v1/api-tools/embedding/v2 how is the weather',
      '/v1/api-tools/embedding/v2 오늘 날씨 알려줘',
    ]);
    assert.ok(fake.requests.every((r) => r.headers.authorization === 'Bearer nv-clova-key'));
    const event = await usageEvent(response.headers.get('x-request-id')!);
    assert.equal(event.promptTokens, 7);
    assert.equal(event.usageSource, 'upstream');
  });

  test("CLOVA's OpenAI-compatible endpoint (/v1/openai) works through the openai-compatible adapter", async () => {
    // the compatible endpoint speaks OpenAI's protocol under CLOVA's own base path
    const compatible = await startFakeOpenAI({ apiKey: 'upstream-secret', basePath: '/v1/openai' });
    try {
      const { deploymentIds } = await addProduct(t, catalog, 'hcx-compat', [
        { baseUrl: compatible.url, upstreamModel: 'HCX-005' },
      ]);
      const messages = [{ role: 'user' as const, content: '안녕하세요 반갑습니다' }];
      const { data, response } = await client.chat.completions
        .create({ model: 'hcx-compat', messages })
        .withResponse();
      assertMatchesSchema(CHAT_COMPLETION_RESPONSE, data);
      assert.equal(data.model, 'hcx-compat');
      const stream = await client.chat.completions.create({ model: 'hcx-compat', messages, stream: true });
      let text = '';
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
      assert.equal(text, data.choices[0]?.message.content);
      assert.deepEqual(
        compatible.requests.map((r) => `${r.method} ${r.path} ${(r.body as { model: string }).model}`),
        ['POST /v1/openai/chat/completions HCX-005', 'POST /v1/openai/chat/completions HCX-005'],
      );
      const event = await usageEvent(response.headers.get('x-request-id')!);
      assert.equal(event.deploymentId, deploymentIds[0]);
      assert.equal(event.usageSource, 'upstream');
      assert.equal(event.promptTokens, data.usage?.prompt_tokens);
    } finally {
      await compatible.close();
    }
  });
});
