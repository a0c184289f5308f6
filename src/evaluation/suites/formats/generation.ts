/**
 * Generation with extraction: HRM8K (HAERAE-HUB/HRM8K) and GSM8K-style math, whose gold answers are
 * numbers, and the hub's own JSONL for free-form answers matched by a pattern.
 */
import { parseNumber } from '../../scoring/numbers.ts';
import type { FieldReader } from '../records.ts';
import type { FormatContext, GenerationFormat } from './format.ts';

function numericAnswer(r: FieldReader, field: string, text: string): string {
  const n = parseNumber(text);
  if (n === null)
    r.fail(
      field,
      `숫자 하나여야 합니다 (값: ${JSON.stringify(text)})`,
      `must be one number (got ${JSON.stringify(text)})`,
    );
  return String(n);
}

function category(r: FieldReader, ctx: FormatContext, fallback: string): string {
  for (const field of ['category', 'subset']) if (r.has(field)) return r.text(field).trim();
  return ctx.category ?? fallback;
}

/**
 * HRM8K: `question, answer` (a number), with `original` (the English source) and `solution` where the
 * subset has them; one file per subset (GSM8K, KSM, MATH, MMMLU, OMNI_MATH), CSV or JSON lines.
 */
export const hrm8k: GenerationFormat = {
  name: 'hrm8k',
  kind: 'generation',
  encodings: ['jsonl', 'csv'],
  item(r, index, ctx) {
    return {
      id: r.optionalText('id') ?? String(index + 1),
      category: category(r, ctx, 'hrm8k'),
      question: r.text('question'),
      answer: numericAnswer(r, 'answer', r.text('answer')),
    };
  },
};

/** GSM8K's JSONL: `question, answer` where the answer's last line is `#### <number>`. */
export const gsm8k: GenerationFormat = {
  name: 'gsm8k',
  kind: 'generation',
  encodings: ['jsonl'],
  item(r, index, ctx) {
    const solution = r.text('answer');
    const marker = solution.lastIndexOf('####');
    if (marker === -1)
      r.fail('answer', '마지막 줄이 "#### <숫자>"여야 합니다', 'must end with a "#### <number>" line');
    return {
      id: r.optionalText('id') ?? String(index + 1),
      category: category(r, ctx, 'gsm8k'),
      question: r.text('question'),
      answer: numericAnswer(r, 'answer', solution.slice(marker + 4)),
    };
  },
};

/** The hub's own layout: JSON lines of `{id?, category?, question, answer}`. */
export const kaihubGeneration: GenerationFormat = {
  name: 'kaihub-generation',
  kind: 'generation',
  encodings: ['jsonl', 'json'],
  item(r, index, ctx) {
    return {
      id: r.optionalText('id') ?? String(index + 1),
      category: category(r, ctx, 'default'),
      question: r.text('question'),
      answer: r.text('answer'),
    };
  },
};
