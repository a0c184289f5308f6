import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import OpenAI from 'openai';
import { countPromptTokens, type FakeOpenAI, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import { type Catalog, seedCatalog, startTestHub, type TestHub } from '../helpers/hub.ts';
import {
  assertMatchesSchema,
  CHAT_COMPLETION_CHUNK,
  CHAT_COMPLETION_RESPONSE,
  ERROR_RESPONSE,
} from '../helpers/openapi.ts';

describe('chat completions through the hub', () => {
  let fake: FakeOpenAI;
  let t: TestHub;
  let catalog: Catalog;
  let client: OpenAI;

  before(async () => {
    fake = await startFakeOpenAI({ apiKey: 'upstream-secret' });
    t = await startTestHub();
    catalog = await seedCatalog(t, fake.url);
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

  test('a plain completion answers in OpenAI shape with the product id, and is metered exactly', async () => {
    const messages = [
      { role: 'system' as const, content: '당신은 친절한 비서입니다.' },
      { role: 'user' as const, content: '서울의 날씨를 알려줘' },
    ];
    const { data, response } = await client.chat.completions
      .create({ model: 'hcx-test', messages, max_tokens: 50 })
      .withResponse();
    assertMatchesSchema(CHAT_COMPLETION_RESPONSE, data);
    assert.equal(data.model, 'hcx-test');
    assert.equal(data.choices[0]?.message.content, 'Echo: 서울의 날씨를 알려줘');
    const requestId = response.headers.get('x-request-id');
    assert.match(requestId ?? '', /^req_[0-9a-f]{32}$/);

    const upstream = fake.requests.at(-1)!;
    assert.equal(upstream.authorization, 'Bearer upstream-secret');
    assert.equal((upstream.body as { model: string }).model, 'fake-chat');

    const promptTokens = countPromptTokens(messages);
    assert.equal(data.usage?.prompt_tokens, promptTokens);
    const event = await usageEvent(requestId!);
    assert.equal(event.promptTokens, promptTokens);
    assert.equal(event.completionTokens, data.usage?.completion_tokens);
    assert.equal(event.usageSource, 'upstream');
    assert.equal(event.status, 'ok');
    assert.equal(event.deploymentId, catalog.deploymentId);
    assert.equal(event.organizationId, catalog.organizationId);
    assert.equal(event.keyId, catalog.keyId);
    // 1000 KRW/1M in, 3000 KRW/1M out → µ₩ = prompt*1000 + completion*3000
    const expected = BigInt(promptTokens) * 1000n + BigInt(data.usage!.completion_tokens) * 3000n;
    assert.equal(event.costMicroKrw, expected.toString());
  });

  test('a stream passes through chunk by chunk; the usage chunk the hub asked for is stripped', async () => {
    const stream = await client.chat.completions.create({
      model: 'hcx-test',
      messages: [{ role: 'user', content: '하나 둘 셋 넷' }],
      stream: true,
    });
    let text = '';
    let chunks = 0;
    for await (const chunk of stream) {
      assertMatchesSchema(CHAT_COMPLETION_CHUNK, chunk);
      assert.equal(chunk.model, 'hcx-test');
      assert.equal(chunk.usage ?? null, null, 'no usage reaches a client that did not ask');
      text += chunk.choices[0]?.delta.content ?? '';
      chunks++;
    }
    assert.equal(text, 'Echo: 하나 둘 셋 넷');
    assert.ok(chunks >= 6);
    const upstreamBody = fake.requests.at(-1)!.body as { stream_options?: { include_usage?: boolean } };
    assert.equal(
      upstreamBody.stream_options?.include_usage,
      true,
      'the hub always asks the upstream for usage',
    );
  });

  test('a stream with include_usage gets the upstream counts in its last chunk, metered identically', async () => {
    const { data: stream, response } = await client.chat.completions
      .create({
        model: 'hcx-test',
        messages: [{ role: 'user', content: 'count these words please' }],
        stream: true,
        stream_options: { include_usage: true },
      })
      .withResponse();
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      assertMatchesSchema(CHAT_COMPLETION_CHUNK, chunk);
      if (chunk.usage) usage = chunk.usage;
    }
    assert.ok(usage);
    assert.equal(usage.completion_tokens, 5);
    const event = await usageEvent(response.headers.get('x-request-id')!);
    assert.equal(event.promptTokens, usage.prompt_tokens);
    assert.equal(event.completionTokens, usage.completion_tokens);
    assert.equal(event.stream, true);
    assert.ok(event.ttftMs !== null && event.ttftMs >= 0);
  });

  test('errors follow OpenAI: unknown model 404, bad key 401, upstream 500 becomes 502 naming the request, not the upstream', async () => {
    await assert.rejects(
      client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }),
      (e: unknown) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found',
    );
    const wrong = new OpenAI({ apiKey: 'sk-kai-wrong', baseURL: `${t.url}/v1`, maxRetries: 0 });
    await assert.rejects(wrong.models.list(), (e: unknown) => e instanceof OpenAI.AuthenticationError);
    fake.setBehavior('error:500', { model: 'fake-chat' });
    const res = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${catalog.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'hcx-test', messages: [{ role: 'user', content: 'x' }] }),
    });
    assert.equal(res.status, 502);
    const body = (await res.json()) as { error: { message: string } };
    assertMatchesSchema(ERROR_RESPONSE, body);
    // the supplier's own words stay in the log; the client gets the request id to quote
    assert.doesNotMatch(body.error.message, /fake upstream error/);
    assert.ok(body.error.message.includes(res.headers.get('x-request-id')!));
    const event = await usageEvent(res.headers.get('x-request-id')!);
    assert.equal(event.status, 'upstream_error');
    assert.equal(event.costMicroKrw, '0');
  });
});
