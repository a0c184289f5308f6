import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AdminTokenCheck } from '../../accounts/admin-token.ts';
import { ConflictError, NotFoundError, ValidationError } from '../../errors.ts';
import type { Logger } from '../../observability/logger.ts';
import { BodyTooLargeError, discardBody, MalformedJsonError, parseJsonObject, readBody } from '../body.ts';
import { sendJson } from '../respond.ts';

export interface AdminRequest {
  params: Record<string, string>;
  query: Record<string, string>;
  /** The parsed JSON body, read only for methods that carry one. */
  body: unknown;
}

/** What a route returns: a status and a JSON body (204 sends none). */
export interface AdminResult {
  status: number;
  body?: unknown;
}

export interface AdminRoute {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** `/organizations/:id/keys` */
  path: string;
  handle(req: AdminRequest): Promise<AdminResult>;
}

interface CompiledRoute extends AdminRoute {
  pattern: RegExp;
  names: string[];
}

const MAX_ADMIN_BODY_BYTES = 1024 * 1024;

function compile(route: AdminRoute): CompiledRoute {
  const names: string[] = [];
  const source = route.path.replace(/:([a-zA-Z]+)/g, (_m, name: string) => {
    names.push(name);
    return '([^/]+)';
  });
  return { ...route, pattern: new RegExp(`^/admin/v1${source}/?$`), names };
}

/**
 * Errors on /admin/v1: `{error: {code, message, fields?}}`, where `fields` names each bad input
 * (`[{field: "priceInputPer1M", message: "..."}]`) so a console can put the message next to it.
 */
function sendError(
  res: ServerResponse,
  status: number,
  code: string,
  message: string,
  fields?: unknown,
): void {
  sendJson(res, status, { error: { code, message, ...(fields !== undefined && { fields }) } });
}

export function createAdminHandler(routes: AdminRoute[], token: AdminTokenCheck, logger: Logger) {
  const compiled = routes.map(compile);
  return async function handleAdmin(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const header = req.headers.authorization ?? '';
    const presented = header.toLowerCase().startsWith('bearer ') ? header.slice(7).trim() : '';
    if (!presented || !token.verify(presented)) {
      discardBody(req);
      return sendError(
        res,
        401,
        'unauthorized',
        '운영자 토큰이 필요합니다. / A valid operator token is required (Authorization: Bearer …).',
      );
    }
    const method = req.method ?? 'GET';
    let matchedPath = false;
    for (const route of compiled) {
      const m = route.pattern.exec(path);
      if (!m) continue;
      matchedPath = true;
      if (route.method !== method) continue;
      const params: Record<string, string> = {};
      try {
        route.names.forEach((name, i) => {
          params[name] = decodeURIComponent(m[i + 1]!);
        });
      } catch {
        // A broken %-escape (URIError) names nothing that could exist: a 404, not a 500.
        return sendError(res, 404, 'not_found', `찾을 수 없습니다. / Not found: ${path}`);
      }
      const url = new URL(req.url ?? '/', 'http://localhost');
      const query = Object.fromEntries(url.searchParams);
      try {
        let body: unknown;
        if (method === 'POST' || method === 'PATCH') {
          const raw = await readBody(req, MAX_ADMIN_BODY_BYTES);
          body = raw.length === 0 ? {} : parseJsonObject(raw);
        }
        const result = await route.handle({ params, query, body });
        if (result.status === 204) {
          res.writeHead(204);
          res.end();
        } else {
          sendJson(res, result.status, result.body);
        }
      } catch (error) {
        if (error instanceof ValidationError) {
          return sendError(
            res,
            400,
            'validation_failed',
            `입력값이 올바르지 않습니다. / Invalid input: ${error.message}`,
            error.fields,
          );
        }
        if (error instanceof MalformedJsonError)
          return sendError(res, 400, 'invalid_json', error.message, [
            { field: '(body)', message: error.message },
          ]);
        if (error instanceof BodyTooLargeError) {
          discardBody(req);
          return sendError(res, 413, 'body_too_large', error.message);
        }
        if (error instanceof NotFoundError) {
          return sendError(
            res,
            404,
            'not_found',
            `${error.entity}을(를) 찾을 수 없습니다. / ${error.message}`,
          );
        }
        if (error instanceof ConflictError) {
          return sendError(res, 409, 'conflict', `이미 존재합니다. / ${error.message}`, [
            { field: error.field, message: error.message },
          ]);
        }
        logger.error({ err: error, path }, 'admin request failed');
        throw error;
      }
      return;
    }
    if (matchedPath)
      return sendError(
        res,
        405,
        'method_not_allowed',
        `허용되지 않는 메서드입니다. / ${method} is not allowed on ${path}`,
      );
    sendError(res, 404, 'not_found', `찾을 수 없습니다. / Not found: ${path}`);
  };
}
