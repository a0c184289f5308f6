import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { publishTwoRounds, referenceRuns } from '../helpers/evaluation-round.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';

/**
 * The public leaderboard over plain HTTP, no sign-in: `/leaderboard.json` and the server-rendered
 * `/leaderboard` page show published rounds only, as decided, with each team's path across rounds,
 * and public arenas only. (test/integration/leaderboard-browser.test.ts renders it in Chromium.)
 */

describe('public leaderboard', () => {
  let t: TestHub;

  before(async () => {
    t = await startTestHub({}, { hub: { runResults: referenceRuns } });
  });
  after(async () => {
    await t?.close();
  });

  const get = async (path: string, init: RequestInit = {}) => {
    const res = await fetch(`${t.url}${path}`, init);
    return { res, text: await res.text() };
  };

  test('empty: a page that says so, and an empty JSON', async () => {
    const page = await get('/leaderboard');
    assert.equal(page.res.status, 200);
    assert.match(page.res.headers.get('content-type') ?? '', /text\/html; charset=utf-8/);
    assert.match(
      page.text,
      /아직 공개된 평가 차수가 없습니다\. \/ No evaluation round has been published yet\./,
    );
    const json = await get('/leaderboard.json');
    assert.deepEqual(JSON.parse(json.text).rounds, []);
  });

  test('published rounds only, decided, across rounds; unpublished ones and private arenas nowhere', async () => {
    const { teams, round1, round2, must } = await publishTwoRounds(t);
    const arena = await must('POST', '/arenas', { name: '공개 아레나', judgeModel: 'judge-x', public: true });
    await must('POST', `/arenas/${arena.id}/battles`, {
      battles: [
        { a: 'model-p', b: 'model-q', outcome: 'a' },
        { a: 'model-p', b: 'model-q', outcome: 'a' },
        { a: 'model-q', b: 'model-p', outcome: 'tie' },
      ],
    });
    const hidden = await must('POST', '/arenas', { name: '비공개 아레나', judgeModel: 'judge-x' });
    await must('POST', `/arenas/${hidden.id}/battles`, {
      battles: [{ a: 'secret-1', b: 'secret-2', outcome: 'a' }],
    });

    // round 2 is closed but not published: not on the leaderboard
    let board = JSON.parse((await get('/leaderboard.json')).text);
    assert.deepEqual(
      board.rounds.map((r: any) => r.id),
      [round1],
    );
    let page = (await get('/leaderboard')).text;
    assert.ok(!page.includes(round2));
    assert.ok(!page.includes('와일드카드 팀'), 'a team only in the unpublished round is not named');

    await must('POST', `/rounds/${round2}/publish`);
    const json = await get('/leaderboard.json');
    assert.equal(json.res.headers.get('access-control-allow-origin'), '*');
    board = JSON.parse(json.text);
    assert.deepEqual(
      board.rounds.map((r: any) => r.id),
      [round1, round2],
    );
    const [first, second] = board.rounds;
    assert.deepEqual(
      first.teams.map((x: any) => x.status),
      ['survives', 'survives', 'eliminated'],
    );
    const wildcard = second.teams.find((x: any) => x.organizationId === teams[3]!.organizationId);
    assert.equal(wildcard.entry, 'wildcard');
    assert.equal(wildcard.status, 'disqualified');
    assert.equal(wildcard.failedGates[0].name, '독자성');
    assert.equal(first.teams[0].targetModel, 'global-b');
    assert.ok(Math.abs(first.teams[0].percentOfReference.value - 97) < 1e-9);
    const path = board.series.find((s: any) => s.organizationId === teams[0]!.organizationId);
    assert.deepEqual(
      path.points.map((p: any) => p.roundId),
      [round1, round2],
    );
    assert.ok(Math.abs(path.points[1].percentOfReference - 101) < 1e-9);
    assert.deepEqual(
      board.arenas.map((a: any) => a.name),
      ['공개 아레나'],
    );
    assert.equal(board.arenas[0].ratings[0].model, 'model-p');
    assert.ok(!json.text.includes('secret-1'));
    // what is never public: panel members and their own scores
    assert.ok(!json.text.includes('전문가 1'));
    assert.ok(!json.text.includes('memberId'));

    const res = await get('/leaderboard');
    page = res.text;
    assert.equal(res.res.status, 200);
    assert.match(res.res.headers.get('content-security-policy') ?? '', /default-src 'none'/);
    assert.match(page, /^<!doctype html>\n<html lang="ko">/);
    assert.ok(page.indexOf('평가 리더보드') < page.indexOf('Evaluation leaderboard'), 'Korean first');
    assert.ok(page.indexOf('2차') < page.indexOf('1차 · '), 'newest round first');
    assert.ok(page.includes('와일드카드 / wildcard'));
    assert.ok(page.includes('실격 <small>Disqualified</small>'));
    assert.ok(page.includes('해외 모델의 가중치를 그대로 사용'));
    assert.ok(!page.includes('<script>'), 'team names are escaped');
    assert.ok(page.includes('&lt;script&gt;alert(1)&lt;/script&gt; 팀'));
    // charts: one per round, the two trends, one per public arena
    assert.equal(page.match(/<svg /g)?.length, 2 + 2 + 1);
    assert.match(page, /<svg[^>]*aria-labelledby="trend-reference-t trend-reference-d"/);
    assert.match(page, /95% 기준 \/ threshold/);
    assert.ok(!page.includes('secret-1'));
    // every tag the page opens it closes (a cheap well-formedness check; Chromium renders it elsewhere)
    for (const tag of ['svg', 'section', 'table', 'figure', 'tr', 'title', 'desc'])
      assert.equal(
        page.match(new RegExp(`<${tag}[ >]`, 'g'))?.length,
        page.match(new RegExp(`</${tag}>`, 'g'))?.length,
        tag,
      );
  });

  test('read only: other methods are refused; HEAD answers without a body', async () => {
    const post = await get('/leaderboard', { method: 'POST', body: '{}' });
    assert.equal(post.res.status, 405);
    assert.equal(post.res.headers.get('allow'), 'GET, HEAD');
    const head = await fetch(`${t.url}/leaderboard.json`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.ok(Number(head.headers.get('content-length')) > 0);
    assert.equal((await get('/leaderboard/other')).res.status, 404);
  });
});
