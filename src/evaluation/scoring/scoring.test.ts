import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { aggregate, type ScoredItem } from './aggregate.ts';
import {
  type ExtractionSettings,
  extractChoice,
  extractNumber,
  normalize,
  scoreGeneration,
} from './extract.ts';
import { judgeMessages, parseVerdict } from './judge.ts';
import { numbersIn, parseNumber, sameNumber } from './numbers.ts';
import { bootstrapInterval, mean, standardError, Z95 } from './statistics.ts';

const FOUR = ['서울', '부산', '인천', '대전'];

describe('multiple-choice extraction', () => {
  const cases: [string, string | null][] = [
    ['B', 'B'],
    ['(c)', 'C'],
    ['**D**', 'D'],
    ['B.', 'B'],
    ['정답: B', 'B'],
    ['정답은 (C)입니다.', 'C'],
    ['답: A', 'A'],
    ['풀이를 해 보면… 따라서 정답은 D', 'D'],
    ['Answer: C', 'C'],
    ['The answer is B.', 'B'],
    ['A. 서울이 수도입니다.', 'A'],
    ['수도는 부산입니다', 'B'],
    // last marker wins when a model corrects itself
    ['정답: A … 아니, 정답: C', 'C'],
    // no guess from a letter in passing, an English word, or two choices mentioned
    ['잘 모르겠습니다.', null],
    ['답을 고를 수 없습니다.', null],
    ['the answer depends on the year', null],
    ['서울과 부산 모두 큰 도시입니다', null],
    ['E', null],
  ];
  for (const [answer, expected] of cases) {
    test(`${JSON.stringify(answer)} → ${expected ?? 'unparsed'}`, () => {
      assert.equal(extractChoice(answer, FOUR).extracted, expected);
    });
  }
});

describe('numbers and generation scoring (HRM8K / GSM8K)', () => {
  test('parseNumber: one number, with thousands separators, units, currency, fractions, LaTeX', () => {
    assert.equal(parseNumber('1,234'), 1234);
    assert.equal(parseNumber('−3.5'), -3.5);
    assert.equal(parseNumber('6,000원'), 6000);
    assert.equal(parseNumber('$12'), 12);
    assert.equal(parseNumber('3/4'), 0.75);
    assert.equal(parseNumber('\\frac{1}{2}'), 0.5);
    assert.equal(parseNumber('18달러'), 18);
    assert.equal(parseNumber('일곱'), null);
    assert.equal(parseNumber('3 또는 4'), null);
    assert.equal(parseNumber('The answer is 5'), null);
  });

  test('extractNumber: after ####, 정답 or answer markers, in \\boxed{}, else the last number', () => {
    assert.equal(extractNumber('3 + 4 = 7\n#### 7').extracted, '7');
    assert.equal(extractNumber('공책 4권이면 1,500 × 4 = 6,000원\n정답: 6,000원').extracted, '6000');
    assert.equal(extractNumber('따라서 \\boxed{\\frac{3}{4}}').extracted, '0.75');
    assert.equal(extractNumber('먼저 12를 구하고 5를 곱하면 60').extracted, '60');
    assert.equal(extractNumber('모르겠습니다').extracted, null);
    assert.equal(extractNumber('먼저 12를 구하면', false).extracted, null);
  });

  test('numbers compare within a relative tolerance', () => {
    assert.ok(sameNumber(0.1 + 0.2, 0.3));
    assert.ok(!sameNumber(7, 7.01));
    assert.deepEqual(numbersIn('1,000에서 1을 빼면 999'), [1000, 1, 999]);
  });

  const numeric = {
    type: 'numeric',
    pattern: null,
    flags: '',
    group: 1,
    normalizers: [],
    tolerance: 1e-6,
  } as const;
  test('scoreGeneration: numeric right, wrong and unparsed', () => {
    assert.deepEqual(scoreGeneration('정답: 7', '7', numeric), { extracted: '7', correct: true });
    assert.deepEqual(scoreGeneration('정답: 8', '7', numeric), { extracted: '8', correct: false });
    assert.deepEqual(scoreGeneration('모르겠어요', '7', numeric), { extracted: null, correct: false });
  });

  test('scoreGeneration: a regex and normalisers', () => {
    const regex: ExtractionSettings = {
      type: 'regex',
      pattern: '답:\\s*(.+)',
      flags: '',
      group: 1,
      normalizers: ['trim', 'lowercase', 'strip_punctuation'],
      tolerance: 0,
    };
    assert.deepEqual(scoreGeneration('생각해 보면\n답: Seoul.', 'seoul', regex), {
      extracted: 'seoul',
      correct: true,
    });
    assert.deepEqual(scoreGeneration('모르겠어요', 'seoul', regex), { extracted: null, correct: false });
    assert.equal(normalize('  a,  b ', ['strip_commas', 'collapse_spaces', 'trim']), 'a b');
  });
});

describe('judge', () => {
  test('the verdict: the last [[n]], else 점수/Rating/Score: n; off the scale is unparsed', () => {
    const scale = { min: 1, max: 10 };
    assert.equal(parseVerdict('좋다. [[8]]', scale), 8);
    assert.equal(parseVerdict('[[3]] 아니 [[7]]', scale), 7);
    assert.equal(parseVerdict('점수: 6', scale), 6);
    assert.equal(parseVerdict('Rating: 9.5', scale), 9.5);
    assert.equal(parseVerdict('[[11]]', scale), null);
    assert.equal(parseVerdict('평가하기 어렵습니다', scale), null);
  });

  test('the judge prompt carries the earlier turns, the reference and an item rubric with its levels', () => {
    const messages = judgeMessages(
      {
        model: 'j',
        system: 'S',
        template: '{conversation}{question}|{reference}{rubric}{answer}|{min}-{max}',
        rubric: null,
        scale: { min: 1, max: 5 },
      },
      {
        before: [{ question: 'Q1', answer: 'A1' }],
        question: 'Q2',
        answer: 'A2',
        reference: 'R2',
        itemRubric: { criteria: '정확성', levels: ['나쁨', '부족', '보통', '좋음', '매우 좋음'] },
      },
    );
    assert.equal(messages[0]!.content, 'S');
    const text = messages[1]!.content;
    assert.match(text, /사용자 1: Q1\n어시스턴트 1: A1/);
    assert.match(text, /\[참고 답안\]\nR2/);
    assert.match(text, /정확성\n1점: 나쁨\n2점: 부족/);
    assert.match(text, /A2\|1-5$/);
  });
});

describe('statistics', () => {
  test('standard error = s/√n (sample s); accuracy: √(p(1 − p)/(n − 1))', () => {
    const values = [1, 1, 1, 0, 0];
    assert.equal(mean(values), 0.6);
    assert.ok(Math.abs(standardError(values)! - Math.sqrt((0.6 * 0.4) / 4)) < 1e-15);
    assert.equal(standardError([1]), null);
    assert.equal(mean([]), null);
  });

  test('bootstrap: the same values and seed give the same interval; it contains the mean', () => {
    const values = [3, 7, 8, 5, 9, 6, 4, 7];
    const a = bootstrapInterval(values, 42)!;
    assert.deepEqual(bootstrapInterval(values, 42), a);
    assert.notDeepEqual(bootstrapInterval(values, 43), a);
    assert.ok(a[0] <= mean(values)! && mean(values)! <= a[1]);
    assert.equal(bootstrapInterval([5], 1), null);
  });

  test('aggregate: unparsed counted apart from wrong; failed items unscored; per category', () => {
    const items: ScoredItem[] = [
      { category: 'a', status: 'done', correct: true, unparsed: false, score: 1 },
      { category: 'a', status: 'done', correct: false, unparsed: false, score: 0 },
      { category: 'a', status: 'done', correct: false, unparsed: true, score: 0 },
      { category: 'b', status: 'done', correct: true, unparsed: false, score: 1 },
      { category: 'b', status: 'failed', correct: null, unparsed: false, score: null },
    ];
    const r = aggregate(items, 'multiple_choice', null, 1);
    assert.deepEqual(
      [r.overall.n, r.overall.correct, r.overall.wrong, r.overall.unparsed, r.overall.failed],
      [4, 2, 1, 1, 1],
    );
    assert.equal(r.overall.score, 0.5);
    assert.ok(Math.abs(r.overall.stderr! - Math.sqrt(0.25 / 3)) < 1e-15);
    // 0.5 ± 1.96·0.289 leaves [0, 1] on both sides: the interval is kept within the metric's range
    assert.ok(0.5 + Z95 * Math.sqrt(0.25 / 3) > 1);
    assert.deepEqual(r.overall.interval, [0, 1]);
    assert.equal(r.overall.parsedAccuracy, 2 / 3);
    assert.deepEqual(Object.keys(r.categories), ['a', 'b']);
    assert.equal(r.categories.b!.n, 1);
    assert.equal(r.categories.b!.stderr, null);
    assert.equal(r.categories.b!.interval, null);
  });

  test('aggregate (judge): the mean of the parsed scores, unparsed apart, a bootstrap interval', () => {
    const items: ScoredItem[] = [
      { category: 'w', status: 'done', correct: null, unparsed: false, score: 7 },
      { category: 'w', status: 'done', correct: null, unparsed: false, score: 9 },
      { category: 'w', status: 'done', correct: null, unparsed: true, score: null },
    ];
    const r = aggregate(items, 'judge', { min: 1, max: 10 }, 5);
    assert.deepEqual([r.overall.n, r.overall.unparsed, r.overall.score, r.overall.correct], [3, 1, 8, null]);
    assert.equal(r.overall.stderr, 1);
    assert.equal(r.overall.intervalMethod, 'bootstrap');
    assert.deepEqual(r.range, { min: 1, max: 10 });
  });
});
