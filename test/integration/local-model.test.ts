import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { tinyPromptTokens, writeTinyGguf } from '../fakes/tiny-gguf.ts';
import { type Catalog, seedCatalog, startTestHub, type TestHub } from '../helpers/hub.ts';
import {
  assertMatchesSchema,
  CHAT_COMPLETION_CHUNK,
  CHAT_COMPLETION_RESPONSE,
  EMBEDDING_RESPONSE,
} from '../helpers/openapi.ts';

describe('a local model in-process (adapter local, node-llama-cpp)', () => {
  let dir: string;
  let t: TestHub;
  let catalog: Catalog;
  let client: OpenAI;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kaihub-models-'));
    await writeTinyGguf(join(dir, 'tiny.gguf'));
    t = await startTestHub({ KAIHUB_MODELS_DIR: dir, KAIHUB_LOCAL_THREADS: '1', KAIHUB_LOCAL_PARALLEL: '2' });
    catalog = await seedCatalog(t, 'http://127.0.0.1:9');
    // both products served by the tiny model in the hub's own process
    const chat = await t.admin('PATCH', `/deployments/${catalog.deploymentId}`, {
      adapter: 'local',
      baseUrl: 'local:',
      apiKey: null,
      upstreamModel: 'tiny.gguf',
    });
    assert.equal(chat.status, 200, JSON.stringify(chat.body));
    assert.equal(chat.body.baseUrl, 'local:');
    const list = await t.admin('GET', `/deployments?productId=${catalog.embeddingProductId}`);
    const embed = await t.admin('PATCH', `/deployments/${list.body.data[0].id}`, {
      adapter: 'local',
      baseUrl: 'local:',
      upstreamModel: 'tiny.gguf',
    });
    assert.equal(embed.status, 200, JSON.stringify(embed.body));
    client = new OpenAI({ apiKey: catalog.key, baseURL: `${t.url}/v1`, maxRetries: 0 });
  });
  after(async () => {
    await t?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function usageEvent(requestId: string) {
    const r = await t.admin('GET', `/usage/events?requestId=${requestId}`);
    assert.equal(r.status, 200);
    return r.body.data[0];
  }

  test('a plain completion: OpenAI shape, the model’s own counts, metered', async () => {
    const messages = [
      { role: 'system' as const, content: '짧게 답하세요.' },
      { role: 'user' as const, content: '안녕하세요 K-AI Hub' },
    ];
    const { data, response } = await client.chat.completions
      .create({ model: 'hcx-test', messages, max_tokens: 6, temperature: 0.8, seed: 3 })
      .withResponse();
    assertMatchesSchema(CHAT_COMPLETION_RESPONSE, data);
    assert.equal(data.model, 'hcx-test');
    assert.equal(data.object, 'chat.completion');
    assert.equal(data.choices[0]?.message.role, 'assistant');
    assert.equal(typeof data.choices[0]?.message.content, 'string');
    assert.ok(['stop', 'length'].includes(data.choices[0]!.finish_reason));
    const promptTokens = tinyPromptTokens(messages);
    const completion = data.usage!.completion_tokens;
    assert.ok(completion >= 1 && completion <= 6, `completion tokens ${completion}`);
    if (data.choices[0]!.finish_reason === 'length') assert.equal(completion, 6);
    assert.deepEqual(data.usage, {
      prompt_tokens: promptTokens,
      completion_tokens: completion,
      total_tokens: promptTokens + completion,
    });

    const event = await usageEvent(response.headers.get('x-request-id')!);
    assert.equal(event.promptTokens, promptTokens);
    assert.equal(event.completionTokens, completion);
    assert.equal(event.usageSource, 'upstream');
    assert.equal(event.deploymentId, catalog.deploymentId);
    assert.equal(event.costMicroKrw, (BigInt(promptTokens) * 1000n + BigInt(completion) * 3000n).toString());
  });

  test('a stream: role first, text deltas, finish_reason, usage when asked; metered', async () => {
    const messages = [{ role: 'user' as const, content: '스트리밍 해 주세요' }];
    const { data: stream, response } = await client.chat.completions
      .create({
        model: 'hcx-test',
        messages,
        max_tokens: 8,
        stream: true,
        stream_options: { include_usage: true },
      })
      .withResponse();
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    for (const chunk of chunks) assertMatchesSchema(CHAT_COMPLETION_CHUNK, chunk);
    assert.equal(chunks[0]?.choices[0]?.delta.role, 'assistant');
    assert.ok(new Set(chunks.map((c) => c.id)).size === 1, 'one id for the whole stream');
    const finish = chunks.find((c) => c.choices[0]?.finish_reason);
    assert.ok(finish && ['stop', 'length'].includes(finish.choices[0]!.finish_reason!));
    const last = chunks.at(-1)!;
    assert.deepEqual(last.choices, []);
    const promptTokens = tinyPromptTokens(messages);
    const completion = last.usage!.completion_tokens;
    assert.ok(completion >= 1 && completion <= 8);
    assert.equal(last.usage!.prompt_tokens, promptTokens);
    assert.equal(last.usage!.total_tokens, promptTokens + completion);

    const event = await usageEvent(response.headers.get('x-request-id')!);
    assert.equal(event.promptTokens, promptTokens);
    assert.equal(event.completionTokens, completion);
    assert.equal(event.usageSource, 'upstream');
  });

  test('parallel requests share the model (two sequences, the rest queue)', async () => {
    const results = await Promise.all(
      [1, 2, 3].map((i) =>
        client.chat.completions.create({
          model: 'hcx-test',
          messages: [{ role: 'user', content: `질문 ${i}` }],
          max_tokens: 4,
        }),
      ),
    );
    for (const r of results)
      assert.equal(r.usage?.prompt_tokens, tinyPromptTokens([{ role: 'user', content: '질문 1' }]));
  });

  test('embeddings from the model’s embedding context, base64 as the client asks', async () => {
    const { data, response } = await client.embeddings
      .create({ model: 'embed-test', input: ['안녕', 'hub'] })
      .withResponse();
    assertMatchesSchema(EMBEDDING_RESPONSE, data);
    assert.equal(data.data.length, 2);
    assert.equal(data.data[0]?.embedding.length, 64);
    assert.ok(data.data[0]!.embedding.every((x) => Number.isFinite(x)));
    assert.equal(data.usage.prompt_tokens, Buffer.byteLength('안녕') + 3);
    const event = await usageEvent(response.headers.get('x-request-id')!);
    assert.equal(event.promptTokens, Buffer.byteLength('안녕') + 3);
  });

  test('a missing model file is a clean error, not a crash', async () => {
    const r = await t.admin('POST', '/products', {
      supplierId: catalog.supplierId,
      model: 'missing-local',
      displayName: 'Missing',
      purposes: ['chat'],
      modality: 'text',
      contextWindow: 512,
      priceInputPer1M: '0',
      priceOutputPer1M: '0',
      residency: 'domestic',
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const d = await t.admin('POST', '/deployments', {
      productId: r.body.id,
      adapter: 'local',
      baseUrl: 'local:',
      upstreamModel: 'nothing-here.gguf',
    });
    assert.equal(d.status, 201, JSON.stringify(d.body));
    await assert.rejects(
      client.chat.completions.create({ model: 'missing-local', messages: [{ role: 'user', content: 'hi' }] }),
      (error: unknown) =>
        error instanceof OpenAI.APIError && error.status !== undefined && error.status >= 500,
    );
  });
});
