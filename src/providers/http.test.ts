import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { Agent } from 'undici';
import { UpstreamError } from './adapter.ts';
import { postJson, readJson } from './http.ts';

/** A loopback server answering each path its own way; counts the bytes it managed to send. */
let server: Server;
let origin: string;
const agent = new Agent();
const sent = { endless: 0 };

before(async () => {
  server = createServer((req, res) => {
    if (req.url === '/declared-too-long') {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(10_000) });
      res.end(`{"padding":"${'a'.repeat(10_000 - 14)}"}`);
    } else if (req.url === '/endless') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"padding":"');
      const piece = Buffer.alloc(1024, 'a');
      const pump = () => {
        // bounded: a reader that never stops would get 64 MiB, then a closed string
        while (sent.endless < 64 * 1024 * 1024 && !res.destroyed) {
          sent.endless += piece.length;
          if (!res.write(piece)) return void res.once('drain', pump);
        }
        if (!res.destroyed) res.end('"}');
      };
      pump();
    } else if (req.url === '/echo') {
      const pieces: Buffer[] = [];
      req.on('data', (piece: Buffer) => pieces.push(piece));
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            contentLength: req.headers['content-length'] ?? null,
            transferEncoding: req.headers['transfer-encoding'] ?? null,
            body: Buffer.concat(pieces).toString('utf8'),
          }),
        );
      });
    } else if (req.url === '/bom') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"안녕":"하세요"}')]));
    } else {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('[1, 2]');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  await agent.close();
  await new Promise((resolve) => server.close(resolve));
});

async function get(path: string) {
  return agent.request({ origin, path, method: 'GET' });
}

const tooLarge = (error: unknown) =>
  UpstreamError.isInstance(error) && error.kind === 'protocol' && /exceeds 4096 bytes/.test(error.message);

test('a declared length over the cap fails before reading the body', async () => {
  const response = await get('/declared-too-long');
  await assert.rejects(readJson(response, new AbortController().signal, 4096), tooLarge);
});

test('an endless body fails at the cap, counted as it arrives, and the connection is dropped', async () => {
  const response = await get('/endless');
  await assert.rejects(readJson(response, new AbortController().signal, 4096), tooLarge);
  await new Promise((resolve) => setTimeout(resolve, 50));
  // socket buffers aside, the server got nowhere near its 64 MiB
  assert.ok(sent.endless < 16 * 1024 * 1024, `the server sent ${sent.endless} bytes`);
});

test('under the cap: UTF-8 read whole (a byte order mark dropped); not an object: a protocol error', async () => {
  assert.deepEqual(await readJson(await get('/bom'), new AbortController().signal, 4096), { 안녕: '하세요' });
  await assert.rejects(
    readJson(await get('/array'), new AbortController().signal, 4096),
    (error: unknown) => UpstreamError.isInstance(error) && /not a JSON object/.test(error.message),
  );
});

test("a body is sent whole with its length, a stream's as a plain call's (never chunked)", async () => {
  const text = JSON.stringify({
    model: 'm',
    messages: [{ role: 'user', content: '안녕하세요'.repeat(1000) }],
  });
  for (const streamed of [false, true]) {
    const response = await postJson(
      {
        url: { origin, path: '/echo' },
        headers: {},
        body: text,
        options: { signal: new AbortController().signal, headersTimeoutMs: 5_000 },
        streamed,
      },
      agent,
    );
    const echo = await readJson(response, new AbortController().signal, 1024 * 1024);
    assert.deepEqual(
      echo,
      { contentLength: String(Buffer.byteLength(text)), transferEncoding: null, body: text },
      `streamed: ${streamed}`,
    );
  }
});
