import type { IncomingMessage } from 'node:http';

export class BodyTooLargeError extends Error {
  override name = 'BodyTooLargeError';
  constructor(readonly limitBytes: number) {
    super(`request body exceeds ${limitBytes} bytes`);
  }
}

/**
 * Reads a request body up to `limitBytes`. A declared length over the limit is refused before a
 * byte is read; an undeclared (chunked) body is cut off as soon as it passes the limit.
 */
export function readBody(req: IncomingMessage, limitBytes: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (declared > limitBytes) return Promise.reject(new BodyTooLargeError(limitBytes));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limitBytes) {
        cleanup();
        reject(new BodyTooLargeError(limitBytes));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

/**
 * After an early answer (413, 401) the client may still be sending its body. Closing at once would
 * reset the connection under it and many clients then report the reset instead of the answer, so the
 * rest is read and thrown away ("lingering close", as nginx does), bounded in bytes and time; past
 * either bound the connection is cut. A drained connection stays usable for the next request.
 */
export function discardBody(req: IncomingMessage, maxBytes = 64 * 1024 * 1024, maxMs = 5_000): void {
  if (req.complete) return;
  let seen = 0;
  const timer = setTimeout(() => req.socket.destroy(), maxMs);
  timer.unref();
  const stop = () => clearTimeout(timer);
  req.on('data', (chunk: Buffer) => {
    seen += chunk.length;
    if (seen > maxBytes) req.socket.destroy();
  });
  req.once('end', stop);
  req.once('close', stop);
  req.resume();
}

export class MalformedJsonError extends Error {
  override name = 'MalformedJsonError';
}

/** Parses a JSON object body; anything else (invalid JSON, an array, a number) is malformed. */
export function parseJsonObject(raw: Buffer): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(raw.toString('utf8'));
  } catch (error) {
    throw new MalformedJsonError(`request body is not valid JSON: ${(error as Error).message}`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new MalformedJsonError('request body must be a JSON object');
  }
  return value as Record<string, unknown>;
}
