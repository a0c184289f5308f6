/**
 * LLM-as-judge benchmarks: K2-Eval (one instruction, a 1–5 rubric per item), KoMT-Bench (MT-Bench's
 * two-turn layout) and LogicKor (two questions per item), and the hub's own JSONL.
 */
import type { FieldReader } from '../records.ts';
import type { JudgeFormat } from './format.ts';

function idOf(r: FieldReader, field: string, index: number): string {
  return r.has(field) ? r.text(field).trim() : String(index + 1);
}

/** References aligned with the turns: as many as there are turns, null where none. */
function alignedReferences(r: FieldReader, field: string, turns: number): (string | null)[] {
  const given = r.optionalTexts(field);
  if (given.length > turns)
    r.fail(field, `참고 답안이 질문(${turns}개)보다 많습니다`, `more references than turns (${turns})`);
  return Array.from({ length: turns }, (_, i) => given[i] ?? null);
}

/**
 * K2-Eval (HAERAE-HUB/K2-Eval): `instruction, subject, ability, criteria, score1 … score5,
 * reference`; each item brings its own rubric (what each score from 1 to 5 means).
 */
export const k2Eval: JudgeFormat = {
  name: 'k2-eval',
  kind: 'judge',
  encodings: ['csv', 'jsonl'],
  scale: { min: 1, max: 5 },
  item(r, index, ctx) {
    return {
      id: idOf(r, 'id', index),
      category: ctx.category ?? r.text('subject').trim(),
      turns: [r.text('instruction')],
      references: [r.optionalText('reference')],
      rubric: {
        criteria: r.text('criteria'),
        levels: [r.text('score1'), r.text('score2'), r.text('score3'), r.text('score4'), r.text('score5')],
      },
    };
  },
};

/** KoMT-Bench (LGAI-EXAONE/KoMT-Bench): `question_id, category, turns: [..], reference?: [..]`. */
export const komtBench: JudgeFormat = {
  name: 'komt-bench',
  kind: 'judge',
  encodings: ['jsonl'],
  scale: { min: 1, max: 10 },
  item(r, _index, ctx) {
    const turns = r.texts('turns', 1);
    return {
      id: String(r.integer('question_id', 0, Number.MAX_SAFE_INTEGER)),
      category: ctx.category ?? r.text('category').trim(),
      turns,
      references: alignedReferences(r, 'reference', turns.length),
      rubric: null,
    };
  },
};

/** LogicKor: `id, category, questions: [..], references: [..]`. */
export const logicKor: JudgeFormat = {
  name: 'logickor',
  kind: 'judge',
  encodings: ['jsonl'],
  scale: { min: 1, max: 10 },
  item(r, index, ctx) {
    const turns = r.texts('questions', 1);
    return {
      id: idOf(r, 'id', index),
      category: ctx.category ?? r.text('category').trim(),
      turns,
      references: alignedReferences(r, 'references', turns.length),
      rubric: null,
    };
  },
};

/**
 * The hub's own layout: JSON lines of `{id?, category?, turns: [..] | question, references?: [..],
 * criteria?}`; the suite's `judge.scale` applies (default 1–10).
 */
export const kaihubJudge: JudgeFormat = {
  name: 'kaihub-judge',
  kind: 'judge',
  encodings: ['jsonl', 'json'],
  scale: { min: 1, max: 10 },
  item(r, index, ctx) {
    const turns = r.has('turns') ? r.texts('turns', 1) : [r.text('question')];
    const criteria = r.optionalText('criteria');
    return {
      id: idOf(r, 'id', index),
      category: r.has('category') ? r.text('category').trim() : (ctx.category ?? 'default'),
      turns,
      references: alignedReferences(r, 'references', turns.length),
      rubric: criteria === null ? null : { criteria, levels: [] },
    };
  },
};
