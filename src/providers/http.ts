import { Agent, type Dispatcher, errors } from 'undici';
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
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    ...req.headers,
    ...req.options.headers,
  };
  if (req.streamed === true) headers['content-length'] = String(bytes.byteLength);
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
  const status = response.statusCode;
  const retryAfter = response.headers['retry-after'];
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
    ...(typeof retryAfter === 'string' && { retryAfter }),
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
