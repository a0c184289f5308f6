/**
 * An OpenAI-compatible upstream that holds every chat request until the test lets it go: for tests of
 * concurrency, queueing and fairness, where what matters is who holds a slot when. Each request is
 * identified by the text of its last message. A held stream has already sent its headers and a first
 * chunk; a held plain request has sent nothing.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface HeldRequest {
  /** The text of the request's last message. */
  label: string;
  stream: boolean;
  /** Answers it (and ends a stream normally). */
  release(): void;
}

export interface GatedUpstream {
  url: string;
  /** Requests not released yet, in arrival order. */
  held: HeldRequest[];
  /** Every label, in arrival order. */
  arrivals: string[];
  /** Resolves once `count` requests have arrived in all. */
  waitForArrivals(count: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

function lastText(body: { messages?: { content?: unknown }[] }): string {
  const content = body.messages?.at(-1)?.content;
  return typeof content === 'string' ? content : '';
}

export async function startGatedUpstream(): Promise<GatedUpstream> {
  const held: HeldRequest[] = [];
  const arrivals: string[] = [];
  const waiters = new Set<() => void>();
  const sockets = new Set<Socket>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let raw = '';
    req.on('data', (d: Buffer) => {
      raw += d;
    });
    req.on('end', () => {
      const body = JSON.parse(raw) as {
        stream?: boolean;
        messages?: { content?: unknown }[];
        model?: string;
      };
      const label = lastText(body);
      const stream = body.stream === true;
      const base = { id: `chatcmpl-${label}`, created: 1, model: body.model ?? 'm' };
      const usage = { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 };
      if (stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(
          `data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta: { role: 'assistant', content: 'held' }, finish_reason: null }] })}\n\n`,
        );
      }
      const entry: HeldRequest = {
        label,
        stream,
        release() {
          const i = held.indexOf(entry);
          if (i >= 0) held.splice(i, 1);
          if (res.destroyed) return;
          if (!stream) {
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end(
              JSON.stringify({
                ...base,
                object: 'chat.completion',
                choices: [
                  { index: 0, message: { role: 'assistant', content: label }, finish_reason: 'stop' },
                ],
                usage,
              }),
            );
            return;
          }
          res.write(
            `data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: ' done' }, finish_reason: 'stop' }] })}\n\n`,
          );
          res.write(
            `data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices: [], usage })}\n\n`,
          );
          res.end('data: [DONE]\n\n');
        },
      };
      held.push(entry);
      arrivals.push(label);
      for (const wake of waiters) wake();
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    held,
    arrivals,
    waitForArrivals(count, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (arrivals.length < count) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`${arrivals.length} of ${count} requests arrived: ${arrivals.join(', ')}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
