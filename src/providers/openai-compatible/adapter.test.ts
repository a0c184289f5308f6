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
