import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import OpenAI from 'openai';
import { ENDLESS_LIMIT_BYTES } from '../fakes/hostile-answers.ts';
import { type FakeOpenAI, type RecordedRequest, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import { type Catalog, seedCatalog, startTestHub, type TestHub } from '../helpers/hub.ts';

const MiB = 1024 * 1024;

/**
 * A supplier that never stops talking: an SSE event with no end, a JSON body with no end. The hub
 * must cut it off at its caps (KAIHUB_UPSTREAM_MAX_EVENT_BYTES, KAIHUB_UPSTREAM_MAX_BODY_BYTES), answer
 * the client with an upstream error, hold no more than the cap meanwhile, and go on serving others.
 */
describe('a hostile upstream that never ends its answer', () => {
  let fake: FakeOpenAI;
  let t: TestHub;
  let catalog: Catalog;
  let client: OpenAI;

  before(async () => {
    fake = await startFakeOpenAI({ apiKey: 'upstream-secret' });
    // the event cap stays at its default (1 MiB); the body cap is set, as an operator would
    t = await startTestHub({ KAIHUB_UPSTREAM_MAX_BODY_BYTES: String(8 * MiB), KAIHUB_UPSTREAM_RETRIES: '0' });
    catalog = await seedCatalog(t, fake.url);
    client = new OpenAI({ apiKey: catalog.key, baseURL: `${t.url}/v1`, maxRetries: 0 });
    // warm up (connections, code paths) so the memory baseline below is the hub at rest
    await client.chat.completions.create({ model: 'hcx-test', messages: [{ role: 'user', content: 'hi' }] });
  });
  after(async () => {
    await t?.close();
    await fake?.close();
  });
  beforeEach(() => fake.reset());

  function post(path: string, body: unknown): Promise<Response> {
    return fetch(`${t.url}/v1${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${catalog.key}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  }

  /** The highest heap + buffer memory of this process (hub and fake) while `work` runs, above the start. */
  async function peakGrowth<T>(work: () => Promise<T>): Promise<{ value: T; grownBytes: number }> {
    const used = () => {
      const m = process.memoryUsage();
      return m.heapUsed + m.arrayBuffers;
    };
    const baseline = used();
    let peak = baseline;
    const timer = setInterval(() => {
      peak = Math.max(peak, used());
    }, 5);
    try {
      const value = await work();
      peak = Math.max(peak, used());
      return { value, grownBytes: peak - baseline };
    } finally {
      clearInterval(timer);
    }
  }

  /** Normal requests served while (and after) the hostile answer is being read. */
  async function othersAreServed(): Promise<void> {
    const answers = await Promise.all(
      [1, 2, 3, 4, 5].map((i) =>
        client.chat.completions.create({
          model: 'hcx-test',
          messages: [{ role: 'user', content: `다른 요청 ${i}` }],
        }),
      ),
    );
    for (const [i, a] of answers.entries())
      assert.equal(a.choices[0]?.message.content, `Echo: 다른 요청 ${i + 1}`);
  }

  async function usageEvent(requestId: string) {
    const r = await t.admin('GET', `/usage/events?requestId=${requestId}`);
    assert.equal(r.status, 200);
    return r.body.data[0];
  }

  async function cutOff(request: RecordedRequest): Promise<void> {
    await fake.waitForSettled(request, 10_000);
    assert.equal(request.aborted, true, 'the hub dropped the connection');
    // what sat in socket buffers aside, the fake got no further than a few caps
    assert.ok(
      request.bodyBytesSent < 64 * MiB,
      `the fake sent ${(request.bodyBytesSent / MiB).toFixed(0)} MiB of ${ENDLESS_LIMIT_BYTES / MiB}`,
    );
  }

  test('an SSE event that never ends: an SSE error for the client, bounded memory, others served', async () => {
    fake.queueBehaviors('endless-event');
    const { value, grownBytes } = await peakGrowth(async () => {
      const hostile = post('/chat/completions', {
        model: 'hcx-test',
        messages: [{ role: 'user', content: '끝없는 이벤트' }],
        stream: true,
      });
      await fake.waitForRequests(1);
      const [res] = await Promise.all([hostile, othersAreServed()]);
      return { res, text: await res.text() };
    });
    const { res, text } = value;
    assert.ok(grownBytes < 64 * MiB, `memory grew by ${(grownBytes / MiB).toFixed(0)} MiB`);
    if (res.status === 200) {
      // the stream had started: it ends with OpenAI's in-stream error event and no [DONE]
      assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
      const last = text.trim().split('\n\n').at(-1)!;
      const error = JSON.parse(last.replace(/^data: /, '')).error;
      assert.equal(error.code, 'upstream_error');
      assert.doesNotMatch(text, /\[DONE\]/);
    } else {
      assert.equal(res.status, 502);
      assert.equal(JSON.parse(text).error.code, 'upstream_error');
    }
    await cutOff(fake.requests[0]!);
    const event = await usageEvent(res.headers.get('x-request-id')!);
    assert.equal(event.status, 'upstream_error');
    assert.equal(event.costMicroKrw, '0');
    await othersAreServed();
  });

  test('a plain answer that never ends: 502 at the body cap, the upstream connection dropped', async () => {
    fake.queueBehaviors('endless-body');
    const { value: res, grownBytes } = await peakGrowth(async () => {
      const hostile = post('/chat/completions', {
        model: 'hcx-test',
        messages: [{ role: 'user', content: '끝없는 본문' }],
      });
      await fake.waitForRequests(1);
      const [answer] = await Promise.all([hostile, othersAreServed()]);
      return answer;
    });
    assert.equal(res.status, 502);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'upstream_error');
    assert.ok(grownBytes < 64 * MiB, `memory grew by ${(grownBytes / MiB).toFixed(0)} MiB`);
    await cutOff(fake.requests[0]!);
    const event = await usageEvent(res.headers.get('x-request-id')!);
    assert.equal(event.status, 'upstream_error');
  });

  test('an embeddings answer that never ends is cut off the same way', async () => {
    fake.queueBehaviors('endless-body');
    const res = await post('/embeddings', { model: 'embed-test', input: '끝없는 임베딩' });
    assert.equal(res.status, 502);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'upstream_error');
    await cutOff(fake.requests[0]!);
  });
});
