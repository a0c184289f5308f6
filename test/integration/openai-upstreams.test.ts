import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import OpenAI from 'openai';
import {
  countWords,
  embeddingToBase64,
  type FakeOpenAI,
  fakeEmbedding,
  startFakeOpenAI,
} from '../fakes/openai-upstream.ts';
import { type Catalog, seedCatalog, startTestHub, type TestHub } from '../helpers/hub.ts';
import {
  assertMatchesSchema,
  CHAT_COMPLETION_CHUNK,
  CHAT_COMPLETION_RESPONSE,
  EMBEDDING_RESPONSE,
  ERROR_RESPONSE,
} from '../helpers/openapi.ts';
import { addProduct, closedPort, postV1, usageEvent } from '../helpers/v1.ts';

const SINGLE_ATTEMPT = { KAIHUB_UPSTREAM_RETRIES: '0', KAIHUB_UPSTREAM_COOLDOWN_FAILURES: '0' };

const hello = [{ role: 'user' as const, content: '안녕하세요 반갑습니다' }];

describe('upstream failures and streaming mechanics', () => {
  let fake: FakeOpenAI;
  /** A second upstream that waits 150 ms between stream chunks. */
  let slowFake: FakeOpenAI;
  let t: TestHub;
  let catalog: Catalog;
  let client: OpenAI;
  let deadDeploymentId: string;
  let healthyFailoverDeploymentId: string;

  before(async () => {
    fake = await startFakeOpenAI({ apiKey: 'upstream-secret' });
    slowFake = await startFakeOpenAI({ apiKey: 'upstream-secret', chunkDelayMs: 150 });
    // one attempt per request (and failover on refused connections), no cooldowns: these tests are
    // about what one upstream failure becomes; routing.test.ts covers retries, cooldowns, fallbacks
    t = await startTestHub(SINGLE_ATTEMPT);
    catalog = await seedCatalog(t, fake.url);
    client = new OpenAI({ apiKey: catalog.key, baseURL: `${t.url}/v1`, maxRetries: 0 });
    const dead = `http://127.0.0.1:${await closedPort()}/v1`;
    [deadDeploymentId] = (await addProduct(t, catalog, 'dead-test', [{ baseUrl: dead }])).deploymentIds as [
      string,
    ];
    [, healthyFailoverDeploymentId] = (
      await addProduct(t, catalog, 'failover-test', [
        { baseUrl: dead, priority: 0 },
        { baseUrl: fake.url, priority: 1 },
      ])
    ).deploymentIds as [string, string];
    await addProduct(t, catalog, 'slow-test', [{ baseUrl: slowFake.url }]);
  });
  after(async () => {
    await t?.close();
    await fake?.close();
    await slowFake?.close();
  });
  beforeEach(() => {
    fake.reset();
    slowFake.reset();
  });

  describe('upstream errors before the answer', () => {
    test('an upstream 400 stays 400 with the upstream message, and costs nothing', async () => {
      fake.setBehavior('error:400', { model: 'fake-chat' });
      const answer = await postV1(t, catalog.key, '/chat/completions', {
        model: 'hcx-test',
        messages: hello,
      });
      assert.equal(answer.status, 400);
      assertMatchesSchema(ERROR_RESPONSE, answer.body);
      assert.equal(answer.body.error.type, 'invalid_request_error');
      assert.equal(answer.body.error.message, 'fake upstream error 400');
      const event = await usageEvent(t, answer.requestId);
      assert.equal(event.status, 'upstream_error');
      assert.equal(event.httpStatus, 400);
      assert.equal(event.costMicroKrw, '0');
      assert.equal(event.usageSource, 'none');

      await assert.rejects(
        client.chat.completions.create({ model: 'hcx-test', messages: hello, stream: true }),
        (e: unknown) => e instanceof OpenAI.BadRequestError && /fake upstream error 400/.test(e.message),
      );
    });

    test('an upstream 429 stays 429 with its retry-after', async () => {
      fake.setBehavior('error:429', { model: 'fake-chat' });
      const answer = await postV1(t, catalog.key, '/chat/completions', {
        model: 'hcx-test',
        messages: hello,
      });
      assert.equal(answer.status, 429);
      assertMatchesSchema(ERROR_RESPONSE, answer.body);
      assert.equal(answer.body.error.type, 'rate_limit_error');
      assert.equal(answer.body.error.code, 'upstream_rate_limited');
      assert.doesNotMatch(answer.body.error.message, /fake upstream error/);
      assert.equal(answer.headers.get('retry-after'), '1');
      const event = await usageEvent(t, answer.requestId);
      assert.equal(event.httpStatus, 429);
      assert.equal(event.costMicroKrw, '0');

      await assert.rejects(
        client.chat.completions.create({ model: 'hcx-test', messages: hello }),
        (e: unknown) => e instanceof OpenAI.RateLimitError && e.headers.get('retry-after') === '1',
      );
    });

    test('upstream 500, 503 and 401 become 502 naming the request id; the upstream text stays in the log', async () => {
      for (const status of [500, 503, 401]) {
        fake.setBehavior(`error:${status}`, { model: 'fake-chat' });
        for (const stream of [false, true]) {
          const answer = await postV1(t, catalog.key, '/chat/completions', {
            model: 'hcx-test',
            messages: hello,
            stream,
          });
          assert.equal(answer.status, 502, `upstream ${status}, stream ${stream}`);
          assertMatchesSchema(ERROR_RESPONSE, answer.body);
          assert.equal(answer.body.error.type, 'upstream_error');
          assert.doesNotMatch(answer.body.error.message, /fake upstream error/);
          assert.ok(answer.body.error.message.includes(answer.requestId));
          const event = await usageEvent(t, answer.requestId);
          assert.equal(event.status, 'upstream_error');
          assert.equal(event.httpStatus, 502);
          assert.equal(event.costMicroKrw, '0');
          assert.equal(event.stream, stream);
        }
      }
      assert.equal(fake.requests.length, 6, 'an upstream error is not retried');
    });

    test('a deployment that refuses connections is a 502 upstream_unreachable', async () => {
      for (const stream of [false, true]) {
        const answer = await postV1(t, catalog.key, '/chat/completions', {
          model: 'dead-test',
          messages: hello,
          stream,
        });
        assert.equal(answer.status, 502);
        assertMatchesSchema(ERROR_RESPONSE, answer.body);
        assert.equal(answer.body.error.code, 'upstream_unreachable');
        const event = await usageEvent(t, answer.requestId);
        assert.equal(event.status, 'upstream_error');
        assert.equal(event.deploymentId, deadDeploymentId);
        assert.equal(event.costMicroKrw, '0');
      }
      await assert.rejects(
        client.chat.completions.create({ model: 'dead-test', messages: hello }),
        (e: unknown) => e instanceof OpenAI.APIError && e.status === 502,
      );
    });

    test('failover: a refused deployment of priority 0 falls to the healthy one of priority 1', async () => {
      const { data, response } = await client.chat.completions
        .create({ model: 'failover-test', messages: hello })
        .withResponse();
      assertMatchesSchema(CHAT_COMPLETION_RESPONSE, data);
      assert.equal(data.model, 'failover-test');
      assert.equal(data.choices[0]?.message.content, 'Echo: 안녕하세요 반갑습니다');
      const event = await usageEvent(t, response.headers.get('x-request-id')!);
      assert.equal(event.status, 'ok');
      assert.equal(event.deploymentId, healthyFailoverDeploymentId);
      assert.notEqual(event.costMicroKrw, '0');

      const { data: stream, response: streamResponse } = await client.chat.completions
        .create({ model: 'failover-test', messages: hello, stream: true })
        .withResponse();
      let text = '';
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
      assert.equal(text, 'Echo: 안녕하세요 반갑습니다');
      const streamed = await usageEvent(t, streamResponse.headers.get('x-request-id')!);
      assert.equal(streamed.deploymentId, healthyFailoverDeploymentId);
      assert.equal(fake.requests.length, 2);
    });
  });

  describe('breaks, missing usage and disconnects', () => {
    test('a reset mid-stream ends the client stream with an error; what was delivered is charged', async () => {
      fake.setBehavior('reset-mid-stream', { model: 'fake-chat' });
      const { data: stream, response } = await client.chat.completions
        .create({ model: 'hcx-test', messages: [{ role: 'user', content: 'a b c d e f' }], stream: true })
        .withResponse();
      assert.equal(response.status, 200, 'the stream had started before the upstream broke');
      let text = '';
      // The hub ends the stream with `data: {"error": …}` and closes it; the openai client throws that
      // error as an APIError without a status (the HTTP status was already 200).
      await assert.rejects(
        (async () => {
          for await (const chunk of stream) {
            assertMatchesSchema(CHAT_COMPLETION_CHUNK, chunk);
            text += chunk.choices[0]?.delta.content ?? '';
          }
        })(),
        (e: unknown) =>
          e instanceof OpenAI.APIError &&
          e.status === undefined &&
          e.type === 'upstream_error' &&
          /upstream/i.test(e.message),
      );
      assert.equal(text, 'Echo: a', 'the chunks sent before the break arrived');
      const event = await usageEvent(t, response.headers.get('x-request-id')!);
      assert.equal(event.status, 'upstream_error');
      // "Echo: a" (7 characters) reached the client: ceil(7/4) = 2 completion tokens, estimated
      assert.equal(event.completionTokens, 2);
      assert.equal(event.usageSource, 'estimate');
      assert.ok(BigInt(event.costMicroKrw) > 0n);
      assert.equal(event.stream, true);
    });

    test('the raw stream of a reset carries an SSE error event and no [DONE]', async () => {
      fake.setBehavior('reset-mid-stream', { model: 'fake-chat' });
      const res = await fetch(`${t.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${catalog.key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'hcx-test', messages: hello, stream: true }),
      });
      assert.equal(res.status, 200);
      const text = await res.text();
      const events = text
        .split('\n\n')
        .filter((e) => e.startsWith('data: '))
        .map((e) => e.slice(6));
      assert.ok(!events.includes('[DONE]'), 'a broken stream must not look complete');
      const last = JSON.parse(events.at(-1)!);
      assertMatchesSchema(ERROR_RESPONSE, last);
    });

    test('a reset in the middle of a plain answer is a 502 at no cost', async () => {
      fake.setBehavior('reset-mid-stream', { model: 'fake-chat' });
      const answer = await postV1(t, catalog.key, '/chat/completions', {
        model: 'hcx-test',
        messages: hello,
      });
      assert.equal(answer.status, 502);
      assertMatchesSchema(ERROR_RESPONSE, answer.body);
      const event = await usageEvent(t, answer.requestId);
      assert.equal(event.status, 'upstream_error');
      assert.equal(event.costMicroKrw, '0');
    });

    test('an upstream that reports no usage is still metered, by estimate', async () => {
      fake.setBehavior('no-usage', { model: 'fake-chat' });
      const { data, response } = await client.chat.completions
        .create({ model: 'hcx-test', messages: hello })
        .withResponse();
      assert.equal(data.choices[0]?.message.content, 'Echo: 안녕하세요 반갑습니다');
      const plain = await usageEvent(t, response.headers.get('x-request-id')!);
      assert.equal(plain.status, 'ok');
      assert.equal(plain.usageSource, 'estimate');
      assert.ok(plain.promptTokens > 0 && plain.completionTokens > 0, 'estimated tokens');
      assert.equal(
        plain.costMicroKrw,
        (BigInt(plain.promptTokens) * 1000n + BigInt(plain.completionTokens) * 3000n).toString(),
      );

      const { data: stream, response: streamResponse } = await client.chat.completions
        .create({ model: 'hcx-test', messages: hello, stream: true, stream_options: { include_usage: true } })
        .withResponse();
      let usage: OpenAI.CompletionUsage | null | undefined;
      let text = '';
      for await (const chunk of stream) {
        assertMatchesSchema(CHAT_COMPLETION_CHUNK, chunk);
        text += chunk.choices[0]?.delta.content ?? '';
        if (chunk.usage) usage = chunk.usage;
      }
      assert.equal(text, 'Echo: 안녕하세요 반갑습니다');
      const streamed = await usageEvent(t, streamResponse.headers.get('x-request-id')!);
      assert.equal(streamed.status, 'ok');
      assert.equal(streamed.usageSource, 'estimate');
      assert.ok(BigInt(streamed.costMicroKrw) > 0n, 'an estimated stream is charged');
      assert.ok(usage, 'a client that asked for usage gets the estimate the hub charged');
      assert.equal(usage.prompt_tokens, streamed.promptTokens);
      assert.equal(usage.completion_tokens, streamed.completionTokens);
    });

    test('a client that disconnects mid-stream aborts the upstream call; the record says cancelled', async () => {
      slowFake.setReply(Array.from({ length: 30 }, (_, i) => `단어${i}`).join(' '));
      const { data: stream, response } = await client.chat.completions
        .create({ model: 'slow-test', messages: hello, stream: true })
        .withResponse();
      let chunks = 0;
      for await (const _chunk of stream) {
        if (++chunks === 2) break; // the openai client aborts its request on break
      }
      const upstream = (await slowFake.waitForRequests(1))[0]!;
      await slowFake.waitForSettled(upstream, 3000);
      assert.equal(upstream.aborted, true, 'the hub closed its upstream call');
      const event = await usageEvent(t, response.headers.get('x-request-id')!);
      assert.equal(event.status, 'cancelled');
      assert.equal(event.httpStatus, 499);
      assert.equal(event.stream, true);
      assert.ok(event.completionTokens < 30, 'only what was delivered is counted');
    });

    test('streams are not buffered: chunks arrive as the upstream sends them', async () => {
      slowFake.setReply('하나 둘 셋 넷');
      const started = performance.now();
      const stream = await client.chat.completions.create({
        model: 'slow-test',
        messages: hello,
        stream: true,
      });
      const arrivals: number[] = [];
      let text = '';
      for await (const chunk of stream) {
        arrivals.push(performance.now() - started);
        text += chunk.choices[0]?.delta.content ?? '';
      }
      assert.equal(text, '하나 둘 셋 넷');
      // role, 4 words, finish: 6 chunks 150 ms apart, so about 750 ms from first to last
      assert.equal(arrivals.length, 6);
      const first = arrivals[0]!;
      const last = arrivals.at(-1)!;
      assert.ok(first < 400, `first chunk after ${first.toFixed(0)} ms`);
      assert.ok(last - first > 500, `first ${first.toFixed(0)} ms, last ${last.toFixed(0)} ms: buffered?`);
      const spaced = arrivals.slice(1).filter((at, i) => at - arrivals[i]! > 75).length;
      assert.ok(spaced >= 4, `chunks arrived in bursts: ${arrivals.map((a) => a.toFixed(0)).join(', ')}`);
    });
  });

  describe('embeddings through the hub', () => {
    const inputs = ['하나 둘 셋', '넷'];
    const promptTokens = inputs.reduce((sum, s) => sum + countWords(s), 0);

    test('float: the fake vectors, model embed-test, in OpenAI shape, metered at 100 µ₩ per token', async () => {
      const { data, response } = await client.embeddings
        .create({ model: 'embed-test', input: inputs, encoding_format: 'float' })
        .withResponse();
      assertMatchesSchema(EMBEDDING_RESPONSE, data);
      assert.equal(data.model, 'embed-test');
      assert.deepEqual(
        data.data.map((d) => d.embedding),
        inputs.map((s) => fakeEmbedding(s, 8)),
      );
      assert.equal(data.usage.prompt_tokens, promptTokens);
      const upstream = fake.requests.at(-1)!;
      assert.deepEqual(upstream.body, { model: 'fake-embed', input: inputs, encoding_format: 'float' });
      const event = await usageEvent(t, response.headers.get('x-request-id')!);
      assert.equal(event.endpoint, 'embeddings');
      assert.equal(event.status, 'ok');
      assert.equal(event.usageSource, 'upstream');
      assert.equal(event.promptTokens, promptTokens);
      assert.equal(event.completionTokens, 0);
      assert.equal(event.costMicroKrw, String(promptTokens * 100));
    });

    test('base64: passed through as the upstream encoded it; the client default decodes it', async () => {
      const { data, response } = await client.embeddings
        .create({ model: 'embed-test', input: inputs, encoding_format: 'base64' })
        .withResponse();
      assert.equal(data.model, 'embed-test');
      assert.deepEqual(
        data.data.map((d) => d.embedding),
        inputs.map((s) => embeddingToBase64(fakeEmbedding(s, 8))),
      );
      const event = await usageEvent(t, response.headers.get('x-request-id')!);
      assert.equal(event.costMicroKrw, String(promptTokens * 100));

      // without encoding_format the openai client asks for base64 and decodes it to floats
      const decoded = await client.embeddings.create({ model: 'embed-test', input: '다섯' });
      assert.equal((fake.requests.at(-1)!.body as { encoding_format?: string }).encoding_format, 'base64');
      assert.deepEqual(Array.from(decoded.data[0]!.embedding), fakeEmbedding('다섯', 8));
    });

    test('no usage from the upstream: estimated and still charged; an upstream 500 costs nothing', async () => {
      fake.setBehavior('no-usage', { model: 'fake-embed' });
      const { response } = await client.embeddings
        .create({ model: 'embed-test', input: '여섯 일곱', encoding_format: 'float' })
        .withResponse();
      const estimated = await usageEvent(t, response.headers.get('x-request-id')!);
      assert.equal(estimated.usageSource, 'estimate');
      assert.ok(estimated.promptTokens > 0, 'estimated prompt tokens');
      assert.equal(estimated.costMicroKrw, String(estimated.promptTokens * 100));

      fake.setBehavior('error:500', { model: 'fake-embed' });
      const res = await fetch(`${t.url}/v1/embeddings`, {
        method: 'POST',
        headers: { authorization: `Bearer ${catalog.key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'embed-test', input: 'x' }),
      });
      assert.equal(res.status, 502);
      assertMatchesSchema(ERROR_RESPONSE, await res.json());
      const failed = await usageEvent(t, res.headers.get('x-request-id')!);
      assert.equal(failed.status, 'upstream_error');
      assert.equal(failed.costMicroKrw, '0');
    });
  });
});

describe('upstream time limits', () => {
  let fake: FakeOpenAI;
  let slowFake: FakeOpenAI;

  before(async () => {
    fake = await startFakeOpenAI({ apiKey: 'upstream-secret' });
    slowFake = await startFakeOpenAI({ apiKey: 'upstream-secret', chunkDelayMs: 150 });
  });
  after(async () => {
    await fake?.close();
    await slowFake?.close();
  });
  beforeEach(() => {
    fake.reset();
    slowFake.reset();
  });

  test('an upstream slower than the headers timeout is a 504, at no cost', async () => {
    const t = await startTestHub({ ...SINGLE_ATTEMPT, KAIHUB_UPSTREAM_HEADERS_TIMEOUT_MS: '300' });
    try {
      const catalog = await seedCatalog(t, fake.url);
      // far slower than any bound below: a hub that waited for it could not pass on a loaded machine
      fake.setBehavior('slow:10000', { model: 'fake-chat' });
      for (const stream of [false, true]) {
        const started = performance.now();
        const answer = await postV1(t, catalog.key, '/chat/completions', {
          model: 'hcx-test',
          messages: hello,
          stream,
        });
        const took = performance.now() - started;
        assert.equal(answer.status, 504);
        assertMatchesSchema(ERROR_RESPONSE, answer.body);
        assert.equal(answer.body.error.code, 'upstream_timeout');
        assert.ok(took >= 250 && took < 5000, `answered after ${took.toFixed(0)} ms`);
        const event = await usageEvent(t, answer.requestId);
        assert.equal(event.status, 'timeout');
        assert.equal(event.httpStatus, 504);
        assert.equal(event.costMicroKrw, '0');
      }
      const client = new OpenAI({ apiKey: catalog.key, baseURL: `${t.url}/v1`, maxRetries: 0 });
      await assert.rejects(
        client.chat.completions.create({ model: 'hcx-test', messages: hello }),
        (e: unknown) => e instanceof OpenAI.APIError && e.status === 504,
      );
      // a fast upstream is unaffected by the short limit
      fake.setBehavior('ok', { model: 'fake-chat' });
      const ok = await client.chat.completions.create({ model: 'hcx-test', messages: hello });
      assert.equal(ok.choices[0]?.message.content, 'Echo: 안녕하세요 반갑습니다');
    } finally {
      await t.close();
    }
  });

  test('an upstream that hangs past the total timeout is a 504 and the upstream call is closed', async () => {
    const t = await startTestHub({ ...SINGLE_ATTEMPT, KAIHUB_UPSTREAM_TIMEOUT_MS: '500' });
    try {
      const catalog = await seedCatalog(t, fake.url);
      await addProduct(t, catalog, 'slow-test', [{ baseUrl: slowFake.url }]);
      fake.setBehavior('hang', { model: 'fake-chat' });
      const started = performance.now();
      const answer = await postV1(t, catalog.key, '/chat/completions', {
        model: 'hcx-test',
        messages: hello,
      });
      const took = performance.now() - started;
      assert.equal(answer.status, 504);
      assertMatchesSchema(ERROR_RESPONSE, answer.body);
      assert.equal(answer.body.error.code, 'upstream_timeout');
      assert.ok(took >= 450 && took < 3000, `answered after ${took.toFixed(0)} ms`);
      const upstream = fake.requests.at(-1)!;
      await fake.waitForSettled(upstream);
      assert.equal(upstream.aborted, true);
      const event = await usageEvent(t, answer.requestId);
      assert.equal(event.status, 'timeout');
      assert.equal(event.costMicroKrw, '0');

      // a stream that outlives the total time ends with an error event and is charged for what it
      // delivered (it used to be free: a client could read until the total timeout and pay nothing)
      slowFake.setReply(Array.from({ length: 20 }, (_, i) => `w${i}`).join(' '));
      const client = new OpenAI({ apiKey: catalog.key, baseURL: `${t.url}/v1`, maxRetries: 0 });
      const { data: stream, response } = await client.chat.completions
        .create({ model: 'slow-test', messages: hello, stream: true })
        .withResponse();
      let received = '';
      await assert.rejects(
        (async () => {
          for await (const chunk of stream) received += chunk.choices[0]?.delta.content ?? '';
        })(),
        (e: unknown) => e instanceof OpenAI.APIError && e.code === 'upstream_timeout',
      );
      assert.ok(received.length > 0, 'part of the answer arrived before the total time was up');
      const streamed = await usageEvent(t, response.headers.get('x-request-id')!);
      assert.equal(streamed.status, 'timeout');
      assert.equal(streamed.completionTokens, Math.ceil(received.length / 4));
      assert.ok(BigInt(streamed.costMicroKrw) > 0n);
    } finally {
      await t.close();
    }
  });
});
