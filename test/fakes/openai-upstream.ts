/**
 * A protocol-faithful fake of an OpenAI-compatible upstream, for integration tests of the hub.
 *
 * Shapes follow OpenAI's OpenAPI spec (`../shared/spec/openai/openapi.yaml`): `chat.completion`,
 * `chat.completion.chunk` over SSE, embeddings (float and base64), the models list and OpenAI-shaped
 * error bodies. Everything is deterministic so tests can predict ids, replies and token counts.
 *
 * Token counting (the contract tests rely on):
 * - words(text) = number of non-empty pieces of `text.trim().split(/\s+/)`.
 * - text of a message = its `content` if a string; if an array of content parts, the `text` of
 *   every part with `type: 'text'` joined by a space; otherwise ''.
 * - chat prompt_tokens = Σ over messages of (3 + words(text of the message)).
 * - chat reply = the configured reply (`x-fake-reply` header, else what `replyFor` / `setReplyFor`
 *   returns for the request's messages and model when it returns a string, else `setReply`, else the
 *   `reply` option), else `Echo: <text of the last user message>` (`Echo:` alone when there is none).
 * - chat completion_tokens = words(reply) per choice, times `n` (default 1). With `max_tokens` or
 *   `max_completion_tokens` = M (the smaller if both) and words(reply) > M, the reply is cut to its
 *   first M words (joined by one space) and finish_reason is 'length'; otherwise 'stop'.
 * - total_tokens = prompt_tokens + completion_tokens.
 * - embeddings prompt_tokens = Σ over inputs of words(input) for strings, or the array length for
 *   token arrays; total_tokens = prompt_tokens.
 *
 * Streaming sends one chunk with `delta: {role: 'assistant', content: '', refusal: null}`, then one
 * chunk per word (words after the first carry a leading space, so joining the deltas gives the reply),
 * then one chunk with an empty delta and the finish_reason, then, only when
 * `stream_options.include_usage` is true, a chunk with `choices: []` and `usage` (every earlier chunk
 * then carries `usage: null`, as OpenAI does), then `data: [DONE]`.
 *
 * Behaviours (`setBehavior`, `queueBehaviors`, or per request the `x-fake-behavior` header; several
 * may be combined with commas, e.g. `slow:50,no-usage`):
 * - `ok`: answer normally.
 * - `error:<status>`: answer that status with an OpenAI error body ('fake upstream error <status>');
 *   429 also sends `retry-after: 1`.
 * - `slow:<ms>`: wait before sending anything.
 * - `reset-mid-stream`: send the headers and part of the body, then destroy the socket (streams: the
 *   role chunk and `resetAfterChunks` content chunks, never the finish chunk, usage or [DONE]).
 * - `reset`: destroy the socket before answering.
 * - `hang`: never answer (until the client goes away or the fake is closed).
 * - `no-usage`: omit `usage` everywhere (no usage chunk when streaming), as some servers do.
 * - `usage:<prompt>:<completion>`: report these counts instead of the real ones (any JSON number, e.g.
 *   `usage:1e300:5` or `usage:-3:2`): a hostile or broken supplier.
 * - `endless-body`: a 200 JSON answer whose body never ends (a string that goes on and on).
 * - `endless-event`: a 200 SSE answer of `data:` lines with no blank line: one event that never ends.
 *   Both stop by themselves after `ENDLESS_LIMIT_BYTES` (hostile-answers.ts) and record what they sent
 *   in `bodyBytesSent`.
 * Precedence: the header, else the next queued behaviour, else the behaviour set for the requested
 * model, else the server-wide behaviour.
 *
 * Other per-request headers: `x-fake-chunk-delay-ms` (delay between stream chunks) and
 * `x-fake-reply` (the reply text).
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { type EndlessKind, sendEndless } from './hostile-answers.ts';

export type FakeBehavior =
  | 'ok'
  | 'reset-mid-stream'
  | 'reset'
  | 'hang'
  | 'no-usage'
  | EndlessKind
  | `error:${number}`
  | `slow:${number}`
  | `usage:${string}:${string}`;

export interface FakeOpenAIOptions {
  /** When set, every request must carry `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Server-wide behaviour at start (default 'ok'). */
  behavior?: FakeBehavior | readonly FakeBehavior[];
  /** Delay between stream chunks in ms (default 0). */
  chunkDelayMs?: number;
  /** Fixed chat reply instead of the echo of the last user message. */
  reply?: string;
  /** A reply per request (e.g. keyed by prompt text); undefined falls through to `reply` or the echo. */
  replyFor?: ReplyFor;
  /** Embedding dimension when the request gives no `dimensions` (default 8). */
  embeddingDimensions?: number;
  /** Model ids listed by `GET /v1/models` (default ['fake-chat', 'fake-embed']). */
  models?: readonly string[];
  /** Content chunks sent before `reset-mid-stream` cuts the connection (default 2). */
  resetAfterChunks?: number;
  /**
   * Where the API lives (default '/v1'): an OpenAI-compatible endpoint of another supplier, e.g. CLOVA
   * Studio's '/v1/openai' or Upstage's '/v1/solar'. `url` includes it.
   */
  basePath?: string;
}

export interface RecordedRequest {
  method: string;
  /** Path without the query string, e.g. '/v1/chat/completions'. */
  path: string;
  /** Raw query string without '?', '' when there is none. */
  query: string;
  /** Node's lower-cased request headers. */
  headers: IncomingHttpHeaders;
  /** The `authorization` header as received, if any. */
  authorization: string | undefined;
  /** Parsed JSON body; undefined when the body was empty or not JSON. */
  body: unknown;
  rawBody: string;
  /** The behaviours applied to this request, e.g. ['ok'] or ['slow:50', 'no-usage']. */
  behavior: FakeBehavior[];
  /** Status sent, or undefined while nothing has been sent (or nothing ever was). */
  status: number | undefined;
  /** True when the client closed the connection before the fake finished its response. */
  aborted: boolean;
  /** True once the exchange is over: response finished, client gone, or fake-made reset. */
  settled: boolean;
  /** Body bytes an `endless-*` behaviour wrote before it stopped; 0 for the others. */
  bodyBytesSent: number;
}

/** The reply to a chat request, from its messages and model; undefined: no opinion. */
export type ReplyFor = (messages: readonly unknown[], model: string) => string | undefined;

export interface FakeOpenAI {
  /** Base URL including `/v1`, e.g. 'http://127.0.0.1:41234/v1'. */
  url: string;
  port: number;
  /** Every request received, in arrival order (recorded once its body has been read). */
  requests: RecordedRequest[];
  /** Server-wide behaviour, or (with `model`) the behaviour for requests naming that model. */
  setBehavior(behavior: FakeBehavior | readonly FakeBehavior[], options?: { model?: string }): void;
  /** Behaviours used by the next requests, one each, before falling back to `setBehavior`'s. */
  queueBehaviors(...behaviors: (FakeBehavior | readonly FakeBehavior[])[]): void;
  /** Fixed chat reply, or undefined for the echo. */
  setReply(reply: string | undefined): void;
  /** A reply per request, or undefined for none. */
  setReplyFor(replyFor: ReplyFor | undefined): void;
  /** Forget recorded requests, queued and per-model behaviours; server-wide behaviour back to the start. */
  reset(): void;
  /** Resolves once at least `count` requests have been recorded. */
  waitForRequests(count: number, timeoutMs?: number): Promise<RecordedRequest[]>;
  /** Resolves once the request's exchange is over (so `aborted` is final). */
  waitForSettled(request: RecordedRequest, timeoutMs?: number): Promise<RecordedRequest>;
  close(): Promise<void>;
}

const BEHAVIOR_RE =
  /^(ok|reset-mid-stream|reset|hang|no-usage|endless-body|endless-event|error:\d{3}|slow:\d+|usage:-?[\d.e+]+:-?[\d.e+]+)$/;

export function parseBehaviors(value: string): FakeBehavior[] {
  const parts = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const part of parts) {
    if (!BEHAVIOR_RE.test(part)) throw new Error(`unknown fake behaviour '${part}'`);
  }
  return parts.length === 0 ? ['ok'] : (parts as FakeBehavior[]);
}

function toList(behavior: FakeBehavior | readonly FakeBehavior[]): FakeBehavior[] {
  return parseBehaviors(typeof behavior === 'string' ? behavior : behavior.join(','));
}

export function countWords(text: string): number {
  return splitWords(text).length;
}

function splitWords(text: string): string[] {
  return text
    .trim()
    .split(/\s+/)
    .filter((w) => w !== '');
}

export function messageText(message: unknown): string {
  if (!isObject(message)) return '';
  const content = message.content;
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .filter(
        (p): p is { type: 'text'; text: string } =>
          isObject(p) && p.type === 'text' && typeof p.text === 'string',
      )
      .map((p) => p.text)
      .join(' ');
  }
  return '';
}

/** The fake's prompt_tokens for a chat request's `messages` (see the module comment). */
export function countPromptTokens(messages: readonly unknown[]): number {
  return messages.reduce<number>((sum, m) => sum + 3 + countWords(messageText(m)), 0);
}

/** The fake's default reply for a chat request's `messages`. */
export function echoReply(messages: readonly unknown[]): string {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    if (isObject(m) && m.role === 'user') {
      const text = messageText(m).trim();
      return text === '' ? 'Echo:' : `Echo: ${text}`;
    }
  }
  return 'Echo:';
}

/**
 * The fake's embedding of one input: a pseudo-random unit vector seeded by the input, with values
 * rounded to float32 so the float and base64 encodings carry exactly the same numbers.
 */
export function fakeEmbedding(input: string | readonly number[], dimensions: number): number[] {
  let seed = fnv1a(typeof input === 'string' ? `s:${input}` : `t:${input.join(',')}`);
  const raw: number[] = [];
  for (let i = 0; i < dimensions; i++) {
    // mulberry32: tiny, deterministic, good enough to make distinct inputs give distinct vectors
    seed = (seed + 0x6d2b79f5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    raw.push(((t ^ (t >>> 14)) >>> 0) / 4294967296 - 0.5);
  }
  const norm = Math.sqrt(raw.reduce((s, v) => s + v * v, 0)) || 1;
  return raw.map((v) => Math.fround(v / norm));
}

/** OpenAI's base64 embedding encoding: little-endian float32. */
export function embeddingToBase64(embedding: readonly number[]): string {
  const buf = Buffer.alloc(embedding.length * 4);
  embedding.forEach((v, i) => {
    buf.writeFloatLE(v, i * 4);
  });
  return buf.toString('base64');
}

function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

function statusError(status: number): ApiError {
  const message = `fake upstream error ${status}`;
  if (status === 401) return new ApiError(status, message, 'invalid_request_error', null, 'invalid_api_key');
  if (status === 429) {
    return new ApiError(status, message, 'requests', null, 'rate_limit_exceeded', { 'retry-after': '1' });
  }
  if (status >= 500) return new ApiError(status, message, 'server_error');
  return new ApiError(status, message, 'invalid_request_error');
}

interface Exchange {
  req: IncomingMessage;
  res: ServerResponse;
  record: RecordedRequest;
  behaviors: FakeBehavior[];
  /** Aborted when the client goes away or the fake closes, to stop timers and writes. */
  signal: AbortSignal;
  /** Destroy the connection on purpose (a simulated failure, not a client abort). */
  resetConnection(): void;
}

export async function startFakeOpenAI(options: FakeOpenAIOptions = {}): Promise<FakeOpenAI> {
  const initialBehavior = toList(options.behavior ?? 'ok');
  let serverBehavior = initialBehavior;
  const modelBehaviors = new Map<string, FakeBehavior[]>();
  let queue: FakeBehavior[][] = [];
  let reply = options.reply;
  let replyFor = options.replyFor;
  const chunkDelayMs = options.chunkDelayMs ?? 0;
  const defaultDimensions = options.embeddingDimensions ?? 8;
  const models = options.models ?? ['fake-chat', 'fake-embed'];
  const basePath = (options.basePath ?? '/v1').replace(/\/+$/, '');
  const resetAfterChunks = options.resetAfterChunks ?? 2;
  const requests: RecordedRequest[] = [];
  const settledPromises = new WeakMap<RecordedRequest, Promise<void>>();
  const recordWaiters = new Set<() => void>();
  const closing = new AbortController();
  const sockets = new Set<Socket>();
  let seq = 0;

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      // A bug in the fake must surface as a 500 the test can see, not as a hang
      if (!res.headersSent && !res.destroyed) {
        sendError(res, new ApiError(500, `fake upstream crashed: ${String(err)}`, 'server_error'));
      } else {
        res.destroy();
      }
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const rawBody = Buffer.concat(chunks).toString('utf8');
    let body: unknown;
    let badJson = false;
    if (rawBody.trim() !== '') {
      try {
        body = JSON.parse(rawBody);
      } catch {
        badJson = true;
      }
    }
    const url = new URL(req.url ?? '/', 'http://fake');
    const model = isObject(body) && typeof body.model === 'string' ? body.model : undefined;
    const header = req.headers['x-fake-behavior'];
    let behaviors: FakeBehavior[];
    let headerError: string | undefined;
    try {
      behaviors =
        typeof header === 'string'
          ? parseBehaviors(header)
          : (queue.shift() ??
            (model !== undefined ? modelBehaviors.get(model) : undefined) ??
            serverBehavior);
    } catch (err) {
      behaviors = ['ok'];
      headerError = (err as Error).message;
    }
    const record: RecordedRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: url.search.slice(1),
      headers: req.headers,
      authorization: req.headers.authorization,
      body,
      rawBody,
      behavior: behaviors,
      status: undefined,
      aborted: false,
      settled: false,
      bodyBytesSent: 0,
    };

    const local = new AbortController();
    const signal = AbortSignal.any([local.signal, closing.signal]);
    let resetByFake = false;
    settledPromises.set(
      record,
      new Promise<void>((resolve) => {
        res.on('close', () => {
          // Only the client's going away counts: a simulated reset or the fake's own close() does not
          if (!res.writableFinished && !resetByFake && !closing.signal.aborted) record.aborted = true;
          record.settled = true;
          local.abort();
          resolve();
        });
      }),
    );
    requests.push(record);
    for (const wake of recordWaiters) wake();

    const ex: Exchange = {
      req,
      res,
      record,
      behaviors,
      signal,
      resetConnection() {
        resetByFake = true;
        req.socket.destroy();
      },
    };

    if (behaviors.includes('reset')) return ex.resetConnection();
    if (behaviors.includes('hang')) return;
    for (const b of behaviors) {
      if (b.startsWith('slow:') && !(await wait(Number(b.slice(5)), signal))) return;
    }

    if (headerError !== undefined) return reply400(ex, headerError);
    if (options.apiKey !== undefined && req.headers.authorization !== `Bearer ${options.apiKey}`) {
      const presented = /^Bearer (.*)$/.exec(req.headers.authorization ?? '')?.[1];
      return sendError(
        res,
        new ApiError(
          401,
          presented === undefined
            ? "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            : `Incorrect API key provided: ${redact(presented)}.`,
          'invalid_request_error',
          null,
          'invalid_api_key',
        ),
        ex,
      );
    }
    const errorBehavior = behaviors.find((b) => b.startsWith('error:'));
    if (errorBehavior !== undefined) return sendError(res, statusError(Number(errorBehavior.slice(6))), ex);
    const endless = behaviors.find((b): b is EndlessKind => b === 'endless-body' || b === 'endless-event');
    if (endless !== undefined) {
      record.status = 200;
      record.bodyBytesSent = await sendEndless(res, signal, endless, model ?? '');
      return;
    }
    if (badJson) {
      return reply400(
        ex,
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
      );
    }

    const method = req.method ?? 'GET';
    const raw = url.pathname.replace(/\/+$/, '');
    // the routes below are written for '/v1'; another base path is mapped onto it
    const path = raw.startsWith(`${basePath}/`) ? `/v1${raw.slice(basePath.length)}` : `/unknown${raw}`;
    if (method === 'POST' && path === '/v1/chat/completions') return chatCompletions(ex);
    if (method === 'POST' && path === '/v1/embeddings') return embeddings(ex);
    if (method === 'GET' && path === '/v1/models') {
      return sendJson(ex, 200, { object: 'list', data: models.map(modelObject) });
    }
    if (method === 'GET' && path.startsWith('/v1/models/')) {
      const id = decodeURIComponent(path.slice('/v1/models/'.length));
      if (models.includes(id)) return sendJson(ex, 200, modelObject(id));
      return sendError(
        res,
        new ApiError(
          404,
          `The model '${id}' does not exist`,
          'invalid_request_error',
          'model',
          'model_not_found',
        ),
        ex,
      );
    }
    return sendError(
      res,
      new ApiError(404, `Invalid URL (${method} ${url.pathname})`, 'invalid_request_error'),
      ex,
    );
  }

  async function chatCompletions(ex: Exchange): Promise<void> {
    const body = ex.record.body;
    if (!isObject(body)) return reply400(ex, 'The request body must be a JSON object.');
    if (typeof body.model !== 'string' || body.model === '') {
      return reply400(ex, 'you must provide a model parameter', null, null);
    }
    if (!Array.isArray(body.messages) || body.messages.length === 0) {
      return reply400(
        ex,
        body.messages === undefined
          ? "Missing required parameter: 'messages'."
          : "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
        'messages',
        body.messages === undefined ? 'missing_required_parameter' : 'empty_array',
      );
    }
    const stream = body.stream === true;
    // Real OpenAI rejects this; a hub that adds include_usage to non-streaming calls must notice
    if (!stream && body.stream_options !== undefined && body.stream_options !== null) {
      return reply400(
        ex,
        "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
        'stream_options',
        null,
      );
    }
    const limits = [body.max_tokens, body.max_completion_tokens].filter(
      (v): v is number => typeof v === 'number',
    );
    const maxTokens = limits.length > 0 ? Math.min(...limits) : undefined;
    if (maxTokens !== undefined && (!Number.isInteger(maxTokens) || maxTokens < 1)) {
      return reply400(
        ex,
        `Invalid 'max_tokens': integer below minimum value. Expected a value >= 1, but got ${maxTokens} instead.`,
        body.max_tokens !== undefined ? 'max_tokens' : 'max_completion_tokens',
        'integer_below_min_value',
      );
    }
    const n = typeof body.n === 'number' && Number.isInteger(body.n) && body.n > 0 ? body.n : 1;

    const messages = body.messages as unknown[];
    const headerReply = ex.req.headers['x-fake-reply'];
    const fullReply =
      typeof headerReply === 'string'
        ? headerReply
        : (replyFor?.(messages, String(body.model)) ?? reply ?? echoReply(messages));
    let words = splitWords(fullReply);
    let finishReason: 'stop' | 'length' = 'stop';
    let content = fullReply;
    if (maxTokens !== undefined && words.length > maxTokens) {
      words = words.slice(0, maxTokens);
      content = words.join(' ');
      finishReason = 'length';
    }
    const forced = ex.behaviors.find((b) => b.startsWith('usage:'))?.split(':');
    const promptTokens = forced ? Number(forced[1]) : countPromptTokens(messages);
    const completionTokens = forced ? Number(forced[2]) : words.length * n;
    const usage = {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
      prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
      completion_tokens_details: {
        reasoning_tokens: 0,
        audio_tokens: 0,
        accepted_prediction_tokens: 0,
        rejected_prediction_tokens: 0,
      },
    };
    const noUsage = ex.behaviors.includes('no-usage');
    const id = `chatcmpl-fake${String(++seq).padStart(6, '0')}`;
    const created = Math.floor(Date.now() / 1000);
    const model = body.model;
    const choices = Array.from({ length: n }, (_, index) => index);

    if (!stream) {
      const completion: Record<string, unknown> = {
        id,
        object: 'chat.completion',
        created,
        model,
        choices: choices.map((index) => ({
          index,
          message: { role: 'assistant', content, refusal: null, annotations: [] },
          logprobs: null,
          finish_reason: finishReason,
        })),
        service_tier: 'default',
        system_fingerprint: 'fp_fake',
      };
      if (!noUsage) completion.usage = usage;
      return sendJson(ex, 200, completion);
    }

    const includeUsage = isObject(body.stream_options) && body.stream_options.include_usage === true;
    const withUsageField = includeUsage && !noUsage;
    const chunk = (choiceList: unknown[], extra: Record<string, unknown> = {}) => {
      const c: Record<string, unknown> = {
        id,
        object: 'chat.completion.chunk',
        created,
        model,
        service_tier: 'default',
        system_fingerprint: 'fp_fake',
        choices: choiceList,
      };
      if (withUsageField) c.usage = null;
      return Object.assign(c, extra);
    };
    const delta = (index: number, d: Record<string, unknown>, finish: string | null = null) => ({
      index,
      delta: d,
      logprobs: null,
      finish_reason: finish,
    });
    const events: unknown[] = [];
    for (const index of choices)
      events.push(chunk([delta(index, { role: 'assistant', content: '', refusal: null })]));
    words.forEach((word, i) => {
      for (const index of choices)
        events.push(chunk([delta(index, { content: i === 0 ? word : ` ${word}` })]));
    });
    const contentEnd = events.length;
    for (const index of choices) events.push(chunk([delta(index, {}, finishReason)]));
    if (withUsageField) events.push(chunk([], { usage }));

    const delayHeader = ex.req.headers['x-fake-chunk-delay-ms'];
    const delay = typeof delayHeader === 'string' && delayHeader !== '' ? Number(delayHeader) : chunkDelayMs;
    const resetAt = ex.behaviors.includes('reset-mid-stream')
      ? Math.min(n * (1 + resetAfterChunks), contentEnd)
      : Number.POSITIVE_INFINITY;

    const { res } = ex;
    ex.record.status = 200;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      'x-request-id': requestId(),
    });
    // Headers go out at once so a client sees the stream start before the first chunk
    res.flushHeaders();
    for (let i = 0; i < events.length; i++) {
      if (i > 0 && !(await wait(delay, ex.signal))) return;
      if (res.destroyed) return;
      const data = `data: ${JSON.stringify(events[i])}\n\n`;
      if (i + 1 === resetAt) {
        // Destroy only once the chunk has left, so the client reliably sees it before the failure
        res.write(data, () => ex.resetConnection());
        return;
      }
      res.write(data);
    }
    if (!(await wait(delay, ex.signal)) || res.destroyed) return;
    res.end('data: [DONE]\n\n');
  }

  // async only for symmetry with chatCompletions, so every handler can `return reply400(...)`
  async function embeddings(ex: Exchange): Promise<void> {
    const body = ex.record.body;
    if (!isObject(body)) return reply400(ex, 'The request body must be a JSON object.');
    if (typeof body.model !== 'string' || body.model === '') {
      return reply400(ex, 'you must provide a model parameter', null, null);
    }
    const inputs = normalizeEmbeddingInput(body.input);
    if (inputs === undefined) {
      return reply400(
        ex,
        body.input === undefined
          ? "Missing required parameter: 'input'."
          : "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
        'input',
        body.input === undefined ? 'missing_required_parameter' : null,
      );
    }
    const format = body.encoding_format ?? 'float';
    if (format !== 'float' && format !== 'base64') {
      return reply400(
        ex,
        `Invalid value for 'encoding_format': '${String(format)}'. Supported values are: 'float' and 'base64'.`,
        'encoding_format',
        'invalid_value',
      );
    }
    let dimensions = defaultDimensions;
    if (body.dimensions !== undefined) {
      if (typeof body.dimensions !== 'number' || !Number.isInteger(body.dimensions) || body.dimensions < 1) {
        return reply400(ex, `Invalid 'dimensions': expected an integer >= 1.`, 'dimensions', 'invalid_value');
      }
      dimensions = body.dimensions;
    }
    const promptTokens = inputs.reduce<number>(
      (sum, input) => sum + (typeof input === 'string' ? countWords(input) : input.length),
      0,
    );
    const response: Record<string, unknown> = {
      object: 'list',
      data: inputs.map((input, index) => {
        const vector = fakeEmbedding(input, dimensions);
        return {
          object: 'embedding',
          index,
          embedding: format === 'base64' ? embeddingToBase64(vector) : vector,
        };
      }),
      model: body.model,
    };
    if (!ex.behaviors.includes('no-usage')) {
      response.usage = { prompt_tokens: promptTokens, total_tokens: promptTokens };
    }
    sendJson(ex, 200, response);
  }

  function modelObject(id: string) {
    return { id, object: 'model', created: 1700000000, owned_by: 'fake-upstream' };
  }

  function reply400(
    ex: Exchange,
    message: string,
    param: string | null = null,
    code: string | null = null,
  ): void {
    sendError(ex.res, new ApiError(400, message, 'invalid_request_error', param, code), ex);
  }

  function sendError(res: ServerResponse, err: ApiError, ex?: Exchange): void {
    const payload = { error: { message: err.message, type: err.type, param: err.param, code: err.code } };
    if (ex !== undefined) {
      sendJson(ex, err.status, payload, err.headers);
      return;
    }
    const text = JSON.stringify(payload);
    res.writeHead(err.status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
    });
    res.end(text);
  }

  function sendJson(
    ex: Exchange,
    status: number,
    payload: unknown,
    headers: Record<string, string> = {},
  ): void {
    const { res } = ex;
    if (res.destroyed) return;
    const text = JSON.stringify(payload);
    ex.record.status = status;
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      'x-request-id': requestId(),
      ...headers,
    });
    if (status === 200 && ex.behaviors.includes('reset-mid-stream')) {
      // Headers promise the full length; half the body then a dead socket is a mid-body failure
      res.write(text.slice(0, Math.floor(text.length / 2)), () => ex.resetConnection());
      return;
    }
    res.end(text);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  const withTimeout = <T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`fake upstream: timed out after ${timeoutMs} ms ${what}`)),
        timeoutMs,
      );
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  };

  return {
    url: `http://127.0.0.1:${port}${basePath}`,
    port,
    requests,
    setBehavior(behavior, opts) {
      const list = toList(behavior);
      if (opts?.model !== undefined) modelBehaviors.set(opts.model, list);
      else serverBehavior = list;
    },
    queueBehaviors(...behaviors) {
      queue.push(...behaviors.map(toList));
    },
    setReply(value) {
      reply = value;
    },
    setReplyFor(value) {
      replyFor = value;
    },
    reset() {
      requests.length = 0;
      queue = [];
      modelBehaviors.clear();
      serverBehavior = initialBehavior;
      reply = options.reply;
      replyFor = options.replyFor;
    },
    waitForRequests(count, timeoutMs = 2000) {
      if (requests.length >= count) return Promise.resolve(requests.slice());
      let wake: () => void = () => {};
      const arrived = new Promise<RecordedRequest[]>((resolve) => {
        wake = () => {
          if (requests.length >= count) resolve(requests.slice());
        };
        recordWaiters.add(wake);
      });
      return withTimeout(
        arrived,
        timeoutMs,
        `waiting for ${count} request(s), got ${requests.length}`,
      ).finally(() => recordWaiters.delete(wake));
    },
    async waitForSettled(request, timeoutMs = 2000) {
      const settled = settledPromises.get(request);
      if (settled === undefined) throw new Error('fake upstream: not a request recorded by this fake');
      await withTimeout(settled, timeoutMs, `waiting for ${request.method} ${request.path} to settle`);
      return request;
    },
    async close() {
      closing.abort();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

/** Resolves true after `ms`, or false as soon as the signal aborts (client gone or fake closed). */
async function wait(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return false;
  if (!(ms > 0)) {
    // Yield anyway so consecutive writes leave as separate chunks instead of one coalesced write
    await new Promise<void>((resolve) => setImmediate(resolve));
    return !signal.aborted;
  }
  try {
    await sleep(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}

function requestId(): string {
  return `req_${randomBytes(16).toString('hex')}`;
}

function redact(key: string): string {
  return key.length <= 8
    ? '*'.repeat(key.length)
    : `${key.slice(0, 3)}${'*'.repeat(key.length - 7)}${key.slice(-4)}`;
}

function normalizeEmbeddingInput(input: unknown): (string | number[])[] | undefined {
  const isTokens = (v: unknown): v is number[] =>
    Array.isArray(v) && v.length > 0 && v.every((t) => Number.isInteger(t) && (t as number) >= 0);
  if (typeof input === 'string') return input === '' ? undefined : [input];
  if (isTokens(input)) return [input];
  if (!Array.isArray(input) || input.length === 0) return undefined;
  if (input.every((v) => typeof v === 'string' && v !== '')) return input as string[];
  if (input.every(isTokens)) return input;
  return undefined;
}
