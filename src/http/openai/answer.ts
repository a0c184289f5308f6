import type { ServerResponse } from 'node:http';
import { type CallError, CallStreamError } from '../../calls/errors.ts';
import type { CallOutcome, ModelCall } from '../../calls/model-call.ts';
import type { JsonObject } from '../../providers/adapter.ts';
import type { OpenAIDeps, RequestContext } from './context.ts';
import { sendOpenAIError } from './errors.ts';

const CALL = Symbol('kaihub.call');

/**
 * The client went away before the answer finished: the call stops (or, mid-stream, drains for the
 * upstream's counts). One function for every response, `this` being the response: no closure a request.
 */
function onResponseClose(this: ServerResponse): void {
  if (this.writableFinished) return;
  (this as ServerResponse & { [CALL]?: ModelCall })[CALL]?.cancel();
}

/** Ties the call's life to the client's connection. */
export function watchClient(ctx: RequestContext, call: ModelCall): void {
  (ctx.res as ServerResponse & { [CALL]?: ModelCall })[CALL] = call;
  ctx.res.once('close', onResponseClose);
}

function headersOf(
  ctx: RequestContext,
  call: ModelCall,
  contentType: string,
): Record<string, string | number> {
  const headers: Record<string, string | number> = {
    'content-type': contentType,
    'x-request-id': ctx.requestId,
  };
  if (call.ignoredParams !== null) headers['x-kaihub-ignored-params'] = call.ignoredParams;
  if (call.admissionHeaders !== null) Object.assign(headers, call.admissionHeaders);
  return headers;
}

/** Writes what the call layer answered: a JSON body, an event stream, or an OpenAI error. */
export async function writeOutcome(
  deps: OpenAIDeps,
  ctx: RequestContext,
  call: ModelCall,
  outcome: CallOutcome,
): Promise<void> {
  if (outcome.type === 'error') {
    if (!ctx.res.destroyed) sendOpenAIError(ctx.res, outcome.error, ctx.requestId);
    return;
  }
  if (outcome.type === 'completed') return sendCompleted(ctx, call, outcome.body);
  // The stream is written on its own: the handlers that led here return now rather than wait, each
  // suspended with its frame, promise and closures, for as long as the stream lasts (heap snapshot at
  // 2,000 open streams). writeStream answers its own failures and never rejects.
  void writeStream(deps, ctx, call, outcome.stream);
}

/** The 200 answer of a plain call, with its length so keep-alive clients never wait for a close. */
function sendCompleted(ctx: RequestContext, call: ModelCall, body: JsonObject): void {
  if (ctx.res.destroyed) return;
  const text = JSON.stringify(body);
  const headers = headersOf(ctx, call, 'application/json');
  headers['content-length'] = Buffer.byteLength(text);
  ctx.res.writeHead(200, headers);
  ctx.res.end(text);
}

/**
 * Writes with backpressure: a slow client slows the upstream read instead of growing a buffer. The
 * wait also ends when the call is aborted (its total time is up), so a client that stopped reading
 * cannot hold the call beyond it.
 */
function write(res: ServerResponse, data: string, signal: AbortSignal): Promise<void> | undefined {
  if (res.write(data)) return undefined;
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
    signal.addEventListener('abort', done);
  });
}

function errorEvent(error: CallError): string {
  return `data: ${JSON.stringify({ error: { message: error.message, type: error.type, param: error.param ?? null, code: error.code ?? null } })}\n\n`;
}

/** A stream's headers, made in a function of their own so that the stream's writer does not keep them. */
function streamHeaders(ctx: RequestContext, call: ModelCall): Record<string, string | number> {
  const headers = headersOf(ctx, call, 'text/event-stream; charset=utf-8');
  headers['cache-control'] = 'no-cache';
  headers.connection = 'keep-alive';
  headers['x-accel-buffering'] = 'no';
  return headers;
}

async function writeStream(
  deps: OpenAIDeps,
  ctx: RequestContext,
  call: ModelCall,
  stream: AsyncGenerator<JsonObject, void, undefined>,
): Promise<void> {
  const { res } = ctx;
  try {
    if (!res.destroyed) {
      res.writeHead(200, streamHeaders(ctx, call));
      res.flushHeaders();
    }
    // by hand rather than `for await`, its variables emptied before each wait: a suspended function
    // keeps them, and the last chunk and its text would stay alive for as long as the next one takes
    let next: IteratorResult<JsonObject, void> | null = null;
    let wait: Promise<void> | undefined;
    for (;;) {
      next = null;
      next = await stream.next();
      if (next.done === true) break;
      // leaving early (the client is gone) returns the stream: the call drains and meters
      if (res.destroyed) {
        next = null;
        await stream.return(undefined);
        break;
      }
      wait = write(res, `data: ${JSON.stringify(next.value)}\n\n`, call.signal);
      next = null;
      if (wait) {
        await wait;
        wait = undefined;
      }
    }
    if (!res.destroyed) res.end('data: [DONE]\n\n');
  } catch (error) {
    try {
      if (!(error instanceof CallStreamError)) {
        deps.logger.error({ err: error, requestId: ctx.requestId }, 'stream writer failed');
        res.destroy();
        // as `for await` would: the call's stream is returned, so that it drains, meters and lets go
        // of its slots now rather than at the total-time backstop
        stream.return(undefined).catch(() => {});
        return;
      }
      if (res.destroyed) return;
      // a client that stopped reading would hold the connection for ever: its time is up
      if (res.writableNeedDrain) res.destroy();
      else res.end(errorEvent(error.error));
    } catch (lastError) {
      // the last resort, here rather than in a `.catch` on this function's promise: that handler and
      // its closure would be held for as long as the stream lasts
      deps.logger.error({ err: lastError, requestId: ctx.requestId }, 'unhandled error on /v1');
      res.destroy();
    }
  }
}
