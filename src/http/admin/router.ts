import type { IncomingMessage, ServerResponse } from 'node:http';
import { hasRole, type Principal, type Role } from '../../accounts/roles.ts';
import type { AuditEntryInput, AuditLog, AuditTrail } from '../../audit/audit-log.ts';
import { internalError, storageBusy } from '../../calls/errors.ts';
import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from '../../errors.ts';
import type { Logger } from '../../observability/logger.ts';
import { isStorageBusy } from '../../storage/busy.ts';
import type { SqlExecutor } from '../../storage/database.ts';
import { newRequestId } from '../../storage/ids.ts';
import { BodyTooLargeError, discardBody, MalformedJsonError, parseJsonObject, readBody } from '../body.ts';
import { sendJson } from '../respond.ts';

/** What a route records beyond who and when: the rest comes from the request. */
export type RouteAuditEntry = Pick<
  AuditEntryInput,
  'action' | 'entityType' | 'entityId' | 'before' | 'after'
>;

export interface AdminRequest {
  params: Record<string, string>;
  query: Record<string, string>;
  /** The parsed JSON body, read only for methods that carry one. */
  body: unknown;
  /** Who is asking: checked by every route against the tenant of what it touches (docs/roles.md). */
  principal: Principal;
  requestId: string;
  /**
   * For a route with an audit spec: hand it to the service, which records the change with it inside
   * the transaction that makes it (action and entity type from the spec, who and the request from here).
   */
  trail: AuditTrail;
  /**
   * For routes that audit themselves (an import, a re-seal): one entry per thing changed, inside the
   * transaction that changes it when `tx` is given.
   */
  audit(entry: RouteAuditEntry, tx?: SqlExecutor): Promise<void>;
}

/** What a route returns: a status and a JSON body (204 sends none). */
export interface AdminResult {
  status: number;
  body?: unknown;
  /** A download (a statement as CSV or XLSX) instead of JSON. */
  file?: { contentType: string; filename: string; content: Buffer | string };
}

/** What a route's change is; the service says which thing, as it was and as it is (`AdminRequest.trail`). */
export interface RouteAudit {
  entityType: string;
  action: string;
}

export interface AdminRoute {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** `/organizations/:id/keys` */
  path: string;
  /** Roles that may call this route besides the operator; `[]`: the operator only; `anyone` signed in. */
  roles: readonly Role[] | 'anyone';
  /**
   * Without one of `roles`, the caller gets 403, or 404 when the path names a tenant's thing whose
   * existence must not leak to outsiders (`hidden`): the answer a nonexistent id gets.
   */
  hidden?: boolean;
  /** Every change is audited: through `trail` with this spec, or by the handler itself (`'handler'`). */
  audit?: RouteAudit | 'handler';
  handle(req: AdminRequest): Promise<AdminResult>;
}

interface CompiledRoute extends AdminRoute {
  pattern: RegExp;
  names: string[];
}

const MAX_ADMIN_BODY_BYTES = 1024 * 1024;

function compile(route: AdminRoute): CompiledRoute {
  if (route.method !== 'GET' && !route.audit)
    throw new Error(
      `${route.method} ${route.path}: a route that changes something must say how it is audited`,
    );
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
  headers?: Record<string, string>,
): void {
  sendJson(res, status, { error: { code, message, ...(fields !== undefined && { fields }) } }, headers);
}

const notFoundMessage = (path: string) => `찾을 수 없습니다. / Not found: ${path}`;

export interface AdminHandlerOptions {
  /** The principal a bearer token stands for, or undefined when it stands for no one. */
  authenticate(presented: string): Promise<Principal | undefined>;
  auditLog: AuditLog;
  logger: Logger;
  /**
   * The database's `commits` (storage/database.ts): read before a route runs and again when it fails
   * storage-busy, to tell "nothing applied, send it again" (503) from "part of it may be applied" (500).
   */
  commits(): number;
}

export const UNAUTHORIZED_MESSAGE =
  '운영자 토큰 또는 개인 액세스 토큰이 필요합니다. 생성된 운영자 토큰을 잃었다면 허브의 데이터베이스에 대해 `kaihub admin-token reset`을 실행하세요. / ' +
  'A valid operator token or personal access token is required (Authorization: Bearer …). Lost the generated operator token? Run `kaihub admin-token reset` against the hub’s database.';

export function createAdminHandler(routes: AdminRoute[], options: AdminHandlerOptions) {
  const { authenticate, auditLog, logger, commits } = options;
  const compiled = routes.map(compile);
  return async function handleAdmin(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const requestId = newRequestId();
    res.setHeader('x-request-id', requestId);
    const header = req.headers.authorization ?? '';
    const presented = header.toLowerCase().startsWith('bearer ') ? header.slice(7).trim() : '';
    const principal = presented ? await authenticate(presented) : undefined;
    if (!principal) {
      discardBody(req);
      return sendError(res, 401, 'unauthorized', UNAUTHORIZED_MESSAGE);
    }
    const method = req.method ?? 'GET';
    let matchedPath = false;
    for (const route of compiled) {
      const m = route.pattern.exec(path);
      if (!m) continue;
      matchedPath = true;
      if (route.method !== method) continue;
      if (!mayCall(principal, route.roles)) {
        discardBody(req);
        if (route.hidden) return sendError(res, 404, 'not_found', notFoundMessage(path));
        return sendError(
          res,
          403,
          'forbidden',
          `권한이 없습니다. / Forbidden: your roles do not allow ${method} ${route.path}`,
        );
      }
      const params: Record<string, string> = {};
      try {
        route.names.forEach((name, i) => {
          params[name] = decodeURIComponent(m[i + 1]!);
        });
      } catch {
        // A broken %-escape (URIError) names nothing that could exist: a 404, not a 500.
        return sendError(res, 404, 'not_found', notFoundMessage(path));
      }
      const url = new URL(req.url ?? '/', 'http://localhost');
      const query = Object.fromEntries(url.searchParams);
      const base = {
        actorId: principal.actorId,
        actorTokenId: principal.tokenId,
        source: 'admin-api' as const,
        requestId,
      };
      let committedBefore = 0;
      try {
        let body: unknown;
        if (method === 'POST' || method === 'PATCH') {
          const raw = await readBody(req, MAX_ADMIN_BODY_BYTES);
          body = raw.length === 0 ? {} : parseJsonObject(raw);
        }
        const spec = typeof route.audit === 'object' ? route.audit : undefined;
        let trailed = false;
        const request: AdminRequest = {
          params,
          query,
          body,
          principal,
          requestId,
          trail: async (tx, change) => {
            if (!spec) throw new Error(`${method} ${route.path} has no audit spec for its trail`);
            trailed = true;
            await auditLog.record(
              { ...base, action: spec.action, entityType: spec.entityType, ...change, request: body },
              tx,
            );
          },
          audit: (entry, tx) => auditLog.record({ ...base, ...entry }, tx),
        };
        // read when the route starts, not before its body arrives: a slow upload would let other
        // requests' commits in, and turn a 503 into a needless 500
        committedBefore = commits();
        const result = await route.handle(request);
        if (spec && !trailed) {
          // A route whose service did not take the trail: the change is committed already, so its
          // entry is written now rather than lost — and the omission is a bug to fix.
          logger.error(
            { path, route: route.path, requestId },
            'admin change audited outside its transaction',
          );
          await auditLog.record({
            ...base,
            action: spec.action,
            entityType: spec.entityType,
            entityId: entityIdOf(result) ?? params.id ?? '',
            after: result.status === 204 ? undefined : result.body,
            request: body,
          });
        }
        if (result.status === 204) {
          res.writeHead(204);
          res.end();
        } else if (result.file !== undefined) {
          const { contentType, filename, content } = result.file;
          res.writeHead(result.status, {
            'content-type': contentType,
            'content-length': Buffer.byteLength(content),
            // RFC 6266: an ASCII fallback and the UTF-8 name
            'content-disposition': `attachment; filename="${filename.replace(/[^\x20-\x7e]|"/g, '_')}"; filename*=UTF-8''${encodeURIComponent(filename)}`,
          });
          res.end(content);
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
        if (error instanceof ForbiddenError) {
          return sendError(res, 403, 'forbidden', `권한이 없습니다. / Forbidden: ${error.message}`);
        }
        if (error instanceof ConflictError) {
          return sendError(res, 409, 'conflict', `${error.korean ?? '이미 존재합니다.'} / ${error.message}`, [
            { field: error.field, message: error.message },
          ]);
        }
        if (isStorageBusy(error)) {
          // The refused transaction never began, but a handler may have committed another before it
          // (a change, then its audit entry in a transaction of its own; a batch, then a summary): a
          // 503 would invite a retry that applies that one twice. So 503 only if the database has
          // committed nothing since the handler started. Another request committing meanwhile changes
          // the count too: the answer is then a 500 where a 503 was right — conservative, never wrong.
          if (commits() === committedBefore) {
            logger.warn({ err: error, path, requestId }, 'admin request refused: storage busy');
            const busy = storageBusy();
            return sendError(
              res,
              busy.status,
              busy.code ?? 'storage_busy',
              busy.message,
              undefined,
              busy.headers,
            );
          }
          // answered here, not thrown: the server's fallback would make it a 503
          logger.error(
            { err: error, path, requestId },
            'admin request failed storage-busy after a commit: part of it may have been applied',
          );
          const internal = internalError();
          return sendError(res, internal.status, internal.code ?? 'internal_error', internal.message);
        }
        logger.error({ err: error, path, requestId }, 'admin request failed');
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
    sendError(res, 404, 'not_found', notFoundMessage(path));
  };
}

function mayCall(principal: Principal, roles: AdminRoute['roles']): boolean {
  return principal.operator || roles === 'anyone' || roles.some((role) => hasRole(principal, role));
}

function entityIdOf(result: AdminResult): string | undefined {
  const id = (result.body as { id?: unknown } | undefined)?.id;
  return typeof id === 'string' ? id : undefined;
}
