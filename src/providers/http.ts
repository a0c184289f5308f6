import { Agent, type Dispatcher, errors, util } from 'undici';
import { abortedCallError } from './abort.ts';
import { type CallOptions, UpstreamError, type UpstreamTarget } from './adapter.ts';
import { DEFAULT_MAX_EVENT_BYTES } from './sse.ts';

/**
 * One keep-alive connection pool per upstream origin, shared by every adapter. No pipelining: a slow
 * answer must not hold up the requests queued behind it on the same socket. No cap on connections per
 * origin here: an invisible cap (it was 512) made every call beyond it wait for a whole stream to end,
 * whoever's it was. Concurrency towards suppliers is capped explicitly, per deployment, by the router
 * (routing/load.ts), which sends a call to a peer or queues it fairly with a deadline.
 */
export const UPSTREAM_AGENT_OPTIONS = {
  keepAliveTimeout: 30_000,
  keepAliveMaxTimeout: 600_000,
  connections: null,
  pipelining: 1,
} as const;

export function createUpstreamAgent(connectTimeoutMs = 10_000): Agent {
  return new Agent({ ...UPSTREAM_AGENT_OPTIONS, connect: { timeout: connectTimeoutMs } });
}

/**
 * The pool a target's calls go through: a URL a supplier admin set only through the one that checks
 * every address it connects to (providers/network.ts); without that pool such a call fails closed.
 */
export function poolFor(
  target: UpstreamTarget,
  open: Dispatcher,
  supplier: Dispatcher | undefined,
): Dispatcher {
  if (!target.publicOnly) return open;
  if (!supplier) throw new UpstreamError('connect', 'no network policy for a URL a supplier admin set');
  return supplier;
}

const MAX_ERROR_BODY_BYTES = 64 * 1024;

/**
 * How much of an upstream's answer the hub holds at once; past a cap the call ends as an upstream
 * `protocol` error, so one broken or hostile supplier cannot exhaust the hub's memory.
 */
export interface UpstreamLimits {
  /** One SSE line, or the data of one SSE event (`KAIHUB_UPSTREAM_MAX_EVENT_BYTES`). */
  maxEventBytes: number;
  /** A whole plain (non-stream) answer (`KAIHUB_UPSTREAM_MAX_BODY_BYTES`). */
  maxBodyBytes: number;
}

export const DEFAULT_UPSTREAM_LIMITS: Readonly<UpstreamLimits> = {
  maxEventBytes: DEFAULT_MAX_EVENT_BYTES,
  // 64 MiB: a batch of 2,048 float embeddings of 1,536 dimensions is about 40 MB of JSON
  maxBodyBytes: 64 * 1024 * 1024,
};

/** An upstream endpoint, split once per base URL rather than parsed on every request. */
export interface Endpoint {
  origin: string;
  path: string;
}

const endpoints = new Map<string, Endpoint>();
export function endpoint(baseUrl: string, suffix: string): Endpoint {
  const key = baseUrl + suffix;
  let e = endpoints.get(key);
  if (!e) {
    const url = new URL(key);
    e = { origin: url.origin, path: url.pathname + url.search };
    if (endpoints.size > 10_000) endpoints.clear();
    endpoints.set(key, e);
  }
  return e;
}

export interface PostJson {
  url: Endpoint;
  headers: Record<string, string>;
  body: string;
  options: CallOptions;
  /**
   * Reads a supplier's own error envelope (parsed JSON of an error answer); null or undefined falls
   * back to the OpenAI-style reading below.
   */
  readError?: (parsed: unknown) => { message: string; code?: string | null; type?: string } | null;
  /** The answer is a stream: the request's bytes are let go of once written (`BytesOnce`). */
  streamed?: boolean;
}

/**
 * A request body that lets go of its bytes once undici has taken them. undici keeps the body it is
 * given for as long as the answer lasts, which for a stream is its whole life: with prompts of 4,000
 * characters that was ≈ 10 KB an open stream (heap snapshot at 2,000 streams, docs/benchmarks.md).
 * Sent with its `content-length`, as bytes are: one write with the headers, never chunked.
 */
// undici's documentation lists iterables among request bodies (docs/api/Dispatcher.md, `body`); its
// type declarations leave them out, hence the one cast where it is passed.
class BytesOnce implements Iterable<Buffer> {
  constructor(private bytes: Buffer | null) {}

  [Symbol.iterator](): Iterator<Buffer> {
    const bytes = this.bytes;
    this.bytes = null;
    // an array's iterator lets go of the array once it is done
    return (bytes === null ? [] : [bytes])[Symbol.iterator]();
  }
}

/**
 * Drops an answer's body unread, closing its connection. undici reports dropping a body it already
 * holds whole as an `error` event; unheard, that event is an uncaught exception that ends the process.
 */
export function dropBody(response: Dispatcher.ResponseData): void {
  response.body.on('error', ignore);
  response.body.destroy();
}

function ignore(): void {}

/** Connection, timeout and cancellation failures as typed upstream errors. */
export function toUpstreamError(error: unknown, signal: AbortSignal): UpstreamError {
  if (error instanceof UpstreamError) return error;
  if (signal.aborted) return abortedCallError(signal);
  if (error instanceof errors.HeadersTimeoutError) {
    return new UpstreamError('timeout', 'upstream sent no response headers in time');
  }
  if (error instanceof errors.BodyTimeoutError)
    return new UpstreamError('timeout', 'upstream stopped sending');
  const e = error as { code?: string; message?: string };
  return new UpstreamError(
    'connect',
    `cannot reach upstream: ${e.code ?? ''} ${e.message ?? String(error)}`.trim(),
  );
}

/** POSTs JSON; any error status becomes an `UpstreamError` carrying the upstream's own message. */
export async function postJson(req: PostJson, dispatcher: Dispatcher): Promise<Dispatcher.ResponseData> {
  let response: Dispatcher.ResponseData;
  // bytes, not the string: undici keeps what it is given for as long as the answer lasts, and from a
  // string it makes bytes of its own besides, so a stream held its prompt twice
  const bytes = Buffer.from(req.body);
  const headers = requestHeaders(req, bytes, req.streamed === true);
  try {
    response = await dispatcher.request({
      origin: req.url.origin,
      path: req.url.path,
      method: 'POST',
      headers,
      body: req.streamed === true ? (new BytesOnce(bytes) as unknown as Uint8Array) : bytes,
      signal: req.options.signal,
      headersTimeout: req.options.headersTimeoutMs,
      // Between chunks a model may think for a while, but an upstream silent for longer than the idle
      // timeout is stuck: undici ends the body with BodyTimeoutError (a `timeout` below). The timer does
      // not run while the hub itself holds the body back (a slow client's backpressure).
      bodyTimeout: req.options.idleTimeoutMs ?? 0,
    });
  } catch (error) {
    throw toUpstreamError(error, req.options.signal);
  }
  if (response.statusCode >= 400) throw await readErrorResponse(response, req.options.signal, req.readError);
  return response;
}

function requestHeaders(req: PostJson, bytes: Buffer, withLength: boolean): Record<string, string> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    ...req.headers,
    ...req.options.headers,
  };
  if (withLength) headers['content-length'] = String(bytes.byteLength);
  return headers;
}

/**
 * How much of a streamed answer is held unread before the upstream is paused: the high-water mark of
 * undici's own body stream, which streams were read through before, so a slow client holds back the
 * upstream exactly as it did.
 */
const STREAM_HIGH_WATER_BYTES = 64 * 1024;

const NOTHING_WAITS = 0;
const HEADERS_WAIT = 1;
const PART_WAITS = 2;

// `new Promise` hands its settling functions to an executor; this one, made once, puts them on the
// answer being waited for, so a wait costs no closure of its own (one wait per chunk of every stream)
let settling: StreamedAnswer<unknown> | null = null;
function takeSettlers(resolve: (value: never) => void, reject: (error: unknown) => void): void {
  settling!.resolveWait = resolve as (value: unknown) => void;
  settling!.rejectWait = reject;
}

// what arrived for answers whose reader waits is handed to them a microtask later, after undici has
// finished with the bytes it read (the end of an answer usually comes in the same read as its last
// chunk), as its body stream did: one queue and one task for all of them
const toWake: StreamedAnswer<unknown>[] = [];
function wakeAll(): void {
  // emptied first: were a reader's wake to throw, the next answers must still queue a task of their own
  const woken = toWake.splice(0);
  for (let i = 0; i < woken.length; i++) woken[i]!.wakeNow();
}

const DONE: IteratorResult<never, undefined> = Object.freeze({ done: true, value: undefined });

/**
 * A streamed answer, read off undici's dispatch interface and handed out as an async iterator of the
 * items a subclass decodes from its bytes (`decode`, `take`, `end`): what `request()` and `for await`
 * over its body did, without a body stream, its async iterator and its request handler under every
 * open stream (≈ 1.2 KB of heap a stream, and a promise or two more per chunk: heap snapshots at 2,000
 * streams, docs/benchmarks.md). The same behaviour as that pair:
 * - `open()` resolves once the upstream answered 2xx with its headers; an error status is read (at
 *   most 64 KB) into an `UpstreamError` with the upstream's message, as `postJson` does;
 * - the body is decoded as it is read, never ahead: at most `STREAM_HIGH_WATER_BYTES` are held unread
 *   before the upstream is paused (a slow client's backpressure), resumed as they are read;
 * - the call's signal stops it at any point (mapped as `toUpstreamError` maps it); a failure, the
 *   reader's `return()`, or the answer's own end (`finish()`) before the body ended closes the
 *   connection, as destroying the body did;
 * - after a failure or the end, `next()` answers done. One `next()` at a time (as `for await` calls it).
 */
export abstract class StreamedAnswer<T> implements AsyncIterableIterator<T> {
  statusCode = 0;
  /** The answer's `content-type` ('' when it gave none). */
  contentType = '';
  resolveWait: ((value: unknown) => void) | null = null;
  rejectWait: ((error: unknown) => void) | null = null;
  private waiting = NOTHING_WAITS;
  private wakeQueued = false;
  private readonly signal: AbortSignal;
  private readonly readError: PostJson['readError'];
  private abortRequest: ((reason?: unknown) => void) | null = null;
  private resumeBody: (() => void) | null = null;
  private pieces: Buffer[] = [];
  private head = 0;
  private heldBytes = 0;
  private paused = false;
  private headersIn = false;
  /** An error answer's body, read for its message; null while none is read. */
  private errorText: string | null = null;
  private retryAfter: string | undefined = undefined;
  private bodyEnded = false;
  private bodyError: unknown = null;
  private endDecoded = false;
  private finished = false;
  /** The reader is done (its end, a failure, `return()`): nothing more is read or decoded. */
  private settled = false;
  /** The signal fired before the request had a connection: it is aborted as soon as it has one. */
  private abortOnConnect = false;

  constructor(signal: AbortSignal, readError?: PostJson['readError']) {
    this.signal = signal;
    this.readError = readError;
  }

  /** Decodes one piece of the body (the subclass keeps what it completed for `take`). */
  protected abstract decode(piece: Buffer): void;
  /** The next item decoded, or undefined when it needs more of the body. Throws what the answer reports. */
  protected abstract take(): T | undefined;
  /** The body ended: decodes what it held back. */
  protected abstract end(): void;
  /** The body ended and the last item was taken without the answer's own end (`finish()`). */
  protected abstract incomplete(): Error;

  /** Sends the request; resolves once a 2xx answer's headers are in. */
  open(req: PostJson, dispatcher: Dispatcher): Promise<void> {
    const bytes = Buffer.from(req.body);
    const options = req.options;
    if (this.signal.aborted) this.abortOnConnect = true;
    else this.signal.addEventListener('abort', this);
    const wait = this.wait(HEADERS_WAIT) as Promise<void>;
    try {
      dispatcher.dispatch(
        {
          origin: req.url.origin,
          path: req.url.path,
          method: 'POST',
          headers: requestHeaders(req, bytes, true),
          // undici keeps the body it is given for as long as the answer lasts (`BytesOnce`)
          body: new BytesOnce(bytes) as unknown as Uint8Array,
          headersTimeout: options.headersTimeoutMs,
          bodyTimeout: options.idleTimeoutMs ?? 0,
        },
        this as unknown as Dispatcher.DispatchHandler,
      );
    } catch (error) {
      this.onError(error);
    }
    return wait;
  }

  /** Drops the rest of the answer unread (closing its connection). */
  drop(): void {
    this.settle();
  }

  /**
   * The answer's own end (an end-of-stream event), seen while the reader takes an item: nothing after
   * it is read, and a body still coming is closed now, as leaving the loop over a body stream did.
   */
  protected finish(): void {
    this.finished = true;
    this.letGo();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<T, undefined>> {
    if (this.waiting !== NOTHING_WAITS) return Promise.reject(new TypeError('one next() at a time'));
    let result: IteratorResult<T, undefined> | null;
    try {
      result = this.step();
    } catch (error) {
      return Promise.reject(this.failed(error));
    }
    if (result !== null) return Promise.resolve(result);
    return this.wait(PART_WAITS) as Promise<IteratorResult<T, undefined>>;
  }

  return(): Promise<IteratorResult<T, undefined>> {
    this.settle();
    // a `next()` still waiting (a reader returning the stream from elsewhere) ends with it
    if (this.waiting === PART_WAITS) this.settleWait(DONE, null);
    return Promise.resolve(DONE);
  }

  // --- undici's dispatch handler ---------------------------------------------------------------

  onConnect(abort: (reason?: unknown) => void): void {
    if (this.abortOnConnect) {
      abort(this.signal.reason);
      return;
    }
    this.abortRequest = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (statusCode < 200) return true;
    this.statusCode = statusCode;
    this.resumeBody = resume;
    const headers = util.parseHeaders(rawHeaders);
    const contentType = headers['content-type'];
    this.contentType = contentType === undefined ? '' : String(contentType);
    if (statusCode >= 400) {
      const retryAfter = headers['retry-after'];
      this.retryAfter = typeof retryAfter === 'string' ? retryAfter : undefined;
      this.errorText = '';
      return true;
    }
    this.headersIn = true;
    this.settleWait(undefined, null);
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.errorText !== null) {
      this.errorText += chunk.toString();
      if (this.errorText.length > MAX_ERROR_BODY_BYTES) {
        this.errorAnswered();
        this.abortQuietly();
      }
      return true;
    }
    if (this.settled || this.finished) return true;
    this.pieces.push(chunk);
    this.heldBytes += chunk.length;
    this.wake();
    if (this.heldBytes < STREAM_HIGH_WATER_BYTES) return true;
    this.paused = true;
    return false;
  }

  onComplete(): void {
    this.bodyEnded = true;
    if (this.errorText !== null) this.errorAnswered();
    else this.wake();
  }

  onError(error: unknown): void {
    this.abortRequest = null;
    if (!this.headersIn) {
      this.stopListening();
      if (this.waiting === HEADERS_WAIT) this.settleWait(null, toUpstreamError(error, this.signal));
      return;
    }
    this.bodyFailed(error);
  }

  /** The call's signal fired (an `EventTarget` listener object: no closure a stream). */
  handleEvent(): void {
    const abort = this.abortRequest;
    if (abort === null) {
      if (!this.headersIn) this.abortOnConnect = true;
      return;
    }
    abort(this.signal.reason);
    // an answer already received whole is failed all the same, as its body stream was destroyed
    if (this.headersIn) this.bodyFailed(this.signal.reason);
  }

  // --- internals ---------------------------------------------------------------------------------

  /** What the reader gets next: an item, done, or null (wait); throws the stream's failure. */
  private step(): IteratorResult<T, undefined> | null {
    for (;;) {
      if (this.settled) return DONE;
      const item = this.take();
      if (item !== undefined) return { done: false, value: item };
      if (this.finished) {
        this.settle();
        return DONE;
      }
      if (this.head < this.pieces.length) {
        this.decode(this.shift());
        continue;
      }
      if (this.bodyError !== null) throw this.bodyError;
      if (!this.bodyEnded) return null;
      if (this.endDecoded) throw this.incomplete();
      this.endDecoded = true;
      this.end();
    }
  }

  private shift(): Buffer {
    const piece = this.pieces[this.head]!;
    this.pieces[this.head++] = EMPTY_PIECE;
    if (this.head === this.pieces.length) {
      this.pieces.length = 0;
      this.head = 0;
    }
    this.heldBytes -= piece.length;
    if (this.paused && this.heldBytes < STREAM_HIGH_WATER_BYTES) {
      this.paused = false;
      this.resumeBody?.();
    }
    return piece;
  }

  /** The stream failed: settled, and the failure as the reader gets it. */
  private failed(error: unknown): UpstreamError {
    this.settle();
    const failure = toUpstreamError(error, this.signal);
    return failure.kind === 'connect'
      ? new UpstreamError('protocol', `upstream stream broke off: ${failure.message}`)
      : failure;
  }

  private bodyFailed(error: unknown): void {
    if (this.settled || this.finished || this.bodyError !== null) return;
    this.bodyError = error ?? new UpstreamError('connect', 'the upstream answer was aborted');
    // what was held unread is dropped, as a destroyed body stream dropped it
    this.pieces.length = 0;
    this.head = 0;
    this.heldBytes = 0;
    this.wake();
  }

  private errorAnswered(): void {
    const text = this.errorText!;
    this.errorText = null;
    this.stopListening();
    this.settleWait(null, errorAnswer(this.statusCode, this.retryAfter, text, this.readError));
  }

  /** Nothing more is read: the connection is closed if the answer is still coming. */
  private settle(): void {
    if (this.settled) return;
    this.settled = true;
    this.letGo();
  }

  /** What is held is dropped, the signal no longer heard, and a body still coming closed. */
  private letGo(): void {
    this.pieces.length = 0;
    this.head = 0;
    this.heldBytes = 0;
    this.stopListening();
    this.abortQuietly();
  }

  private abortQuietly(): void {
    const abort = this.abortRequest;
    this.abortRequest = null;
    if (abort !== null && !this.bodyEnded && this.bodyError === null) abort();
  }

  private stopListening(): void {
    this.signal.removeEventListener('abort', this);
  }

  private wait(what: number): Promise<unknown> {
    this.waiting = what;
    settling = this as StreamedAnswer<unknown>;
    const promise = new Promise(takeSettlers);
    settling = null;
    return promise;
  }

  private settleWait(value: unknown, error: unknown): void {
    const resolve = this.resolveWait;
    const reject = this.rejectWait;
    this.waiting = NOTHING_WAITS;
    this.resolveWait = null;
    this.rejectWait = null;
    if (error !== null) reject?.(error);
    else resolve?.(value);
  }

  private wake(): void {
    if (this.waiting !== PART_WAITS || this.wakeQueued) return;
    this.wakeQueued = true;
    if (toWake.push(this as StreamedAnswer<unknown>) === 1) queueMicrotask(wakeAll);
  }

  /** The reader waits and something arrived (`wake`): it gets its item, the end, or the failure. */
  wakeNow(): void {
    this.wakeQueued = false;
    if (this.waiting !== PART_WAITS) return;
    let result: IteratorResult<T, undefined> | null;
    try {
      result = this.step();
    } catch (error) {
      this.settleWait(null, this.failed(error));
      return;
    }
    if (result !== null) this.settleWait(result, null);
  }
}

const EMPTY_PIECE = Buffer.alloc(0);

async function readErrorResponse(
  response: Dispatcher.ResponseData,
  signal: AbortSignal,
  readError?: PostJson['readError'],
): Promise<UpstreamError> {
  let text = '';
  try {
    for await (const chunk of response.body) {
      text += chunk.toString();
      if (text.length > MAX_ERROR_BODY_BYTES) break;
    }
  } catch (error) {
    return toUpstreamError(error, signal);
  } finally {
    dropBody(response);
  }
  const retryAfter = response.headers['retry-after'];
  return errorAnswer(
    response.statusCode,
    typeof retryAfter === 'string' ? retryAfter : undefined,
    text,
    readError,
  );
}

/** An error answer (`status` ≥ 400) as an `UpstreamError` carrying the upstream's own message. */
function errorAnswer(
  status: number,
  retryAfter: string | undefined,
  text: string,
  readError?: PostJson['readError'],
): UpstreamError {
  let message = text.trim().slice(0, 2000) || `upstream answered HTTP ${status}`;
  let type: string | undefined;
  let code: string | null | undefined;
  let param: string | null | undefined;
  try {
    const parsed = JSON.parse(text) as { error?: unknown; message?: unknown; detail?: unknown };
    const own = readError?.(parsed);
    const err = parsed.error;
    if (own) {
      message = own.message;
      if (own.code !== undefined) code = own.code;
      if (own.type !== undefined) type = own.type;
    } else if (err && typeof err === 'object') {
      const o = err as { message?: unknown; type?: unknown; code?: unknown; param?: unknown };
      if (typeof o.message === 'string') message = o.message;
      if (typeof o.type === 'string') type = o.type;
      if (typeof o.code === 'string' || o.code === null) code = o.code as string | null;
      if (typeof o.param === 'string' || o.param === null) param = o.param as string | null;
    } else if (typeof err === 'string') {
      message = err;
    } else if (typeof parsed.message === 'string') {
      message = parsed.message;
    } else if (typeof parsed.detail === 'string') {
      message = parsed.detail;
    }
  } catch {
    // not JSON: the text itself is the upstream's message
  }
  return new UpstreamError('http', message, {
    status,
    ...(type !== undefined && { type }),
    ...(code !== undefined && { code }),
    ...(param !== undefined && { param }),
    ...(retryAfter !== undefined && { retryAfter }),
  });
}

/**
 * Reads a whole JSON body of at most `maxBytes`, counted as the bytes arrive (a longer one is cut off
 * and the connection dropped), turning a broken, oversized or non-JSON answer into a protocol error.
 */
/** A body of unknown length, read up to `maxBytes` and no further. */
async function readCounted(response: Dispatcher.ResponseData, maxBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of response.body as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    if (bytes > maxBytes) {
      dropBody(response);
      throw tooLarge(maxBytes);
    }
    chunks.push(chunk);
  }
  return chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks, bytes).toString('utf8');
}

export async function readJson(
  response: Dispatcher.ResponseData,
  signal: AbortSignal,
  maxBytes: number,
): Promise<Record<string, unknown>> {
  const declared = Number(response.headers['content-length']);
  if (declared > maxBytes) {
    dropBody(response);
    throw tooLarge(maxBytes);
  }
  let text: string;
  try {
    // a declared length within the cap is the common case: undici reads it whole, with no iterator
    // per answer; only an undeclared (chunked) body is counted as it arrives
    text = declared >= 0 ? await response.body.text() : await readCounted(response, maxBytes);
  } catch (error) {
    if (error instanceof UpstreamError) throw error;
    const failure = toUpstreamError(error, signal);
    throw failure.kind === 'connect'
      ? new UpstreamError('protocol', `upstream broke off its answer: ${failure.message}`)
      : failure;
  }
  // a byte order mark is not JSON, but some servers send one (fetch's text() drops it too)
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  try {
    const value: unknown = JSON.parse(text);
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new UpstreamError(
    'protocol',
    `upstream answered something that is not a JSON object: ${text.slice(0, 200)}`,
  );
}

function tooLarge(maxBytes: number): UpstreamError {
  return new UpstreamError(
    'protocol',
    `upstream answer exceeds ${maxBytes} bytes (KAIHUB_UPSTREAM_MAX_BODY_BYTES)`,
  );
}
