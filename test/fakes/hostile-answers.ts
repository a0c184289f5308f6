/**
 * Answers a broken or hostile supplier sends, for the fakes of `test/fakes/` (behaviours
 * `endless-body` and `endless-event`): a 200 whose body never ends. Each stops by itself after
 * `ENDLESS_LIMIT_BYTES`, so a hub that fails to cut it off makes a test fail, never run forever.
 */
import { once } from 'node:events';
import type { ServerResponse } from 'node:http';

/** What an endless answer sends at most, then ends (well-formed, so a hub reading it all sees success). */
export const ENDLESS_LIMIT_BYTES = 256 * 1024 * 1024;

export type EndlessKind = 'endless-body' | 'endless-event';

interface EndlessAnswer {
  contentType: string;
  head: string;
  /** Sent again and again: 1 KiB, so a megabyte is a thousand writes. */
  repeat: Buffer;
  tail: string;
}

function answerOf(kind: EndlessKind, model: string): EndlessAnswer {
  if (kind === 'endless-event') {
    // data lines with no blank line between them: one event that never ends
    return {
      contentType: 'text/event-stream; charset=utf-8',
      head: '',
      repeat: Buffer.from(`data: {"padding":"${'a'.repeat(1024 - 22)}"}\n`),
      tail: '\ndata: [DONE]\n\n',
    };
  }
  // a JSON object whose one string never ends; closed at the limit it is a valid (empty) completion
  return {
    contentType: 'application/json',
    head: `{"id":"chatcmpl-endless","object":"chat.completion","created":0,"model":${JSON.stringify(model)},"choices":[],"data":[],"padding":"`,
    repeat: Buffer.alloc(1024, 'a'),
    tail: '"}',
  };
}

/**
 * Writes an endless answer with backpressure until the client goes away (`signal`, or the response
 * destroyed) or `limitBytes` were sent. Returns the body bytes written.
 */
export async function sendEndless(
  res: ServerResponse,
  signal: AbortSignal,
  kind: EndlessKind,
  model: string,
  limitBytes = ENDLESS_LIMIT_BYTES,
): Promise<number> {
  const answer = answerOf(kind, model);
  res.writeHead(200, { 'content-type': answer.contentType, 'cache-control': 'no-cache' });
  res.write(answer.head);
  let sent = answer.head.length;
  while (sent < limitBytes) {
    if (signal.aborted || res.destroyed) return sent;
    sent += answer.repeat.length;
    if (!res.write(answer.repeat)) {
      try {
        await once(res, 'drain', { signal });
      } catch {
        return sent; // the client went away while the socket was full
      }
    }
  }
  res.end(answer.tail);
  return sent + answer.tail.length;
}
