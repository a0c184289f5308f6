import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import OpenAI from 'openai';
import { type FakeOpenAI, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import { type Catalog, seedCatalog, startTestHub, type TestHub } from '../helpers/hub.ts';

/**
 * Fields a supplier bills or stores on its side, at a price the product does not carry, never leave
 * the hub; the fields an adapter declares (`ProviderAdapter.params`) do, unchanged.
 */
const BILLED_OR_STORED = {
  service_tier: 'priority',
  store: true,
  metadata: { project: 'x' },
  web_search_options: { search_context_size: 'high' },
  prediction: { type: 'content', content: 'predicted text' },
  audio: { voice: 'alloy', format: 'wav' },
  modalities: ['text', 'audio'],
  prompt_cache_key: 'shared-cache',
  prompt_cache_retention: '24h',
  // vLLM's own: a scheduling priority, server-side templates and structured output by another name
  priority: -100,
  chat_template: '{{ messages }}',
  guided_json: { type: 'object' },
  best_of: 8,
  unknown_field: 1,
};

const ALLOWED = {
  temperature: 0.5,
  top_p: 0.9,
  stop: ['끝'],
  max_tokens: 50,
  presence_penalty: 0.1,
  frequency_penalty: 0.2,
  logit_bias: { '50256': -100 },
  seed: 7,
  user: 'user-1',
  parallel_tool_calls: false,
  tools: [{ type: 'function', function: { name: 'now', parameters: { type: 'object', properties: {} } } }],
  tool_choice: 'auto',
  response_format: { type: 'text' },
  reasoning_effort: 'low',
  top_k: 40,
  min_p: 0.05,
  repetition_penalty: 1.1,
  chat_template_kwargs: { enable_thinking: false },
};

describe('request fields passed to an openai-compatible supplier are allowlisted', () => {
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

  function assertForwarded(received: Record<string, unknown>, allowed: Record<string, unknown>) {
    for (const field of Object.keys(BILLED_OR_STORED))
      assert.equal(field in received, false, `'${field}' reached the supplier`);
    for (const [field, value] of Object.entries(allowed))
      assert.deepEqual(received[field], value, `'${field}' should reach the supplier unchanged`);
  }

  test('a plain chat: billed or stored fields dropped, the others passed', async () => {
    const answer = await client.chat.completions.create({
      model: 'hcx-test',
      messages: [{ role: 'user', content: '안녕' }],
      ...ALLOWED,
      ...BILLED_OR_STORED,
    } as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming);
    assert.equal(answer.choices[0]?.message.content, 'Echo: 안녕');
    const received = fake.requests.at(-1)!.body as Record<string, unknown>;
    assertForwarded(received, ALLOWED);
    assert.equal(received.model, 'fake-chat');
    assert.deepEqual(received.messages, [{ role: 'user', content: '안녕' }]);
  });

  test('a stream: the same, with the usage the hub asks for', async () => {
    const stream = await client.chat.completions.create({
      model: 'hcx-test',
      messages: [{ role: 'user', content: '하나 둘' }],
      stream: true,
      stream_options: { include_usage: true },
      ...ALLOWED,
      ...BILLED_OR_STORED,
    } as unknown as OpenAI.ChatCompletionCreateParamsStreaming);
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    assert.equal(text, 'Echo: 하나 둘');
    const received = fake.requests.at(-1)!.body as Record<string, unknown>;
    assertForwarded(received, ALLOWED);
    assert.equal(received.stream, true);
    assert.deepEqual(received.stream_options, { include_usage: true });
  });

  test('embeddings: input, encoding_format, dimensions and user pass; the rest is dropped', async () => {
    const allowed = { input: ['가', '나'], encoding_format: 'float', dimensions: 4, user: 'user-1' };
    const answer = await client.embeddings.create({
      model: 'embed-test',
      ...allowed,
      ...BILLED_OR_STORED,
    } as unknown as OpenAI.EmbeddingCreateParams);
    assert.equal(answer.data[0]?.embedding.length, 4);
    const received = fake.requests.at(-1)!.body as Record<string, unknown>;
    assertForwarded(received, allowed);
    assert.equal(received.model, 'fake-embed');
  });
});
