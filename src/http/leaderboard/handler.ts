import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ArenaService } from '../../evaluation/ratings/arenas.ts';
import { buildLeaderboard } from '../../evaluation/rounds/leaderboard.ts';
import type { RoundService } from '../../evaluation/rounds/rounds.ts';
import { sendJson } from '../respond.ts';
import { renderLeaderboardPage } from './page.ts';

/** The public paths: no sign-in, published rounds and public arenas only (docs/evaluation-rounds.md). */
export const LEADERBOARD_PATHS = new Set(['/leaderboard', '/leaderboard.json']);

/** The page allows no script and loads nothing: what it shows was rendered here. */
const PAGE_SECURITY = {
  'content-security-policy':
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};
const CACHE = 'public, max-age=60';

export function createLeaderboardHandler(rounds: RoundService, arenas: ArenaService) {
  return async (req: IncomingMessage, res: ServerResponse, path: string): Promise<void> => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      sendJson(res, 405, {
        error: {
          code: 'method_not_allowed',
          message: `허용되지 않는 메서드입니다. / ${req.method} is not allowed on ${path}`,
        },
      });
      return;
    }
    const board = await buildLeaderboard(rounds, arenas);
    if (path === '/leaderboard.json') {
      const body = JSON.stringify(board);
      res.writeHead(200, {
        'content-type': 'application/json; charset=utf-8',
        'content-length': Buffer.byteLength(body),
        'cache-control': CACHE,
        // anyone may embed the public figures
        'access-control-allow-origin': '*',
        'x-content-type-options': 'nosniff',
      });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    const html = renderLeaderboardPage(board);
    res.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'content-length': Buffer.byteLength(html),
      'cache-control': CACHE,
      ...PAGE_SECURITY,
    });
    res.end(req.method === 'HEAD' ? undefined : html);
  };
}
