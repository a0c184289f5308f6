#!/usr/bin/env node
// Minimal, deliberately cheap fake OpenAI-compatible upstream. It runs in its
// own process so the load generator and the gateway under test never share its
// event loop. Every response is a pre-serialised Buffer: the upstream should
// cost as little as possible so that what the benchmark sees is the gateway.
//
// A request with `"stream":true` gets a slow stream instead: its first chunk at once, then one chunk
// every --chunk-interval-ms (default 1000) until --chunks (default 12) have gone, then the usage chunk
// and [DONE]. The first chunk carries the time it was sent (epoch ms, in `system_fingerprint`), so a
// client can tell how long after the supplier's first byte its own first byte came.
//
// Usage: node bench/fake-upstream.mjs [--port=0] [--chunks=12] [--chunk-interval-ms=1000] [--content=TEXT]
// (--content: the reply of every plain completion; the evaluation benchmark has it answer a choice)
// Prints one JSON line `{"ready":true,"port":N}` on stdout once listening.
import http from 'node:http';

const args = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, '').split('=');
    return [k, v ?? 'true'];
  }),
);
const port = Number(args.port ?? 0);
const streamChunks = Number(args.chunks ?? 12);
const chunkIntervalMs = Number(args['chunk-interval-ms'] ?? 1000);
const content = args.content ?? '안녕하세요! 무엇을 도와드릴까요?';

const completion = Buffer.from(
  JSON.stringify({
    id: 'chatcmpl-bench',
    object: 'chat.completion',
    created: 1700000000,
    model: 'fake-model',
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content },
        finish_reason: 'stop',
      },
    ],
    usage: { prompt_tokens: 9, completion_tokens: 12, total_tokens: 21 },
  }),
);
const models = Buffer.from(
  JSON.stringify({
    object: 'list',
    data: [{ id: 'fake-model', object: 'model', created: 1700000000, owned_by: 'bench' }],
  }),
);
const notFound = Buffer.from(
  JSON.stringify({ error: { message: 'not found', type: 'invalid_request_error' } }),
);

let served = 0;

const chunkOf = (content, fingerprint) =>
  `data: ${JSON.stringify({
    id: 'chatcmpl-bench',
    object: 'chat.completion.chunk',
    created: 1700000000,
    model: 'fake-model',
    system_fingerprint: fingerprint,
    choices: [{ index: 0, delta: { content }, finish_reason: null }],
  })}\n\n`;
const streamEnd = Buffer.from(
  `data: ${JSON.stringify({ id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 1700000000, model: 'fake-model', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n` +
    `data: ${JSON.stringify({ id: 'chatcmpl-bench', object: 'chat.completion.chunk', created: 1700000000, model: 'fake-model', choices: [], usage: { prompt_tokens: 9, completion_tokens: streamChunks, total_tokens: 9 + streamChunks } })}\n\n` +
    'data: [DONE]\n\n',
);

/** A slow stream: the first chunk at once (stamped with its send time), then one a tick. */
function stream(res) {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.write(chunkOf('첫', String(performance.timeOrigin + performance.now())));
  let sent = 1;
  const timer = setInterval(() => {
    if (res.destroyed) {
      clearInterval(timer);
      return;
    }
    if (sent < streamChunks) {
      res.write(chunkOf(' 토큰', 'fp_bench'));
      sent++;
      return;
    }
    clearInterval(timer);
    res.end(streamEnd);
  }, chunkIntervalMs);
  res.on('close', () => clearInterval(timer));
}

function send(res, status, body) {
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': body.length,
  });
  res.end(body);
}

// Node's default keep-alive timeout (5 s), like most upstreams. A longer one
// would be harmful here: Portkey copies the upstream's `keep-alive: timeout=N`
// header into its own responses while its server closes idle sockets after 5 s,
// so clients would reuse dead sockets and see ECONNRESET.
const server = http.createServer((req, res) => {
  // The body must be drained for the connection to be reused, but it is never
  // parsed: parsing would add upstream cost that both arms would pay anyway.
  let streamed = false;
  req.on('data', (d) => {
    if (!streamed && d.includes('"stream":true')) streamed = true;
  });
  req.on('end', () => {
    served++;
    const path = req.url.split('?')[0];
    if (req.method === 'POST' && path.endsWith('/chat/completions')) {
      if (streamed) stream(res);
      else send(res, 200, completion);
    } else if (req.method === 'GET' && path.endsWith('/models')) send(res, 200, models);
    else if (req.method === 'GET' && path === '/healthz') send(res, 200, Buffer.from('{"ok":true}'));
    else send(res, 404, notFound);
  });
});
// Loopback only: the benchmark must never expose anything beyond this machine.
server.headersTimeout = 10_000;
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ ready: true, port: server.address().port })}\n`);
});

function shutdown() {
  server.close();
  server.closeAllConnections?.();
  process.stderr.write(`fake-upstream: served ${served} requests\n`);
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
// Never outlive the benchmark that started us.
process.on('disconnect', shutdown);
