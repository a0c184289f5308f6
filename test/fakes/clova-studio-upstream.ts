/**
 * A protocol-faithful fake of CLOVA Studio (see src/providers/clova-studio/README.md for the protocol
 * and its sources), for integration tests of the hub's `clova-studio` adapter.
 *
 * - `POST [/testapp|/serviceapp]/v3/chat-completions/{modelName}`: JSON by default, SSE when
 *   `Accept: text/event-stream`. Every answer is CLOVA's envelope `{status: {code, message}, result}`.
 * - `POST [/testapp|/serviceapp]/v1/api-tools/embedding/{v2|modelName}`: `{text}` →
 *   `{result: {embedding, inputTokens}}`.
 *
 * Token counting is the OpenAI fake's (test/fakes/openai-upstream.ts), so tests can predict it:
 * promptTokens = Σ (3 + words(message text)); the reply is `Echo: <last user text>` (or `reply`);
 * completionTokens = words(reply), cut to `maxTokens`/`maxCompletionTokens` words with finishReason
 * `length`; embedding inputTokens = words(text).
 *
 * Streams send one `event: token` per word (later words with a leading space), then `event: result`
 * with the whole message, finishReason and usage, then `event: signal` with `{"data":"[DONE]"}`.
 *
 * Behaviours (`queueBehaviors`, `setBehavior`, or the `x-fake-behavior` header):
 * - `ok`;
 * - `error:<status>`: that HTTP status with `{status: {code: '<status>00', message: 'fake clova error <status>'}}`
 *   (429 also sends `retry-after: 1`);
 * - `error-event`: a stream that sends two token events, then `event: error` with code `50000`;
 * - `no-usage`: the result has `usage: null`.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { countPromptTokens, countWords, echoReply, fakeEmbedding } from './openai-upstream.ts';

export type ClovaBehavior = 'ok' | 'error-event' | 'no-usage' | `error:${number}`;

export interface ClovaRecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: unknown;
}

export interface FakeClova {
  /** The host to use as a deployment's baseUrl, e.g. 'http://127.0.0.1:41234'. */
  url: string;
  requests: ClovaRecordedRequest[];
  setBehavior(behavior: ClovaBehavior): void;
  queueBehaviors(...behaviors: ClovaBehavior[]): void;
  reset(): void;
  close(): Promise<void>;
}

const CHAT_PATH = /^(?:\/(?:testapp|serviceapp))?\/v3\/chat-completions\/([^/]+)$/;
const EMBED_PATH = /^(?:\/(?:testapp|serviceapp))?\/v1\/api-tools\/embedding\/([^/]+)\/?$/;
const BEHAVIOR = /^(ok|error-event|no-usage|error:\d{3})$/;

export async function startFakeClova(options: { apiKey?: string } = {}): Promise<FakeClova> {
  const requests: ClovaRecordedRequest[] = [];
  let behavior: ClovaBehavior = 'ok';
  let queue: ClovaBehavior[] = [];
  const sockets = new Set<Socket>();

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) envelope(res, 500, '50000', `fake clova crashed: ${String(err)}`);
      else res.destroy();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    let body: unknown;
    try {
      body = raw ? JSON.parse(raw) : undefined;
    } catch {
      return envelope(res, 400, '40000', 'Bad request');
    }
    const path = new URL(req.url ?? '/', 'http://fake').pathname;
    requests.push({ method: req.method ?? 'GET', path, headers: req.headers, body });
    const header = req.headers['x-fake-behavior'];
    const b: ClovaBehavior =
      typeof header === 'string' && BEHAVIOR.test(header)
        ? (header as ClovaBehavior)
        : (queue.shift() ?? behavior);

    if (options.apiKey !== undefined && req.headers.authorization !== `Bearer ${options.apiKey}`)
      return envelope(res, 401, '40100', 'Unauthorized');
    if (b.startsWith('error:')) {
      const status = Number(b.slice(6));
      return envelope(
        res,
        status,
        `${status}00`,
        `fake clova error ${status}`,
        status === 429 ? { 'retry-after': '1' } : {},
      );
    }
    const chat = CHAT_PATH.exec(path);
    if (req.method === 'POST' && chat) return chatCompletions(req, res, body, b);
    if (req.method === 'POST' && EMBED_PATH.test(path)) return embedding(res, body);
    return envelope(res, 404, '40400', 'Not found');
  }

  function chatCompletions(req: IncomingMessage, res: ServerResponse, body: unknown, b: ClovaBehavior) {
    const r = body as { messages?: unknown; maxTokens?: unknown; maxCompletionTokens?: unknown } | undefined;
    if (!r || !Array.isArray(r.messages) || r.messages.length === 0)
      return envelope(res, 400, '40001', 'Invalid parameter: messages');
    if (r.maxTokens !== undefined && r.maxCompletionTokens !== undefined)
      return envelope(res, 400, '40001', 'maxTokens and maxCompletionTokens cannot be used together');
    const promptTokens = countPromptTokens(r.messages);
    let words = echoReply(r.messages).split(/\s+/).filter(Boolean);
    const max = (r.maxCompletionTokens ?? r.maxTokens) as number | undefined;
    let finishReason = 'stop';
    if (typeof max === 'number' && words.length > max) {
      words = words.slice(0, max);
      finishReason = 'length';
    }
    const content = words.join(' ');
    const created = 1_744_710_905;
    const seed = 3_284_419_119;
    const usage =
      b === 'no-usage'
        ? null
        : {
            promptTokens,
            completionTokens: countWords(content),
            totalTokens: promptTokens + countWords(content),
          };
    const result = { message: { role: 'assistant', content }, finishReason, created, seed, usage };

    if (req.headers.accept !== 'text/event-stream') {
      return sendJson(res, 200, { status: { code: '20000', message: 'OK' }, result });
    }
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
    const id = () => randomBytes(8).toString('hex');
    const send = (event: string, data: unknown) =>
      res.write(`id: ${id()}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    for (const [i, word] of words.entries()) {
      if (b === 'error-event' && i === 2) {
        send('error', { status: { code: '50000', message: 'fake clova error event' } });
        return void res.end();
      }
      send('token', {
        message: { role: 'assistant', content: i === 0 ? word : ` ${word}` },
        finishReason: null,
        created,
        seed,
        usage: null,
      });
    }
    send('result', result);
    send('signal', { data: '[DONE]' });
    res.end();
  }

  function embedding(res: ServerResponse, body: unknown) {
    const text = (body as { text?: unknown } | undefined)?.text;
    if (typeof text !== 'string' || text === '')
      return envelope(res, 400, '40001', 'Invalid parameter: text');
    sendJson(res, 200, {
      status: { code: '20000', message: 'OK' },
      result: { embedding: fakeEmbedding(text, 1024), inputTokens: countWords(text) },
    });
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    setBehavior(value) {
      behavior = value;
    },
    queueBehaviors(...values) {
      queue.push(...values);
    },
    reset() {
      requests.length = 0;
      queue = [];
      behavior = 'ok';
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}

function envelope(
  res: ServerResponse,
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
): void {
  sendJson(res, status, { status: { code, message } }, headers);
}

function sendJson(
  res: ServerResponse,
  status: number,
  payload: unknown,
  headers: Record<string, string> = {},
) {
  const text = JSON.stringify(payload);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}
