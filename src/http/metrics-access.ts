import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Authenticate } from '../accounts/principals.ts';
import { sendJson } from './respond.ts';

const sha256 = (text: string) => createHash('sha256').update(text).digest();

/**
 * /metrics names products, deployment ids and revenue: it answers the operator (token, or a user
 * with the operator role) and KAIHUB_METRICS_TOKEN, the token a Prometheus scraper is given
 * (`authorization: {credentials: …}`), so a scraper never holds the operator's powers.
 * Resolves true when the request may scrape; otherwise it has answered 401 or 403.
 */
export function createMetricsAccess(metricsToken: string | undefined, authenticate: Authenticate) {
  const expected = metricsToken ? sha256(metricsToken) : undefined;
  return async function mayScrape(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const header = req.headers.authorization ?? '';
    const presented = header.toLowerCase().startsWith('bearer ') ? header.slice(7).trim() : '';
    if (presented && expected && timingSafeEqual(sha256(presented), expected)) return true;
    const principal = presented ? await authenticate(presented) : undefined;
    if (principal?.operator) return true;
    if (principal) {
      sendJson(res, 403, {
        error: { code: 'forbidden', message: '권한이 없습니다. / Forbidden: /metrics is for the operator' },
      });
    } else {
      sendJson(
        res,
        401,
        {
          error: {
            code: 'unauthorized',
            message:
              '메트릭 토큰(KAIHUB_METRICS_TOKEN) 또는 운영자 토큰이 필요합니다. / ' +
              'The metrics token (KAIHUB_METRICS_TOKEN) or the operator token is required (Authorization: Bearer …).',
          },
        },
        { 'www-authenticate': 'Bearer' },
      );
    }
    return false;
  };
}
