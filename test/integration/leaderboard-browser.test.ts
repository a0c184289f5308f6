import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { publishTwoRounds, referenceRuns } from '../helpers/evaluation-round.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';

/**
 * The public leaderboard page rendered by real headless Chromium (Debian's, at /usr/bin/chromium,
 * driven by playwright-core): it loads nothing but itself, runs no script, shows every table and
 * chart, and fits a phone's width. Skipped, saying why, where Chromium is not installed
 * (`apt-get install -y chromium fonts-nanum`; .ci/run installs them).
 */

/** Debian's Chromium; KAIHUB_CHROMIUM names another build. */
const CHROMIUM = process.env.KAIHUB_CHROMIUM ?? '/usr/bin/chromium';
const skip = existsSync(CHROMIUM)
  ? false
  : `Chromium is not installed at ${CHROMIUM} (apt-get install -y chromium fonts-nanum)`;

describe('public leaderboard in Chromium', { skip }, () => {
  let t: TestHub;
  let browser: import('playwright-core').Browser;

  before(async () => {
    t = await startTestHub({}, { hub: { runResults: referenceRuns } });
    const { round2, must } = await publishTwoRounds(t, [
      '엘지 팀',
      '에스케이 팀',
      '업스테이지 팀',
      '와일드카드 팀',
    ]);
    await must('POST', `/rounds/${round2}/publish`);
    const arena = await must('POST', '/arenas', {
      name: '한국어 아레나',
      judgeModel: 'judge-x',
      public: true,
    });
    await must('POST', `/arenas/${arena.id}/battles`, {
      battles: [
        ...Array.from({ length: 12 }, () => ({ a: 'hcx', b: 'exaone', outcome: 'a' })),
        ...Array.from({ length: 8 }, () => ({ a: 'exaone', b: 'hcx', outcome: 'a' })),
        ...Array.from({ length: 9 }, () => ({ a: 'exaone', b: 'solar', outcome: 'a' })),
      ],
    });
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
  });
  after(async () => {
    await browser?.close();
    await t?.close();
  });

  test('the page renders its rounds, charts and arenas, loading nothing else and running no script', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, locale: 'ko-KR' });
    const errors: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('request', (r) => requests.push(r.url()));
    const response = await page.goto(`${t.url}/leaderboard`, { waitUntil: 'load' });
    assert.equal(response?.status(), 200);
    assert.deepEqual(errors, []);
    assert.deepEqual(requests, [`${t.url}/leaderboard`], 'nothing loaded but the page');

    assert.equal(await page.evaluate(() => (globalThis as any).document.documentElement.lang), 'ko');
    assert.equal(await page.title(), '평가 리더보드 · K-AI Hub / Evaluation leaderboard');
    const headings = await page.locator('h2').allTextContents();
    assert.match(headings[0]!, /^2차 · 2차 평가/);
    assert.match(headings[1]!, /^1차 · 1차 평가/);
    assert.match(headings[2]!, /차수별 추이/);
    assert.equal(await page.locator('section.round').count(), 2);
    assert.equal(await page.locator('section.round').first().locator('tbody tr').count(), 3);
    assert.match(
      await page.locator('section.round').first().locator('tr.disqualified').innerText(),
      /와일드카드 팀[\s\S]*실격/,
    );

    // every chart drawn with a size, its lines and points in place
    const charts = await page.locator('svg').evaluateAll((svgs) =>
      svgs.map((s) => {
        const box = s.getBoundingClientRect();
        return {
          label: s.getAttribute('aria-labelledby'),
          width: box.width,
          height: box.height,
          marks: s.querySelectorAll('circle, rect, path').length,
        };
      }),
    );
    assert.equal(charts.length, 5);
    for (const c of charts) {
      assert.ok(c.width > 300 && c.height > 60, JSON.stringify(c));
      assert.ok(c.marks >= 3, JSON.stringify(c));
    }
    // the trend of the first team: a line through both rounds
    const trend = page.locator('svg[aria-labelledby="trend-score-t trend-score-d"] path[fill="none"]');
    assert.ok((await trend.count()) >= 1);
    assert.match((await trend.first().getAttribute('d')) ?? '', /^M[\d.]+ [\d.]+L[\d.]+ [\d.]+$/);

    const arena = page.locator('section.arena');
    assert.match(await arena.locator('h3').innerText(), /한국어 아레나/);
    assert.deepEqual((await arena.locator('tbody th').allTextContents()).slice(0, 1), ['hcx']);
    await page.screenshot({
      path: `${process.env.KAIHUB_SCREENSHOT_DIR ?? '/tmp'}/leaderboard-1280.png`,
      fullPage: true,
    });
    await page.close();
  });

  test('on a phone’s width the page does not overflow: wide tables scroll inside themselves', async () => {
    const page = await browser.newPage({ viewport: { width: 375, height: 800 }, locale: 'ko-KR' });
    await page.goto(`${t.url}/leaderboard`, { waitUntil: 'load' });
    const width = await page.evaluate(() => (globalThis as any).document.documentElement.scrollWidth);
    assert.ok(width <= 375, `page is ${width}px wide`);
    const table = await page
      .locator('.scroll')
      .first()
      .evaluate((e) => ({ scroll: e.scrollWidth, client: e.clientWidth }));
    assert.ok(table.scroll >= table.client);
    // Hangul is drawn in a font that has it (not as empty boxes): a syllable is about as wide as it is tall
    const glyph = await page.evaluate(() => {
      const span = (globalThis as any).document.createElement('span');
      span.style.fontSize = '40px';
      span.textContent = '평';
      (globalThis as any).document.body.append(span);
      const box = span.getBoundingClientRect();
      return box.width / box.height;
    });
    assert.ok(glyph > 0.6 && glyph < 1.4, `Hangul glyph ratio ${glyph}`);
    await page.close();
  });
});
