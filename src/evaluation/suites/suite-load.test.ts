import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ValidationError } from '../../errors.ts';
import type { GenerationItem, JudgeItem, MultipleChoiceItem } from './items.ts';
import { SuiteDataError } from './records.ts';
import { filesBeside, inlineDataOnly, loadSuite, loadSuiteFile } from './suite-load.ts';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/eval/', import.meta.url));
const beside = filesBeside(join(FIXTURES, 'suite.yaml'));

function load(file: string, format: string, extra: Record<string, unknown> = {}) {
  return loadSuite({ name: 'fixture', data: { file, format }, ...extra }, beside);
}

const mc = (file: string, format: string) => load(file, format).items as MultipleChoiceItem[];

/** The SuiteDataError `fn` throws, checked for its line and field. */
function refused(fn: () => unknown, line: number | null, field: string | null): SuiteDataError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof SuiteDataError, `expected a SuiteDataError, got ${error}`);
    assert.equal(error.line, line, error.message);
    assert.equal(error.field, field, error.message);
    // a ValidationError: the admin API answers it as a 400 naming where
    assert.ok(error instanceof ValidationError);
    return error;
  }
  assert.fail('not refused');
}

describe('loaders read the official layouts (self-written items)', () => {
  test('KMMLU CSV: question, answer (1–4), A–D, Category, Human Accuracy; quoted commas and line breaks', () => {
    const items = mc('kmmlu-sample.csv', 'kmmlu');
    assert.equal(items.length, 10);
    assert.deepEqual(items[0], {
      id: '1',
      category: 'Geography',
      context: null,
      question: '대한민국의 수도는 어디인가?',
      choices: ['서울', '부산', '인천', '대전'],
      answer: 0,
    });
    assert.equal(items[3]!.question, '다음 물음에 답하시오.\n독도가 속한 광역자치단체는?');
    assert.equal(items[3]!.answer, 3);
    assert.equal(items[8]!.question, '1,000에서 1을 빼면?');
    assert.deepEqual([...new Set(items.map((i) => i.category))], ['Geography', 'Arithmetic']);
  });

  test('KoBEST JSONL: BoolQ, COPA, HellaSwag, SentiNeg, WiC', () => {
    const boolq = mc('kobest-boolq.jsonl', 'kobest-boolq');
    assert.deepEqual(
      boolq.map((i) => i.answer),
      [1, 0, 1],
    );
    assert.deepEqual(boolq[0]!.choices, ['아니오', '예']);
    assert.match(boolq[0]!.context!, /훈민정음/);
    assert.equal(boolq[0]!.category, 'boolq');

    const copa = mc('kobest-copa.jsonl', 'kobest-copa');
    assert.equal(copa[0]!.question, '위 문장의 결과로 가장 알맞은 것은?');
    assert.equal(copa[1]!.question, '위 문장의 원인으로 가장 알맞은 것은?');
    assert.equal(copa[1]!.answer, 1);
    assert.deepEqual(copa[1]!.choices, ['아이가 선물을 받았다.', '아이가 넘어져 무릎을 다쳤다.']);

    const hellaswag = mc('kobest-hellaswag.jsonl', 'kobest-hellaswag');
    assert.equal(hellaswag[0]!.choices.length, 4);
    assert.equal(hellaswag[0]!.answer, 2);

    const sentineg = mc('kobest-sentineg.jsonl', 'kobest-sentineg');
    assert.deepEqual(
      sentineg.map((i) => i.answer),
      [0, 1, 1],
    );
    assert.deepEqual(sentineg[0]!.choices, ['부정', '긍정']);

    const wic = mc('kobest-wic.jsonl', 'kobest-wic');
    assert.match(wic[0]!.question, /"배"/);
    assert.deepEqual(
      wic.map((i) => i.answer),
      [0, 1],
    );
  });

  test('HAE-RAE Bench CSV: question, a–e, answer letter; the category from the suite', () => {
    const suite = load('haerae-loan-words.csv', 'haerae', {
      data: { file: 'haerae-loan-words.csv', format: 'haerae', category: 'Loan Words' },
    });
    const items = suite.items as MultipleChoiceItem[];
    assert.deepEqual(
      items.map((i) => i.answer),
      [0, 1, 2],
    );
    assert.equal(items[0]!.choices.length, 5);
    assert.equal(items[0]!.category, 'Loan Words');
  });

  test('CLIcK JSON: the answer is the text of a choice; the category from the id', () => {
    const items = mc('click-sample.json', 'click');
    assert.deepEqual(
      items.map((i) => [i.id, i.category, i.answer]),
      [
        ['History_1', 'History', 0],
        ['Tradition_1', 'Tradition', 1],
        ['History_2', 'History', 3],
      ],
    );
    assert.equal(items[0]!.context, null);
    assert.match(items[1]!.context!, /설날/);
  });

  test('HRM8K JSONL: numeric answers (7, "60", "6,000"), the subset as category', () => {
    const suite = load('hrm8k-sample.jsonl', 'hrm8k');
    const items = suite.items as GenerationItem[];
    assert.deepEqual(
      items.map((i) => i.answer),
      ['7', '60', '6000', '7'],
    );
    assert.deepEqual(
      items.map((i) => i.category),
      ['GSM8K', 'GSM8K', 'KSM', 'KSM'],
    );
    assert.equal(suite.extraction?.type, 'numeric');
  });

  test('K2-Eval CSV: one instruction, its own 1–5 rubric, the reference', () => {
    const suite = load('k2-eval-sample.csv', 'k2-eval', { judge: { model: 'judge-test' } });
    const items = suite.items as JudgeItem[];
    assert.equal(items.length, 2);
    assert.equal(items[0]!.category, '명절');
    assert.equal(items[0]!.rubric!.levels.length, 5);
    assert.match(items[0]!.references[0]!, /차례/);
    assert.equal(items[1]!.references[0], null);
    assert.deepEqual(suite.judge!.scale, { min: 1, max: 5 });
  });

  test('KoMT-Bench JSONL: two turns, references aligned with the turns', () => {
    const suite = load('komt-bench-sample.jsonl', 'komt-bench', { judge: { model: 'judge-test' } });
    const items = suite.items as JudgeItem[];
    assert.deepEqual(
      items.map((i) => [i.id, i.category, i.turns.length]),
      [
        ['1', 'writing', 2],
        ['2', 'math', 2],
      ],
    );
    assert.deepEqual(items[0]!.references, [null, null]);
    assert.deepEqual(items[1]!.references, ['16제곱센티미터', '4배']);
    assert.deepEqual(suite.judge!.scale, { min: 1, max: 10 });
  });

  test('LogicKor JSONL: questions and references', () => {
    const suite = load('logickor-sample.jsonl', 'logickor', { judge: { model: 'judge-test' } });
    assert.equal((suite.items[0] as JudgeItem).turns.length, 2);
  });
});

describe('a malformed file is refused with the line and field at fault', () => {
  const cases: [string, string, number | null, string | null][] = [
    ['malformed/kmmlu-bad-answer.csv', 'kmmlu', 4, 'answer'],
    ['malformed/kmmlu-missing-column.csv', 'kmmlu', 2, 'D'],
    // the record that starts on line 3 spans two lines and has 7 columns
    ['malformed/kmmlu-column-count.csv', 'kmmlu', 3, null],
    ['malformed/kmmlu-unclosed-quote.csv', 'kmmlu', 3, null],
    ['malformed/kobest-copa-bad-question.jsonl', 'kobest-copa', 2, 'question'],
    ['malformed/kobest-boolq-bad-json.jsonl', 'kobest-boolq', 3, null],
    ['malformed/kobest-wic-label.jsonl', 'kobest-wic', 1, 'label'],
    ['malformed/haerae-bad-answer.csv', 'haerae', 3, 'answer'],
    ['malformed/click-answer-not-choice.json', 'click', 3, 'answer'],
    ['malformed/hrm8k-not-number.jsonl', 'hrm8k', 2, 'answer'],
    ['malformed/k2-eval-missing-score.csv', 'k2-eval', 2, 'score3'],
    ['malformed/komt-bench-no-turns.jsonl', 'komt-bench', 1, 'turns'],
  ];
  for (const [file, format, line, field] of cases) {
    test(`${file} → line ${line}, field ${field ?? '(record)'}`, () => {
      const judge = format === 'k2-eval' || format === 'komt-bench' ? { judge: { model: 'j' } } : {};
      const error = refused(() => load(file, format, judge), line, field);
      assert.match(
        error.message,
        new RegExp(`${file.replace(/[.]/g, '\\.')}.*${line === null ? '' : `line ${line}`}`),
      );
      assert.match(error.message, /행/, 'Korean first');
    });
  }

  test('a file of another encoding than the format reads', () => {
    refused(() => load('kobest-boolq.jsonl', 'kmmlu'), null, null);
  });

  test('a suite that names a file over the admin API is refused: the hub reads no file a request names', () => {
    assert.throws(
      () => loadSuite({ name: 'x', data: { file: '/etc/passwd', format: 'kmmlu' } }, inlineDataOnly),
      (e: unknown) => e instanceof ValidationError && e.fields[0]!.field === 'data.file',
    );
  });

  test('spec problems name their field', () => {
    const content = readFileSync(join(FIXTURES, 'kmmlu-sample.csv'), 'utf8');
    const fields = (input: unknown) => {
      try {
        loadSuite(input, inlineDataOnly);
      } catch (e) {
        return (e as ValidationError).fields.map((f) => f.field);
      }
      return [];
    };
    assert.deepEqual(fields({ name: 'x', data: { content, format: 'kmmlu' }, kind: 'judge' }), ['kind']);
    assert.deepEqual(fields({ name: 'x', data: { content, format: 'nope' } }), ['data.format']);
    assert.deepEqual(
      fields({ name: 'x', data: { content, format: 'kmmlu' }, prompt: { template: '{qustion}' } }),
      ['prompt.template'],
    );
    assert.deepEqual(fields({ name: 'x', data: { content: '{}', format: 'komt-bench' } }), ['judge']);
    assert.deepEqual(fields({ name: 'x', data: { content, format: 'kmmlu' }, temperature: 0 }), [
      'temperature',
    ]);
  });
});

describe('suite hash, few-shot and prompts', () => {
  const content = readFileSync(join(FIXTURES, 'kmmlu-sample.csv'), 'utf8');
  const inline = (extra: Record<string, unknown> = {}) =>
    loadSuite(
      { name: 'kmmlu-sample', data: { content, format: 'kmmlu' }, seed: 7, ...extra },
      inlineDataOnly,
    );

  test('the hash is SHA-256 of the canonical spec and data: where the file lies is not part of it', () => {
    const fromFile = loadSuiteFile(join(FIXTURES, 'kmmlu.suite.yaml'));
    const fromContent = inline({ parameters: { temperature: 0, max_tokens: 16 } });
    assert.match(fromFile.hash, /^[0-9a-f]{64}$/);
    assert.equal(fromFile.hash, fromContent.hash);
    assert.notEqual(inline().hash, inline({ seed: 8 }).hash);
    const changed = content.replace('서울,부산', '서울,목포');
    const other = loadSuite(
      { name: 'kmmlu-sample', data: { content: changed, format: 'kmmlu' }, seed: 7 },
      inlineDataOnly,
    );
    assert.notEqual(other.hash, inline().hash);
  });

  test('few-shot: the same examples for the same seed, never the item itself', () => {
    const a = inline({ fewShot: { k: 3 } });
    const b = inline({ fewShot: { k: 3 } });
    assert.deepEqual(a.prepared, b.prepared);
    const c = inline({ fewShot: { k: 3 }, seed: 99 });
    assert.notDeepEqual(a.prepared, c.prepared);
    for (const p of a.prepared) {
      assert.equal(p.request.type, 'chat');
      if (p.request.type !== 'chat') continue;
      // 3 examples (user + assistant each) and the question
      assert.equal(p.request.messages.length, 7);
      const question = p.request.messages.at(-1)!.content;
      for (const m of p.request.messages.slice(0, -1)) assert.notEqual(m.content, question);
      assert.match(p.request.messages[1]!.content, /^정답: [A-D]$/);
    }
  });

  test('single style: one user message with the examples; the system prompt first', () => {
    const s = inline({ fewShot: { k: 2 }, prompt: { style: 'single', system: '한국어로 답하세요.' } });
    const p = s.prepared[0]!;
    assert.equal(p.request.type, 'chat');
    if (p.request.type !== 'chat') return;
    assert.deepEqual(
      p.request.messages.map((m) => m.role),
      ['system', 'user'],
    );
    assert.equal(p.request.messages[1]!.content.split('정답: ').length - 1 >= 2, true);
    assert.match(p.request.messages[1]!.content, /A\. 서울\nB\. 부산\nC\. 인천\nD\. 대전/);
    assert.equal(p.expected, 'A');
  });
});
