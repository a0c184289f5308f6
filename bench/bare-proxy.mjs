#!/usr/bin/env node
// The floor of the hub's stack: node:http in front, undici behind, with the same Agent settings as
// the hub (src/providers/http.ts) and the JSON work every gateway must do — parse the request,
// rewrite `model`, send it on; parse the answer, rewrite `model`, send it back. No auth, no catalog,
// no routing, no metering, no metrics, no abort wiring. The benchmark's "proxy" arm: what the hub
// adds on top of this is the hub's own cost.
//
// Usage: node bench/bare-proxy.mjs --port=0 --upstream=http://127.0.0.1:N
// Prints one JSON line `{"ready":true,"port":N}` on stdout once listening (127.0.0.1 only).
import { once } from 'node:events';
import http from 'node:http';
import { Agent } from 'undici';

const args = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const [k, ...v] = a.replace(/^--/, '').split('=');
    return [k, v.join('=') || 'true'];
  }),
);
const upstream = new URL(args.upstream);
const origin = upstream.origin;
const path = `${upstream.pathname.replace(/\/$/, '')}/v1/chat/completions`;
const agent = new Agent({
  connect: { timeout: 10_000 },
  keepAliveTimeout: 30_000,
  keepAliveMaxTimeout: 600_000,
  // as the hub's agent: no cap per origin (providers/http.ts)
  connections: null,
  pipelining: 1,
});

function fail(res, status, message) {
  const text = JSON.stringify({ error: { message, type: 'proxy_error', param: null, code: null } });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

// the hub's server options with its defaults (serverTimeouts in src/http/server.ts, 60 s to receive a
// request; KAIHUB_MAX_CONNECTIONS 10,000)
const server = http.createServer(
  {
    keepAliveTimeout: 65_000,
    requestTimeout: 60_000,
    headersTimeout: 60_000,
    connectionsCheckingInterval: 1_000,
  },
  (req, res) => {
    if (req.method !== 'POST' || req.url !== '/v1/chat/completions') return fail(res, 404, 'not found');
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        const model = body.model;
        body.model = 'fake-model';
        const answer = await agent.request({
          origin,
          path,
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: req.headers.authorization ?? '' },
          body: JSON.stringify(body),
        });
        if (body.stream === true) {
          // a stream is piped through as it comes: the floor of what 2,000 open streams cost
          res.writeHead(answer.statusCode, {
            'content-type': 'text/event-stream',
            'cache-control': 'no-cache',
          });
          for await (const chunk of answer.body) if (!res.write(chunk)) await once(res, 'drain');
          res.end();
          return;
        }
        const completion = await answer.body.json();
        completion.model = model;
        const text = JSON.stringify(completion);
        res.writeHead(answer.statusCode, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(text),
        });
        res.end(text);
      } catch (error) {
        fail(res, 502, String(error?.message ?? error));
      }
    });
  },
);
server.maxConnections = 10_000;
server.listen(Number(args.port ?? 0), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ ready: true, port: server.address().port })}\n`);
});
