#!/usr/bin/env node
// Minimal, deliberately cheap fake OpenAI-compatible upstream. It runs in its
// own process so the load generator and the gateway under test never share its
// event loop. Every response is a pre-serialised Buffer: the upstream should
// cost as little as possible so that what the benchmark sees is the gateway.
//
// Usage: node bench/fake-upstream.mjs [--port=0]
// Prints one JSON line `{"ready":true,"port":N}` on stdout once listening.
import http from 'node:http';

const args = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, '').split('=');
    return [k, v ?? 'true'];
  }),
);
const port = Number(args.port ?? 0);

const completion = Buffer.from(
  JSON.stringify({
    id: 'chatcmpl-bench',
    object: 'chat.completion',
    created: 1700000000,
    model: 'fake-model',
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: '안녕하세요! 무엇을 도와드릴까요?' },
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
  req.resume();
  req.on('end', () => {
    served++;
    const path = req.url.split('?')[0];
    if (req.method === 'POST' && path.endsWith('/chat/completions')) send(res, 200, completion);
    else if (req.method === 'GET' && path.endsWith('/models')) send(res, 200, models);
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
