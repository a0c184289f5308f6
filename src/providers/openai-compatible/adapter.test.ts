import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { Agent } from 'undici';
import { UpstreamError, type UpstreamTarget } from '../adapter.ts';
import { OpenAICompatibleAdapter } from './adapter.ts';

/**
 * A server that answers a stream request with a whole JSON body, as an upstream that ignores `stream`
 * does. Dropping a body already received whole makes undici emit an error: unheard, it killed the hub.
 */
let server: Server;
let target: UpstreamTarget;
const agent = new Agent();

before(async () => {
  server = createServer((req, res) => {
    const mode = req.headers['x-test'];
    // each answer whole, with its length, so the hub holds all of it when it gives up on it
    const [status, type, body] =
      mode === 'long-event'
        ? [200, 'text/event-stream', `data: ${'a'.repeat(2 * 1024 * 1024)}\n\n`]
        : mode === 'long-error'
          ? [500, 'application/json', `{"error":{"message":"${'e'.repeat(200 * 1024)}"}}`]
          : [200, 'application/json', '{"id":"x","object":"chat.completion","choices":[]}'];
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  target = {
    deploymentId: 'd',
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    apiKey: null,
    upstreamModel: 'm',
  };
});
after(async () => {
  await agent.close();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

/** Runs `work`, then waits a moment, and returns what reached `uncaughtException` meanwhile. */
async function uncaughtDuring(work: () => Promise<void>): Promise<unknown[]> {
  const uncaught: unknown[] = [];
  const onUncaught = (error: unknown) => uncaught.push(error);
  process.on('uncaughtException', onUncaught);
  try {
    await work();
    await new Promise((resolve) => setTimeout(resolve, 100));
  } finally {
    process.off('uncaughtException', onUncaught);
  }
  return uncaught;
}

const request = { model: 'p', messages: [{ role: 'user', content: 'hi' }] };
const options = (mode: string) => ({
  signal: new AbortController().signal,
  headersTimeoutMs: 5000,
  headers: { 'x-test': mode },
});

test('a JSON answer to a stream request is a protocol error, and dropping its body throws nothing later', async () => {
  const adapter = new OpenAICompatibleAdapter(agent);
  const uncaught = await uncaughtDuring(() =>
    assert.rejects(
      adapter.chatStream(target, request, options('json')),
      (error: unknown) =>
        UpstreamError.isInstance(error) &&
        error.kind === 'protocol' &&
        /application\/json/.test(error.message),
    ),
  );
  assert.deepEqual(uncaught, []);
});

test('an over-long event received whole, and an over-long error body: clean errors, nothing later', async () => {
  const adapter = new OpenAICompatibleAdapter(agent);
  const uncaught = await uncaughtDuring(async () => {
    const stream = await adapter.chatStream(target, request, options('long-event'));
    await assert.rejects(
      async () => {
        for await (const _ of stream) assert.fail('no part comes out of an over-long event');
      },
      (error: unknown) => UpstreamError.isInstance(error) && /over-long SSE line/.test(error.message),
    );
    await assert.rejects(
      adapter.chat(target, request, options('long-error')),
      (error: unknown) =>
        UpstreamError.isInstance(error) && error.kind === 'http' && error.details.status === 500,
    );
  });
  assert.deepEqual(uncaught, []);
});

/** An upstream that sends `count` chunks of `size` characters as fast as its socket takes them. */
async function fastUpstream(count: number, size: number) {
  const state = { written: 0, blocked: false };
  const chunk = `data: ${JSON.stringify({ id: 'x', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: 'y'.repeat(size) } }] })}\n\n`;
  const fast = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    let sent = 0;
    const pump = () => {
      while (sent < count) {
        sent++;
        state.written += chunk.length;
        if (!res.write(chunk)) {
          state.blocked = true;
          res.once('drain', () => {
            state.blocked = false;
            pump();
          });
          return;
        }
      }
      res.end('data: [DONE]\n\n');
    };
    pump();
  });
  await new Promise<void>((resolve) => fast.listen(0, '127.0.0.1', resolve));
  const fastTarget: UpstreamTarget = {
    deploymentId: 'd',
    baseUrl: `http://127.0.0.1:${(fast.address() as AddressInfo).port}/v1`,
    apiKey: null,
    upstreamModel: 'm',
  };
  return { state, target: fastTarget, close: () => new Promise((resolve) => fast.close(resolve)) };
}

/** A stream from `target` with this idle timeout, as an iterator of its parts. */
async function streamParts(target: UpstreamTarget, idleTimeoutMs: number) {
  const adapter = new OpenAICompatibleAdapter(agent);
  const parts = await adapter.chatStream(target, request, {
    signal: new AbortController().signal,
    headersTimeoutMs: 5000,
    idleTimeoutMs,
  });
  return parts[Symbol.asyncIterator]();
}

/** Reads a stream to its end: how many parts there were, counting `before` already read, and the last. */
async function readRest(iterator: AsyncIterator<unknown>, before: number) {
  let count = before;
  let last: unknown;
  for (;;) {
    const next = await iterator.next();
    if (next.done) return { count, last };
    last = next.value;
    count++;
  }
}

test('a reader that stops holds the upstream back (at most 64 KiB unread), and reading on ends with done', async () => {
  const upstream = await fastUpstream(20_000, 900);
  const iterator = await streamParts(upstream.target, 2000);
  assert.equal((await iterator.next()).done, false);
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.ok(upstream.state.blocked, 'the upstream waits for its socket');
  // what the kernel's socket buffers take, not the 18 MB the upstream had to send
  assert.ok(upstream.state.written < 8_000_000, `${upstream.state.written} bytes written`);
  const { count, last } = await readRest(iterator, 1);
  assert.equal(count, 20_001);
  assert.deepEqual(last, { type: 'done' });
  await upstream.close();
});

test('held back longer than the idle timeout: no timeout, the hub is the one waiting', async () => {
  const upstream = await fastUpstream(3000, 2000);
  const iterator = await streamParts(upstream.target, 200);
  await iterator.next();
  await new Promise((resolve) => setTimeout(resolve, 700));
  const { count } = await readRest(iterator, 1);
  assert.equal(count, 3001);
  await upstream.close();
});

test('the call aborted while the reader waits: the reader gets the abort, the connection is dropped', async () => {
  const slow = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('data: {"id":"x","choices":[]}\n\n');
  });
  await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
  const adapter = new OpenAICompatibleAdapter(agent);
  const controller = new AbortController();
  const parts = await adapter.chatStream(
    { ...target, baseUrl: `http://127.0.0.1:${(slow.address() as AddressInfo).port}/v1` },
    request,
    { signal: controller.signal, headersTimeoutMs: 5000, idleTimeoutMs: 0 },
  );
  const iterator = parts[Symbol.asyncIterator]();
  assert.equal((await iterator.next()).done, false);
  const waiting = iterator.next();
  controller.abort(new DOMException('total upstream time exceeded', 'TimeoutError'));
  await assert.rejects(
    waiting,
    (error: unknown) => UpstreamError.isInstance(error) && error.kind === 'timeout',
  );
  assert.equal((await iterator.next()).done, true);
  slow.closeAllConnections();
  await new Promise((resolve) => slow.close(resolve));
});

test('return() while a next() waits: the waiting next() ends done, and the upstream connection is cut', async () => {
  let closed: (how: string) => void;
  const upstreamClosed = new Promise<string>((resolve) => {
    closed = resolve;
  });
  const silent = createServer((req, res) => {
    req.resume();
    res.on('close', () => closed(res.writableFinished ? 'finished' : 'cut'));
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('data: {"id":"x","choices":[]}\n\n');
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const adapter = new OpenAICompatibleAdapter(agent);
  const parts = await adapter.chatStream(
    { ...target, baseUrl: `http://127.0.0.1:${(silent.address() as AddressInfo).port}/v1` },
    request,
    { signal: new AbortController().signal, headersTimeoutMs: 5000, idleTimeoutMs: 0 },
  );
  const iterator = parts[Symbol.asyncIterator]();
  assert.equal((await iterator.next()).done, false);
  const waiting = iterator.next();
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(await iterator.return!(), { done: true, value: undefined });
  assert.deepEqual(await waiting, { done: true, value: undefined });
  assert.equal(await upstreamClosed, 'cut');
  silent.closeAllConnections();
  await new Promise((resolve) => silent.close(resolve));
});
