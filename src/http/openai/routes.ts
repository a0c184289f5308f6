import type { IncomingMessage, ServerResponse } from 'node:http';
import { unexpectedFailure } from '../../calls/errors.ts';
import { newRequestId } from '../../storage/ids.ts';
import { BodyAbortedError, discardBody, readJsonBody } from '../body.ts';
import type { OpenAIDeps, RequestContext } from './context.ts';
import { invalidApiKey, type OpenAIError, sendOpenAIError } from './errors.ts';
import { handleGuardrailsCheck } from './guardrails.ts';
import { handleModelCall } from './model-calls.ts';
import { handleListModels, handleRetrieveModel } from './models.ts';
import { bodyRefusal } from './validate.ts';

const GUARDRAILS_CHECK = '/v1/guardrails/check';

const notFound = (method: string, path: string): OpenAIError => ({
  status: 404,
  type: 'invalid_request_error',
  code: 'unknown_url',
  message: `알 수 없는 경로입니다. / Unknown request URL: ${method} ${path}.`,
});

/**
 * The `endpoint` label of a path. A fixed set: anyone, even without a key, can send any path, and a
 * label per path would let them mint metric series without bound.
 */
function endpointLabel(path: string): string {
  if (path === '/v1/chat/completions') return 'chat.completions';
  if (path === '/v1/embeddings') return 'embeddings';
  if (path === GUARDRAILS_CHECK) return 'guardrails.check';
  if (path === '/v1/models' || path.startsWith('/v1/models/')) return 'models';
  return 'other';
}

/** A percent-encoded path segment, or undefined when its encoding is broken (`%E0%A4%A`). */
function decodePathSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

function bearer(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  if (!header || header.length < 8 || header.slice(0, 7).toLowerCase() !== 'bearer ') return undefined;
  return header.slice(7).trim();
}

/**
 * The /v1 surface. Order matters and is the request path of DESIGN.md: authenticate from memory,
 * read the body within its limit, then hand over to the endpoint, which resolves, admits, routes and
 * meters.
 */
export function createOpenAIHandler(deps: OpenAIDeps) {
  /** Refused before a product is known: counted under an empty product label, never metered. */
  function refuse(res: ServerResponse, path: string, requestId: string, error: OpenAIError): void {
    deps.metrics.requests.labels('', endpointLabel(path), String(error.status)).inc();
    sendOpenAIError(res, error, requestId);
  }

  return async function handleOpenAI(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const requestId = newRequestId();
    try {
      await serve(req, res, path, requestId);
    } catch (error) {
      // a 503 only says "nothing applied" if nothing was: a /v1 call's one write is its usage record
      // (on SQLite appended to the journal file, applied by the worker's own connection; on PostgreSQL
      // or in-memory SQLite one group-commit transaction), so a refused lock applied nothing of it
      const failure = unexpectedFailure(error, requestId);
      deps.logger[failure.status === 503 ? 'warn' : 'error'](
        { err: error, requestId, path },
        'unhandled error on /v1',
      );
      if (res.headersSent) res.destroy();
      else refuse(res, path, requestId, failure);
    }
  };

  async function serve(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    requestId: string,
  ): Promise<void> {
    const startedAt = performance.now();
    const key = bearer(req);
    const caller = key ? await deps.keys.authenticate(key) : undefined;
    if (!caller) {
      discardBody(req);
      return refuse(res, path, requestId, invalidApiKey());
    }
    const ctx: RequestContext = { req, res, requestId, startedAt, startedAtMs: Date.now(), caller };
    const method = req.method ?? 'GET';

    if (method === 'GET') {
      if (path === '/v1/models') return handleListModels(deps, ctx);
      if (path.startsWith('/v1/models/')) {
        const model = decodePathSegment(path.slice(11));
        if (model !== undefined) return handleRetrieveModel(deps, ctx, model);
      }
      return refuse(res, path, requestId, notFound(method, path));
    }
    if (
      method !== 'POST' ||
      (path !== '/v1/chat/completions' && path !== '/v1/embeddings' && path !== GUARDRAILS_CHECK)
    ) {
      return refuse(res, path, requestId, notFound(method, path));
    }

    let body: Record<string, unknown>;
    try {
      body = await readJsonBody(req, { maxBytes: deps.maxBodyBytes });
    } catch (error) {
      // nobody to answer: the client left, or the receive timeout already answered 408
      if (error instanceof BodyAbortedError) return;
      const refusal = bodyRefusal(error);
      if (!refusal) throw error;
      return refuse(res, path, requestId, refusal);
    }
    if (path === GUARDRAILS_CHECK) {
      handleGuardrailsCheck(ctx, body);
      deps.metrics.requests.labels('', 'guardrails.check', String(res.statusCode)).inc();
      return;
    }
    await handleModelCall(deps, ctx, path === '/v1/chat/completions' ? 'chat' : 'embeddings', body);
  }
}
