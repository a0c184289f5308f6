/**
 * Multiple-choice benchmarks in their official layouts: KMMLU's CSV, KoBEST's five JSONL tasks,
 * HAE-RAE Bench 1.0's CSV and CLIcK's JSON, plus the hub's own JSONL for an operator's held-out suite.
 * Each `item` reads one record and fails naming its line and field.
 */
import { CHOICE_LABELS, type MultipleChoiceItem } from '../items.ts';
import type { FieldReader } from '../records.ts';
import type { FormatContext, MultipleChoiceFormat } from './format.ts';

const NO_YES = ['아니오', '예'];

function categoryOf(r: FieldReader, ctx: FormatContext, field: string | null, fallback: string): string {
  if (field !== null && r.has(field)) return r.text(field).trim();
  return ctx.category ?? fallback;
}

/** `A`, `(b)`, `C.` → the index of that label, if it names one of `count` choices. */
function labelIndex(text: string, count: number): number | null {
  const m = /^\s*\(?\s*([A-Ja-j])\s*[).]?\s*$/.exec(text);
  if (!m) return null;
  const index = m[1]!.toUpperCase().charCodeAt(0) - 65;
  return index < count ? index : null;
}

/** KMMLU (HAERAE-HUB/KMMLU): `question, answer (1–4), A, B, C, D, Category, Human Accuracy`. */
export const kmmlu: MultipleChoiceFormat = {
  name: 'kmmlu',
  kind: 'multiple_choice',
  encodings: ['csv'],
  item(r, index, ctx) {
    return {
      id: String(index + 1),
      category: categoryOf(r, ctx, 'Category', 'kmmlu'),
      context: null,
      question: r.text('question'),
      choices: [r.text('A'), r.text('B'), r.text('C'), r.text('D')],
      answer: r.integer('answer', 1, 4) - 1,
    };
  },
};

/** HAE-RAE Bench 1.0: `question, a, b, c, d[, e], answer (A–E)[, category]`, one file per category. */
export const haerae: MultipleChoiceFormat = {
  name: 'haerae',
  kind: 'multiple_choice',
  encodings: ['csv'],
  item(r, index, ctx) {
    const choices = [r.text('a'), r.text('b'), r.text('c'), r.text('d')];
    if (r.has('e')) choices.push(r.text('e'));
    const answer = labelIndex(r.text('answer'), choices.length);
    if (answer === null)
      return r.fail(
        'answer',
        `${CHOICE_LABELS.slice(0, choices.length).join(', ')} 중 하나여야 합니다`,
        `must be one of ${CHOICE_LABELS.slice(0, choices.length).join(', ')}`,
      );
    return {
      id: r.optionalText('id') ?? String(index + 1),
      category: categoryOf(r, ctx, 'category', 'haerae'),
      context: null,
      question: r.text('question'),
      choices,
      answer,
    };
  },
};

/**
 * CLIcK (EunsuKim/CLIcK): `id, paragraph, question, choices (2–5), answer` where the answer is the
 * text of the right choice. The category is the record's `category` when it has one, else its id
 * without the trailing number (`History_12` → `History`).
 */
export const click: MultipleChoiceFormat = {
  name: 'click',
  kind: 'multiple_choice',
  encodings: ['json', 'jsonl'],
  item(r, index, ctx) {
    const choices = r.texts('choices', 2);
    if (choices.length > 5) r.fail('choices', '선택지는 5개 이하여야 합니다', 'at most 5 choices');
    const answerText = r.text('answer').trim();
    const answer = choices.findIndex((c) => c.trim() === answerText);
    if (answer === -1)
      r.fail('answer', '선택지 중 하나와 같아야 합니다', 'must be the text of one of the choices');
    const id = r.optionalText('id') ?? String(index + 1);
    return {
      id,
      category: r.has('category')
        ? r.text('category').trim()
        : (ctx.category ?? (id.replace(/[_-]?\d+$/, '') || 'click')),
      context: r.optionalText('paragraph')?.trim() || null,
      question: r.text('question'),
      choices,
      answer,
    };
  },
};

type KobestTask = 'boolq' | 'copa' | 'hellaswag' | 'sentineg' | 'wic';

function kobest(
  task: KobestTask,
  read: (r: FieldReader) => Omit<MultipleChoiceItem, 'id' | 'category'>,
): MultipleChoiceFormat {
  return {
    name: `kobest-${task}`,
    kind: 'multiple_choice',
    encodings: ['jsonl'],
    item(r, index, ctx) {
      return { id: r.optionalText('idx') ?? String(index + 1), category: ctx.category ?? task, ...read(r) };
    },
  };
}

/** KoBEST (skt/kobest_v1), one JSONL file per task and split. */
export const kobestFormats: MultipleChoiceFormat[] = [
  // {paragraph, question, label: 0 False | 1 True}
  kobest('boolq', (r) => ({
    context: r.text('paragraph'),
    question: r.text('question'),
    choices: NO_YES,
    answer: r.integer('label', 0, 1),
  })),
  // {premise, question: 원인 | 결과, alternative_1, alternative_2, label: 0 | 1}
  kobest('copa', (r) => {
    const relation = r.text('question').trim();
    if (relation !== '원인' && relation !== '결과')
      r.fail('question', '"원인" 또는 "결과"여야 합니다', 'must be "원인" (cause) or "결과" (effect)');
    return {
      context: r.text('premise'),
      question: `위 문장의 ${relation === '원인' ? '원인으로' : '결과로'} 가장 알맞은 것은?`,
      choices: [r.text('alternative_1'), r.text('alternative_2')],
      answer: r.integer('label', 0, 1),
    };
  }),
  // {context, ending_1 … ending_4, label: 0–3}
  kobest('hellaswag', (r) => ({
    context: r.text('context'),
    question: '다음에 이어질 내용으로 가장 알맞은 것은?',
    choices: [r.text('ending_1'), r.text('ending_2'), r.text('ending_3'), r.text('ending_4')],
    answer: r.integer('label', 0, 3),
  })),
  // {sentence, label: 0 negative | 1 positive}
  kobest('sentineg', (r) => ({
    context: r.text('sentence'),
    question: '위 문장의 감정은 무엇입니까?',
    choices: ['부정', '긍정'],
    answer: r.integer('label', 0, 1),
  })),
  // {word, context_1, context_2, label: 0 different | 1 same meaning}
  kobest('wic', (r) => ({
    context: `문장 1: ${r.text('context_1')}\n문장 2: ${r.text('context_2')}`,
    question: `두 문장에서 "${r.text('word')}"의 의미가 같습니까?`,
    choices: NO_YES,
    answer: r.integer('label', 0, 1),
  })),
];

/**
 * The hub's own layout, for suites an operator writes: JSON lines of
 * `{id?, category?, context?, question, choices: [..], answer: <0-based index>}`.
 */
export const kaihubMultipleChoice: MultipleChoiceFormat = {
  name: 'kaihub-mc',
  kind: 'multiple_choice',
  encodings: ['jsonl', 'json'],
  item(r, index, ctx) {
    const choices = r.texts('choices', 2);
    if (choices.length > CHOICE_LABELS.length)
      r.fail(
        'choices',
        `선택지는 ${CHOICE_LABELS.length}개 이하여야 합니다`,
        `at most ${CHOICE_LABELS.length} choices`,
      );
    return {
      id: r.optionalText('id') ?? String(index + 1),
      category: categoryOf(r, ctx, 'category', 'default'),
      context: r.optionalText('context'),
      question: r.text('question'),
      choices,
      answer: r.integer('answer', 0, choices.length - 1),
    };
  },
};
