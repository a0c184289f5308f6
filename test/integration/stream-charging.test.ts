import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type FakeOpenAI, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import { type Catalog, seedCatalog, startTestHub, type TestHub } from '../helpers/hub.ts';
import { addProduct, usageEvent } from '../helpers/v1.ts';

const words = (n: number) => Array.from({ length: n }, (_, i) => `w${i}`).join(' ');

/** Streams a chat, reads `chunks` content chunks, then hangs up; resolves with the request id. */
function readThenHangUp(t: TestHub, key: string, model: string, chunks: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    });
    req.on('response', (res) => {
      const requestId = res.headers['x-request-id'] as string;
      let seen = 0;
      res.on('data', (d: Buffer) => {
        seen += (d.toString().match(/"content":" ?w\d/g) ?? []).length;
        if (seen >= chunks) {
          req.destroy();
          resolve(requestId);
        }
      });
    });
    req.on('error', () => {});
    req.on('close', () => reject(new Error('closed before enough chunks')));
    req.end(JSON.stringify({ model, messages: [{ role: 'user', content: 'tell me' }], stream: true }));
  });
}

describe('a stream that ends early is charged for what it delivered', () => {
  let fake: FakeOpenAI;
  let t: TestHub;
  let catalog: Catalog;
  before(async () => {
    fake = await startFakeOpenAI({ apiKey: 'upstream-secret', chunkDelayMs: 30 });
    t = await startTestHub({ KAIHUB_STREAM_DRAIN_MS: '3000' });
    catalog = await seedCatalog(t, fake.url);
  });
  after(async () => {
    await t?.close();
    await fake?.close();
  });

  test('a client that hangs up mid-stream pays the upstream’s own counts, read by draining it', async () => {
    await addProduct(t, catalog, 'drain-test', [{ baseUrl: fake.url, upstreamModel: 'drain-chat' }]);
    fake.setReply(words(30)); // ≈ 0.9 s of stream
    const requestId = await readThenHangUp(t, catalog.key, 'drain-test', 3);
    const event = await usageEvent(t, requestId, 5000);
    assert.equal(event.status, 'cancelled');
    assert.equal(event.httpStatus, 499);
    assert.equal(event.usageSource, 'upstream', 'the counts the supplier bills, not a guess');
    assert.equal(event.completionTokens, 30);
    assert.equal(event.promptTokens, 5);
    assert.ok(BigInt(event.costMicroKrw) > 0n);
    const upstream = fake.requests.at(-1)!;
    await fake.waitForSettled(upstream);
    assert.equal(upstream.aborted, false, 'read to its end within the drain time');
  });

  test('a drain is bounded: past KAIHUB_STREAM_DRAIN_MS the upstream is cut and what was delivered is estimated', async () => {
    const short = await startTestHub({ KAIHUB_STREAM_DRAIN_MS: '100' }, { replicaOf: t });
    try {
      fake.setReply(words(200)); // ≈ 6 s of stream
      const started = Date.now();
      const requestId = await readThenHangUp(short, catalog.key, 'drain-test', 3);
      const upstream = fake.requests.at(-1)!;
      await fake.waitForSettled(upstream, 3000);
      assert.equal(upstream.aborted, true);
      assert.ok(Date.now() - started < 2500, 'the upstream was cut soon after the client left');
      const event = await usageEvent(short, requestId, 5000);
      assert.equal(event.status, 'cancelled');
      assert.equal(event.usageSource, 'estimate');
      assert.ok(event.completionTokens >= 2, `${event.completionTokens} tokens for the delivered words`);
      assert.ok(BigInt(event.costMicroKrw) > 0n);
    } finally {
      await short.close();
    }
  });

  test('a client that stops reading is ended at the total time and pays for what it was sent', async () => {
    const slow = await startTestHub({ KAIHUB_UPSTREAM_TIMEOUT_MS: '1000' }, { replicaOf: t });
    try {
      const quick = await startFakeOpenAI({ apiKey: 'upstream-secret', reply: words(40_000) });
      try {
        await addProduct(slow, catalog, 'slow-reader', [{ baseUrl: quick.url, upstreamModel: 'big-chat' }]);
        const socket = connect(Number(new URL(slow.url).port), '127.0.0.1');
        const body = JSON.stringify({
          model: 'slow-reader',
          messages: [{ role: 'user', content: 'x' }],
          stream: true,
        });
        socket.write(
          `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${catalog.key}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
        );
        let head = '';
        await new Promise<void>((resolve) => {
          const onData = (d: Buffer) => {
            head += d.toString('latin1');
            if (head.includes('\r\n\r\n')) {
              socket.off('data', onData);
              socket.pause(); // and never read again
              resolve();
            }
          };
          socket.on('data', onData);
        });
        const requestId = /x-request-id: (\S+)/i.exec(head)![1]!;
        const started = Date.now();
        // the call ends at the total time although the client never read a byte of the body
        const event = await usageEvent(slow, requestId, 6000);
        assert.ok(Date.now() - started < 5000, 'ended at the total time, not held open');
        assert.equal(event.status, 'timeout');
        assert.ok(event.completionTokens > 0, 'what was written to the client is counted');
        assert.ok(BigInt(event.costMicroKrw) > 0n, 'and charged');
        socket.destroy();
      } finally {
        await quick.close();
      }
    } finally {
      await slow.close();
    }
  });
});
