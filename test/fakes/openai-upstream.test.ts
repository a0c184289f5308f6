import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import {
  assertMatchesSchema,
  CHAT_COMPLETION_CHUNK,
  CHAT_COMPLETION_RESPONSE,
  EMBEDDING_RESPONSE,
  ERROR_RESPONSE,
  MODELS_LIST_RESPONSE,
} from '../helpers/openapi.ts';
import { type FakeOpenAI, fakeEmbedding, startFakeOpenAI } from './openai-upstream.ts';

const KEY = 'sk-fake-test-key';

describe('fake OpenAI upstream', () => {
  let fake: FakeOpenAI;
  let client: OpenAI;

  before(async () => {
    fake = await startFakeOpenAI({ apiKey: KEY });
    client = new OpenAI({ apiKey: KEY, baseURL: fake.url, maxRetries: 0, timeout: 5000 });
  });
  after(() => fake.close());

  const last = () => fake.requests.at(-1)!;
  const messages = [
    { role: 'system' as const, content: 'You are terse.' },
    { role: 'user' as const, content: 'hello there world' },
  ];

  test('lists models', async () => {
    const res = await fetch(`${fake.url}/models`, { headers: { authorization: `Bearer ${KEY}` } });
    const body = await res.json();
    assertMatchesSchema(MODELS_LIST_RESPONSE, body);
    const page = await client.models.list();
    assert.deepEqual(
      page.data.map((m) => m.id),
      ['fake-chat', 'fake-embed'],
    );
  });

  test('chat completion: echo reply and predictable usage', async () => {
    const completion = await client.chat.completions.create({ model: 'gpt-fake', messages });
    assertMatchesSchema(CHAT_COMPLETION_RESPONSE, completion);
    assert.match(completion.id, /^chatcmpl-/);
    assert.equal(completion.object, 'chat.completion');
    assert.equal(completion.model, 'gpt-fake');
    const choice = completion.choices[0]!;
    assert.deepEqual(choice.message, {
      role: 'assistant',
      content: 'Echo: hello there world',
      refusal: null,
      annotations: [],
    });
    assert.equal(choice.finish_reason, 'stop');
    assert.equal(choice.logprobs, null);
    // (3 + 3 words) + (3 + 3 words); 'Echo: hello there world' is 4 words
    assert.equal(completion.usage?.prompt_tokens, 12);
    assert.equal(completion.usage?.completion_tokens, 4);
    assert.equal(completion.usage?.total_tokens, 16);
    assert.equal(completion.usage?.prompt_tokens_details?.cached_tokens, 0);
    assert.equal(completion.usage?.completion_tokens_details?.reasoning_tokens, 0);

    const seen = last();
    assert.equal(seen.method, 'POST');
    assert.equal(seen.path, '/v1/chat/completions');
    assert.equal(seen.authorization, `Bearer ${KEY}`);
    assert.deepEqual(seen.body, { model: 'gpt-fake', messages });
    assert.equal(seen.status, 200);
    assert.equal(seen.aborted, false);
  });

  test('chat completion: max_tokens truncates words and reports length', async () => {
    const completion = await client.chat.completions.create({
      model: 'gpt-fake',
      messages,
      max_completion_tokens: 2,
      n: 2,
    });
    assert.equal(completion.choices.length, 2);
    assert.equal(completion.choices[1]!.message.content, 'Echo: hello');
    assert.equal(completion.choices[1]!.finish_reason, 'length');
    assert.equal(completion.usage?.completion_tokens, 4);
  });

  test('chat completion: x-fake-reply sets the reply, array content counts text parts', async () => {
    const completion = await client.chat.completions.create(
      { model: 'm', messages: [{ role: 'user', content: [{ type: 'text', text: 'one two' }] }] },
      { headers: { 'x-fake-reply': 'a b c d e' } },
    );
    assert.equal(completion.choices[0]!.message.content, 'a b c d e');
    assert.equal(completion.usage?.prompt_tokens, 5);
    assert.equal(completion.usage?.completion_tokens, 5);
  });

  test('stream without include_usage: role, one chunk per word, finish, [DONE]', async () => {
    const stream = await client.chat.completions.create({ model: 'gpt-fake', messages, stream: true });
    const chunks: ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    for (const chunk of chunks) assertMatchesSchema(CHAT_COMPLETION_CHUNK, chunk);
    assert.equal(chunks.length, 1 + 4 + 1);
    assert.deepEqual(chunks[0]!.choices[0]!.delta, { role: 'assistant', content: '', refusal: null });
    assert.equal(chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), 'Echo: hello there world');
    assert.equal(chunks.at(-1)!.choices[0]!.finish_reason, 'stop');
    assert.ok(chunks.every((c) => !('usage' in c)));
    assert.ok(chunks.every((c) => c.id === chunks[0]!.id && c.model === 'gpt-fake'));
  });

  test('stream with include_usage: usage null on every chunk, then a usage chunk with no choices', async () => {
    const stream = await client.chat.completions.create({
      model: 'gpt-fake',
      messages,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    for (const chunk of chunks) assertMatchesSchema(CHAT_COMPLETION_CHUNK, chunk);
    assert.equal(chunks.length, 1 + 4 + 1 + 1);
    assert.ok(chunks.slice(0, -1).every((c) => c.usage === null));
    const final = chunks.at(-1)!;
    assert.deepEqual(final.choices, []);
    assert.equal(final.usage?.prompt_tokens, 12);
    assert.equal(final.usage?.completion_tokens, 4);
    assert.equal(final.usage?.total_tokens, 16);
    assert.deepEqual((last().body as { stream_options: unknown }).stream_options, { include_usage: true });
  });

  test('stream wire format: SSE data events, each flushed on its own, ending in [DONE]', async () => {
    const res = await fetch(`${fake.url}/chat/completions`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${KEY}`,
        'content-type': 'application/json',
        'x-fake-chunk-delay-ms': '25',
      },
      body: JSON.stringify({ model: 'gpt-fake', messages, stream: true }),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const arrivals: { at: number; text: string }[] = [];
    const decoder = new TextDecoder();
    const started = performance.now();
    for await (const piece of res.body!)
      arrivals.push({ at: performance.now() - started, text: decoder.decode(piece) });
    const text = arrivals.map((a) => a.text).join('');
    const events = text.split('\n\n').filter((e) => e !== '');
    assert.ok(events.every((e) => e.startsWith('data: ')));
    assert.equal(events.at(-1), 'data: [DONE]');
    assert.equal(events.length, 7);
    // 6 delays of 25 ms: a buffering server would deliver everything in one piece at the end
    assert.ok(arrivals.length >= 5, `only ${arrivals.length} network reads`);
    assert.ok(arrivals.at(-1)!.at - arrivals[0]!.at >= 100);
  });

  test('stream_options without stream is rejected as OpenAI does', async () => {
    await assert.rejects(
      client.chat.completions.create({ model: 'm', messages, stream_options: { include_usage: true } }),
      (err: unknown) => err instanceof OpenAI.BadRequestError && err.param === 'stream_options',
    );
  });

  test('embeddings: float, default (client-side base64) and explicit base64 agree', async () => {
    const input = ['first input text', 'second'];
    const floats = await client.embeddings.create({ model: 'emb', input, encoding_format: 'float' });
    assertMatchesSchema(EMBEDDING_RESPONSE, floats);
    assert.equal(floats.data.length, 2);
    assert.equal(floats.data[0]!.embedding.length, 8);
    assert.deepEqual(floats.data[0]!.embedding, fakeEmbedding('first input text', 8));
    assert.notDeepEqual(floats.data[0]!.embedding, floats.data[1]!.embedding);
    const norm = Math.hypot(...floats.data[0]!.embedding);
    assert.ok(Math.abs(norm - 1) < 1e-6);
    assert.deepEqual(floats.usage, { prompt_tokens: 4, total_tokens: 4 });

    // Without encoding_format the official client asks for base64 and decodes it itself
    const decoded = await client.embeddings.create({ model: 'emb', input });
    assert.equal((last().body as { encoding_format: string }).encoding_format, 'base64');
    assert.deepEqual(Array.from(decoded.data[1]!.embedding), floats.data[1]!.embedding);

    const b64 = await client.embeddings.create({ model: 'emb', input: 'second', encoding_format: 'base64' });
    const raw = b64.data[0]!.embedding as unknown as string;
    assert.equal(typeof raw, 'string');
    const buf = Buffer.from(raw, 'base64');
    const values = Array.from({ length: buf.length / 4 }, (_, i) => buf.readFloatLE(i * 4));
    assert.deepEqual(values, floats.data[1]!.embedding);
  });

  test('embeddings: token arrays and dimensions', async () => {
    const res = await client.embeddings.create({
      model: 'emb',
      input: [
        [1, 2, 3],
        [4, 5],
      ],
      dimensions: 3,
      encoding_format: 'float',
    });
    assert.equal(res.data[1]!.embedding.length, 3);
    assert.deepEqual(res.usage, { prompt_tokens: 5, total_tokens: 5 });
  });

  test('error:<status> answers an OpenAI error that the client raises as APIError', async () => {
    for (const status of [400, 500, 503]) {
      await assert.rejects(
        client.chat.completions.create(
          { model: 'm', messages },
          { headers: { 'x-fake-behavior': `error:${status}` } },
        ),
        (err: unknown) =>
          err instanceof OpenAI.APIError && err.status === status && /fake upstream error/.test(err.message),
      );
    }
    await assert.rejects(
      client.embeddings.create({ model: 'e', input: 'x' }, { headers: { 'x-fake-behavior': 'error:429' } }),
      (err: unknown) =>
        err instanceof OpenAI.RateLimitError && err.status === 429 && err.headers?.get('retry-after') === '1',
    );
    const res = await fetch(`${fake.url}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'x-fake-behavior': 'error:500' },
      body: '{}',
    });
    assert.equal(res.status, 500);
    const body = await res.json();
    assertMatchesSchema(ERROR_RESPONSE, body);
    assert.deepEqual(body, {
      error: { message: 'fake upstream error 500', type: 'server_error', param: null, code: null },
    });
  });

  test('401 with a wrong or missing key', async () => {
    const wrong = new OpenAI({ apiKey: 'sk-wrong-key-123456', baseURL: fake.url, maxRetries: 0 });
    await assert.rejects(
      wrong.chat.completions.create({ model: 'm', messages }),
      (err: unknown) =>
        err instanceof OpenAI.AuthenticationError && err.status === 401 && err.code === 'invalid_api_key',
    );
    assert.equal(last().authorization, 'Bearer sk-wrong-key-123456');
    const res = await fetch(`${fake.url}/models`);
    assert.equal(res.status, 401);
    const body = (await res.json()) as { error: { type: string } };
    assertMatchesSchema(ERROR_RESPONSE, body);
    assert.equal(body.error.type, 'invalid_request_error');
  });

  test('setBehavior and queueBehaviors, with the header taking precedence', async () => {
    fake.setBehavior('error:502');
    fake.queueBehaviors('error:503', 'ok');
    const status = async (headers: Record<string, string> = {}) => {
      try {
        await client.models.list({ headers });
        return 200;
      } catch (err) {
        return (err as InstanceType<typeof OpenAI.APIError>).status;
      }
    };
    try {
      assert.equal(await status(), 503);
      assert.equal(await status({ 'x-fake-behavior': 'ok' }), 200);
      assert.equal(await status(), 200);
      assert.equal(await status(), 502);
      fake.setBehavior('error:504', { model: 'flaky' });
      await assert.rejects(
        client.chat.completions.create({ model: 'flaky', messages }),
        (err: unknown) => err instanceof OpenAI.APIError && err.status === 504,
      );
    } finally {
      fake.reset();
    }
    assert.equal(fake.requests.length, 0);
    assert.equal(await status(), 200);
  });

  test('slow:<ms> delays the response', async () => {
    const started = performance.now();
    await client.models.list({ headers: { 'x-fake-behavior': 'slow:120' } });
    assert.ok(performance.now() - started >= 110);
  });

  test('reset destroys the connection before answering', async () => {
    await assert.rejects(
      client.chat.completions.create({ model: 'm', messages }, { headers: { 'x-fake-behavior': 'reset' } }),
      (err: unknown) => err instanceof OpenAI.APIConnectionError,
    );
    const seen = await fake.waitForSettled(last());
    assert.equal(seen.aborted, false);
  });

  test('reset-mid-stream cuts the stream after a few chunks, without finish or [DONE]', async () => {
    const stream = await client.chat.completions.create(
      { model: 'm', messages, stream: true, stream_options: { include_usage: true } },
      { headers: { 'x-fake-behavior': 'reset-mid-stream' } },
    );
    const chunks: ChatCompletionChunk[] = [];
    await assert.rejects(async () => {
      for await (const chunk of stream) chunks.push(chunk);
    });
    assert.equal(chunks.length, 3);
    assert.ok(chunks.every((c) => c.choices[0]?.finish_reason === null));
  });

  test('no-usage omits usage when streaming and when not', async () => {
    const headers = { 'x-fake-behavior': 'no-usage' };
    const completion = await client.chat.completions.create({ model: 'm', messages }, { headers });
    assert.equal(completion.usage, undefined);
    const stream = await client.chat.completions.create(
      { model: 'm', messages, stream: true, stream_options: { include_usage: true } },
      { headers },
    );
    const chunks: ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    assert.equal(chunks.length, 6);
    assert.ok(chunks.every((c) => c.usage === undefined && c.choices.length === 1));
  });

  test('a client that gives up on a hanging request is recorded as aborted', async () => {
    const controller = new AbortController();
    const call = client.chat.completions.create(
      { model: 'm', messages },
      { headers: { 'x-fake-behavior': 'hang' }, signal: controller.signal },
    );
    const count = fake.requests.length;
    const [seen] = (await fake.waitForRequests(count + 1)).slice(-1);
    assert.equal(seen!.settled, false);
    controller.abort();
    await assert.rejects(call, (err: unknown) => err instanceof OpenAI.APIUserAbortError);
    await fake.waitForSettled(seen!);
    assert.equal(seen!.aborted, true);
    assert.equal(seen!.status, undefined);
  });

  test('a client that disconnects mid-stream is recorded as aborted', async () => {
    const stream = await client.chat.completions.create(
      { model: 'm', messages, stream: true },
      { headers: { 'x-fake-chunk-delay-ms': '50' } },
    );
    const seen = last();
    // Leaving the loop early makes the client abort its HTTP request
    for await (const _ of stream) break;
    await fake.waitForSettled(seen);
    assert.equal(seen.aborted, true);
    assert.equal(seen.status, 200);
  });

  test('close() ends hanging requests instead of waiting for them', async () => {
    const other = await startFakeOpenAI({ behavior: 'hang' });
    const pending = fetch(`${other.url}/models`).catch((err: unknown) => err);
    await other.waitForRequests(1);
    const started = performance.now();
    await other.close();
    assert.ok((await pending) instanceof Error);
    assert.ok(performance.now() - started < 1000);
    assert.equal(other.requests[0]!.aborted, false);
  });
});
