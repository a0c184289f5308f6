import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from '../observability/logger.ts';
import { sendJson } from './respond.ts';

export type PathHandler = (req: IncomingMessage, res: ServerResponse, path: string) => Promise<void> | void;

export interface Surfaces {
  openai: PathHandler;
  admin: PathHandler;
  healthz: PathHandler;
  readyz: PathHandler;
  metrics: PathHandler;
}

/**
 * Plain node:http with a prefix dispatch: the hot path pays for no framework. A handler that throws
 * gets a 500 in the shape of its surface; the process never goes down for one request.
 */
export function createHttpServer(surfaces: Surfaces, logger: Logger): Server {
  const server = createServer(
    { keepAliveTimeout: 65_000, requestTimeout: 0, headersTimeout: 60_000 },
    (req, res) => {
      const url = req.url ?? '/';
      const q = url.indexOf('?');
      const path = q === -1 ? url : url.slice(0, q);
      let handler: PathHandler;
      if (path.startsWith('/v1/')) handler = surfaces.openai;
      else if (path.startsWith('/admin/v1/') || path === '/admin/v1') handler = surfaces.admin;
      else if (path === '/healthz') handler = surfaces.healthz;
      else if (path === '/readyz') handler = surfaces.readyz;
      else if (path === '/metrics') handler = surfaces.metrics;
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
    },
  );
  // A client that sends a malformed request line gets a 400 instead of a silent reset.
  server.on('clientError', (error, socket) => {
    if (socket.writable)
      socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    else socket.destroy(error);
  });
  return server;
}

function internalError(res: ServerResponse, path: string, error: unknown, logger: Logger): void {
  logger.error({ err: error, path }, 'unhandled error');
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = path.startsWith('/v1/')
    ? {
        error: {
          message: '내부 오류입니다. / Internal server error.',
          type: 'server_error',
          param: null,
          code: 'internal_error',
        },
      }
    : { error: { code: 'internal_error', message: '내부 오류입니다. / Internal server error.' } };
  sendJson(res, 500, body);
}
