import type { IncomingMessage } from 'node:http';
import { JsonBodyFailure, type JsonLimitCode, MAX_JSON_DEPTH, parseJsonObjectText } from './json-limits.mjs';
import { JsonParsePool } from './json-parse-pool.ts';

export class BodyTooLargeError extends Error {
  override name = 'BodyTooLargeError';
  constructor(readonly limitBytes: number) {
    super(`request body exceeds ${limitBytes} bytes`);
  }
}

/**
 * The client went away, or the hub's request-receive timeout closed the connection, before the whole
 * body arrived: there is nobody to answer.
 */
export class BodyAbortedError extends Error {
  override name = 'BodyAbortedError';
  constructor() {
    super('the connection closed before the request body was complete');
  }
}

interface ReceivedBody {
  chunks: Buffer[];
  size: number;
}

/** A body being received: its chunks so far, its limit, and the promise to settle. */
interface Receiving extends ReceivedBody {
  limitBytes: number;
  resolve(body: ReceivedBody): void;
  reject(error: Error): void;
}

const RECEIVING = Symbol('kaihub.receiving');
type ReceivingRequest = IncomingMessage & { [RECEIVING]?: Receiving };

// One set of listeners for every request, `this` being the request: a body read makes no closure
// (under tsx each named closure also costs a `name` redefinition, ≈ 0.5 µs: docs/benchmarks.md).
function onBodyData(this: ReceivingRequest, chunk: Buffer): void {
  const r = this[RECEIVING];
  if (r === undefined) return;
  r.size += chunk.length;
  if (r.size > r.limitBytes) {
    stopReceiving(this);
    r.reject(new BodyTooLargeError(r.limitBytes));
    return;
  }
  r.chunks.push(chunk);
}

function onBodyEnd(this: ReceivingRequest): void {
  const r = this[RECEIVING];
  if (r === undefined) return;
  stopReceiving(this);
  r.resolve(r);
}

function onBodyAborted(this: ReceivingRequest): void {
  const r = this[RECEIVING];
  if (r === undefined) return;
  stopReceiving(this);
  r.reject(new BodyAbortedError());
}

function stopReceiving(req: ReceivingRequest): void {
  req[RECEIVING] = undefined;
  req.off('data', onBodyData);
  req.off('end', onBodyEnd);
  req.off('error', onBodyAborted);
  req.off('close', onBodyAborted);
}

/**
 * Receives a request body up to `limitBytes`, as the chunks the socket gave. A declared length over
 * the limit is refused before a byte is read; an undeclared (chunked) body is cut off as soon as it
 * passes the limit.
 */
function receiveBody(req: ReceivingRequest, limitBytes: number): Promise<ReceivedBody> {
  const declared = Number(req.headers['content-length']);
  if (declared > limitBytes) return Promise.reject(new BodyTooLargeError(limitBytes));
  // gone while the hub was busy before reading (authentication): no event will ever come
  if (req.destroyed) return Promise.reject(new BodyAbortedError());
  return new Promise((resolve, reject) => {
    req[RECEIVING] = { chunks: [], size: 0, limitBytes, resolve, reject };
    req.on('data', onBodyData);
    req.on('end', onBodyEnd);
    req.on('error', onBodyAborted);
    req.on('close', onBodyAborted);
  });
}

const concatenated = ({ chunks, size }: ReceivedBody): Buffer =>
  chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size);

/** Reads a request body up to `limitBytes` into one buffer. */
export async function readBody(req: IncomingMessage, limitBytes: number): Promise<Buffer> {
  return concatenated(await receiveBody(req, limitBytes));
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

/** Valid JSON the hub cannot carry: nested deeper than its limit, or a number out of range. */
export class JsonLimitError extends MalformedJsonError {
  override name = 'JsonLimitError';
  constructor(
    readonly code: JsonLimitCode,
    message: string,
    /** The field path, as OpenAI names params: `messages[0].content[1]`. */
    readonly path: string,
    readonly maxDepth: number,
  ) {
    super(message);
  }
}

function throwFailure(failure: JsonBodyFailure, maxDepth: number): never {
  if (failure.code === 'invalid_json') throw new MalformedJsonError(failure.message);
  throw new JsonLimitError(failure.code, failure.message, failure.path ?? '', maxDepth);
}

/** Parses a JSON object body within the limits of json-limits.mjs; anything else is malformed. */
export function parseJsonObject(raw: Buffer, maxDepth = MAX_JSON_DEPTH): Record<string, unknown> {
  const result = parseJsonObjectText(raw.toString('utf8'), maxDepth);
  if (result instanceof JsonBodyFailure) throwFailure(result, maxDepth);
  return result;
}

export interface JsonBodyLimits {
  maxBytes: number;
  /** Default MAX_JSON_DEPTH (128). */
  maxDepth?: number;
  /** Bodies of at least this many bytes are parsed in a worker thread (default 256 KiB). */
  offThreadBytes?: number;
}

/**
 * Bodies below this size are parsed on the event loop: at most ≈ 2–3 ms of JSON.parse (a 256 KiB
 * conversation of small messages), less than a worker round trip costs in latency.
 */
export const OFF_THREAD_PARSE_BYTES = 256 * 1024;

let sharedPool: JsonParsePool | undefined;

/**
 * Reads and parses a /v1 request body: a JSON object, at most `maxBytes`, nested at most `maxDepth`
 * deep, every number finite. Large bodies are parsed off the event loop. Throws
 * `BodyTooLargeError` (the rest of the body is already being discarded), `MalformedJsonError`,
 * `JsonLimitError` (a subclass naming the code and path) or `BodyAbortedError`.
 */
export async function readJsonBody(
  req: IncomingMessage,
  limits: JsonBodyLimits,
): Promise<Record<string, unknown>> {
  const maxDepth = limits.maxDepth ?? MAX_JSON_DEPTH;
  let received: ReceivedBody;
  try {
    received = await receiveBody(req, limits.maxBytes);
  } catch (error) {
    if (error instanceof BodyTooLargeError) discardBody(req);
    throw error;
  }
  if (received.size < (limits.offThreadBytes ?? OFF_THREAD_PARSE_BYTES)) {
    return parseJsonObject(concatenated(received), maxDepth);
  }
  sharedPool ??= new JsonParsePool();
  const result = await sharedPool.parse(received.chunks, maxDepth);
  if (result instanceof JsonBodyFailure) throwFailure(result, maxDepth);
  return result;
}
