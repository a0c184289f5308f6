import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { type CallError, unexpectedFailure } from '../calls/errors.ts';
import type { Logger } from '../observability/logger.ts';
import { sendOpenAIError } from './openai/errors.ts';
import { sendJson } from './respond.ts';

export type PathHandler = (req: IncomingMessage, res: ServerResponse, path: string) => Promise<void> | void;

export interface Surfaces {
  openai: PathHandler;
  admin: PathHandler;
  healthz: PathHandler;
  readyz: PathHandler;
  metrics: PathHandler;
  /** The public leaderboard: `/leaderboard` (HTML) and `/leaderboard.json`, no sign-in. */
  leaderboard: PathHandler;
}

export interface ConnectionLimits {
  /** Time to receive a whole request, headers and body (KAIHUB_REQUEST_TIMEOUT_MS). */
  requestTimeoutMs: number;
  /**
   * Client connections open at once (KAIHUB_MAX_CONNECTIONS); undefined: as many as the open-file
   * limit holds, at most `DEFAULT_MAX_CONNECTIONS`.
   */
  maxConnections: number | undefined;
}

/** The connection cap when none is set and the open-file limit allows it. */
export const DEFAULT_MAX_CONNECTIONS = 10_000;

/** The most connections `limit` open files hold (see `fileDescriptorsNeeded`). */
export function connectionsHeldBy(limit: number): number {
  return Math.max(1, Math.floor((limit - 100) / 2));
}

/** Node's options for these limits, shared with bench/bare-proxy.mjs's copy of them. */
export function serverTimeouts(requestTimeoutMs: number) {
  return {
    keepAliveTimeout: 65_000,
    requestTimeout: requestTimeoutMs,
    // node requires headersTimeout <= requestTimeout
    headersTimeout: Math.min(60_000, requestTimeoutMs),
    // node checks the two timeouts on a timer (30 s by default, which would let a 60 s timeout run
    // to 90 s); the check walks only connections that are receiving a request, so it is cheap
    connectionsCheckingInterval: Math.max(25, Math.min(1_000, Math.floor(requestTimeoutMs / 4))),
  };
}

/**
 * Plain node:http with a prefix dispatch: the hot path pays for no framework. A handler that throws
 * gets a 500 in the shape of its surface; the process never goes down for one request.
 *
 * A request must arrive whole within `requestTimeoutMs` (else 408 and the connection closes: a body
 * trickled a byte at a time no longer holds a connection forever). Only receiving counts: once the
 * request is in, its answer, a long stream included, takes as long as it takes, and a keep-alive
 * connection waiting for its next request is governed by `keepAliveTimeout`. Past `maxConnections`
 * open connections, node closes new ones as they arrive.
 */
export function createHttpServer(surfaces: Surfaces, logger: Logger, limits: ConnectionLimits): Server {
  const server = createServer(serverTimeouts(limits.requestTimeoutMs), (req, res) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    let handler: PathHandler;
    if (path.startsWith('/v1/')) handler = surfaces.openai;
    else if (path.startsWith('/admin/v1/') || path === '/admin/v1') handler = surfaces.admin;
    else if (path === '/healthz') handler = surfaces.healthz;
    else if (path === '/readyz') handler = surfaces.readyz;
    else if (path === '/metrics') handler = surfaces.metrics;
    else if (path === '/leaderboard' || path === '/leaderboard.json') handler = surfaces.leaderboard;
    else {
      sendJson(res, 404, {
        error: { code: 'not_found', message: `찾을 수 없습니다. / Not found: ${path}` },
      });
      return;
    }
    let result: Promise<void> | void;
    try {
      result = handler(req, res, path);
    } catch (error) {
      internalError(res, path, error, logger);
      return;
    }
    if (result) result.catch((error: unknown) => internalError(res, path, error, logger));
  });
  // unset: what this process's open-file limit holds (a newcomer's `ulimit -n` is often small), so a
  // default never promises more than the machine allows; a value set by the operator is kept, and
  // warned about when the limit cannot hold it
  const openFiles = openFileLimit();
  const maxConnections =
    limits.maxConnections ??
    Math.min(
      DEFAULT_MAX_CONNECTIONS,
      openFiles === undefined ? DEFAULT_MAX_CONNECTIONS : connectionsHeldBy(openFiles),
    );
  server.maxConnections = maxConnections;
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) =>
    answerClientError(error, socket, logger),
  );
  server.on('drop', reportDrops(maxConnections, logger));
  if (limits.maxConnections !== undefined)
    warnIfTooFewFileDescriptors(limits.maxConnections, openFiles, logger);
  return server;
}

const CLIENT_ERROR_ANSWERS: Record<string, string> = {
  ERR_HTTP_REQUEST_TIMEOUT: '408 Request Timeout',
  HPE_HEADER_OVERFLOW: '431 Request Header Fields Too Large',
};

/**
 * A request node could not take (malformed, too slow, headers too large) gets its status before the
 * connection closes, instead of a silent reset; `end`, not node's write-then-destroy, so that the
 * answer is not lost. Never in the middle of an answer already under way on that connection.
 */
function answerClientError(error: NodeJS.ErrnoException, socket: Socket, logger: Logger): void {
  const inFlight = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
  if (error.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  const status = CLIENT_ERROR_ANSWERS[error.code ?? ''] ?? '400 Bad Request';
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT')
    logger.debug({ remote: socket.remoteAddress }, 'request not received in time');
  socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
}

/** One warning per 10 s with the count, however many connections are refused. */
function reportDrops(maxConnections: number, logger: Logger): () => void {
  let dropped = 0;
  let timer: NodeJS.Timeout | undefined;
  return () => {
    dropped++;
    if (timer) return;
    timer = setTimeout(() => {
      logger.warn({ dropped, maxConnections }, 'connections refused: KAIHUB_MAX_CONNECTIONS reached');
      dropped = 0;
      timer = undefined;
    }, 10_000);
    timer.unref();
  };
}

/** The soft limit on open files of this process (`ulimit -n`), where the system tells it (Linux). */
export function openFileLimit(limitsText = readProcLimits()): number | undefined {
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(limitsText ?? '');
  if (!m) return undefined;
  return m[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m[1]);
}

function readProcLimits(): string | undefined {
  try {
    return readFileSync('/proc/self/limits', 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * Each client connection can hold a second descriptor towards its upstream (a stream does, for its
 * whole length), and the hub needs some of its own (database, journal, workers, logs).
 */
export function fileDescriptorsNeeded(maxConnections: number): number {
  return 2 * maxConnections + 100;
}

function warnIfTooFewFileDescriptors(
  maxConnections: number,
  limit: number | undefined,
  logger: Logger,
): void {
  const needed = fileDescriptorsNeeded(maxConnections);
  if (limit === undefined || limit >= needed) return;
  logger.warn(
    { maxConnections, openFileLimit: limit, needed },
    `KAIHUB_MAX_CONNECTIONS=${maxConnections} needs about ${needed} open files (a client and an upstream connection each), but this process may open ${limit} (ulimit -n): past that, new connections fail with EMFILE. Raise the limit (ulimit -n ${needed}, LimitNOFILE=${needed} for systemd) or lower KAIHUB_MAX_CONNECTIONS to ${connectionsHeldBy(limit)}.`,
  );
}

/** `failure` in the shape of the surface `path` is on: OpenAI's on `/v1`, the admin API's elsewhere. */
export function sendFailure(res: ServerResponse, path: string, failure: CallError): void {
  if (path.startsWith('/v1/')) sendOpenAIError(res, failure);
  else
    sendJson(
      res,
      failure.status,
      { error: { code: failure.code ?? 'internal_error', message: failure.message } },
      failure.headers,
    );
}

/**
 * What a handler threw, in the shape of its surface: a lock the database did not give in time is a 503
 * the client may retry (nothing was applied); anything else a 500. Nothing that reaches here has
 * committed before such a refusal: `/v1` answers its own (its only write is its usage record), and
 * `/admin/v1` answers storage-busy itself, with a 500 when the handler had committed something
 * (router.ts); the leaderboard, readyz and metrics only read.
 */
function internalError(res: ServerResponse, path: string, error: unknown, logger: Logger): void {
  const failure = unexpectedFailure(error);
  if (failure.status === 503) logger.warn({ err: error, path }, 'request refused: storage busy');
  else logger.error({ err: error, path }, 'unhandled error');
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendFailure(res, path, failure);
}
