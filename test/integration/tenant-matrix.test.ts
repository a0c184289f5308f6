import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type FakeOpenAI, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';
import { forbiddenIds, MATRIX, type MatrixRole, type Outcome } from '../roles/tenant-matrix.rows.ts';
import { buildWorld, type Caller, WHO, type World } from '../roles/world.ts';

/**
 * Every /admin/v1 route × every role × own and foreign tenant (test/roles/tenant-matrix.rows.ts),
 * over HTTP, on the engine KAIHUB_TEST_DATABASE names. A foreign thing must be refused exactly as a
 * nonexistent id is; no allowed answer may carry another tenant's ids; every change is audited with
 * its actor and request id, and no refused one is.
 */

interface Answer {
  status: number;
  text: string;
  body: any;
  requestId: string | null;
}

async function send(w: World, caller: Caller, method: string, path: string, body?: unknown): Promise<Answer> {
  const res = await fetch(`${w.t.url}/admin/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${caller.token}`, 'content-type': 'application/json' },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return {
    status: res.status,
    text,
    body: text ? JSON.parse(text) : undefined,
    requestId: res.headers.get('x-request-id'),
  };
}

const ID = /\b(sup|prd|dep|org|key|usr|pat|mem|req|apl|rnd|arn|pnm|gpl|gcl|gap|gal|gex)_[A-Za-z0-9_-]+/g;
/** The same path with every id replaced by one that names nothing. */
const withMissingIds = (path: string) =>
  path.replace(ID, (_m, prefix: string) => `${prefix}_00000000000nothinghere`);
const withoutIds = (text: string) => text.replace(ID, '<id>');

function outcomeOf(status: number): Outcome {
  return status >= 200 && status < 300 ? 'ok' : (status as Outcome);
}

describe('tenant matrix: every role × every /admin/v1 route × own and foreign tenant', () => {
  let fake: FakeOpenAI;
  let t: TestHub;
  let w: World;

  before(async () => {
    fake = await startFakeOpenAI({ apiKey: 'upstream-secret' });
    t = await startTestHub();
    w = await buildWorld(t, fake);
  });
  after(async () => {
    await t?.close();
    await fake?.close();
  });

  test('every route of the hub has a row, and every row names a route', () => {
    const routes = t.hub.adminRoutes.map((r) => `${r.method} ${r.path}`).sort();
    const rows = MATRIX.map((r) => `${r.method} ${r.route}`).sort();
    assert.deepEqual(rows, [...new Set(rows)], 'one row per route');
    assert.deepEqual(rows, routes);
  });

  for (const row of MATRIX) {
    test(`${row.method} ${row.route}`, async () => {
      for (const who of WHO) {
        const caller = w.callers[who];
        for (const side of ['own', 'foreign'] as const) {
          const expected: Outcome = caller.isOperator
            ? 'ok'
            : row.expect[who as MatrixRole].split('/')[side === 'own' ? 0 : 1] === 'ok'
              ? 'ok'
              : (Number(row.expect[who as MatrixRole].split('/')[side === 'own' ? 0 : 1]) as Outcome);
          const s = side === 'own' ? w.A : w.B;
          const request = await row.request(w, s, side, caller);
          const label = `${who} ${side}: ${row.method} ${request.path}`;
          const answer = await send(w, caller, row.method, request.path, request.body);
          assert.equal(outcomeOf(answer.status), expected, `${label} → ${answer.status} ${answer.text}`);
          assert.match(answer.requestId ?? '', /^req_[0-9a-f]{32}$/, `${label}: x-request-id`);

          if (expected === 'ok') {
            row.check?.(answer.body, w, side, caller);
            if (!caller.isOperator) {
              const visible = row.visible?.(w, caller) ?? [];
              for (const id of forbiddenIds(w, caller).filter((x) => !visible.includes(x)))
                assert.ok(!answer.text.includes(id), `${label} leaks ${id}: ${answer.text}`);
            }
          } else {
            assert.equal(answer.body.error.code, expected === 404 ? 'not_found' : 'forbidden', label);
          }
          if (expected === 404) {
            // Indistinguishable from an id that names nothing: existence does not leak.
            const missing = await send(w, caller, row.method, withMissingIds(request.path), request.body);
            assert.equal(missing.status, 404, `${label}: a nonexistent id`);
            assert.equal(
              withoutIds(missing.body.error.message),
              withoutIds(answer.body.error.message),
              label,
            );
          }

          if (row.method !== 'GET') {
            const audit = await t.admin('GET', `/audit?requestId=${answer.requestId}`);
            const entries = audit.body.data as any[];
            if (expected === 'ok') {
              assert.ok(entries.length >= 1, `${label}: audited`);
              for (const e of entries) {
                assert.equal(e.actorId, caller.actorId, label);
                assert.equal(e.actorTokenId, caller.tokenId, label);
                assert.equal(e.source, 'admin-api');
              }
            } else {
              assert.deepEqual(entries, [], `${label}: a refused change leaves no audit entry`);
            }
          }
          await request.cleanup?.();
        }
      }
    });
  }
});
