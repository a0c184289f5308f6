/**
 * Taking the answer out of a model's text, and judging it right or wrong. An answer that cannot be
 * taken out is `unparsed` — counted apart from wrong answers everywhere (docs/evaluation.md).
 */
import { CHOICE_LABELS } from '../suites/items.ts';
import type { Normalizer } from '../suites/suite-spec.ts';
import { numbersIn, parseNumber, sameNumber } from './numbers.ts';

export interface Extraction {
  /** What was taken out (a label, a number, a text); null: unparsed. */
  extracted: string | null;
}

const STRIP = /^[\s*_`"'“”‘’「」『』[\](){}.:：,]+|[\s*_`"'“”‘’「」『』[\](){}.:：,]+$/g;

/**
 * The label of the choice a model picked among `count`, in this order of evidence:
 * 1. the whole answer is a label (`B`, `(B)`, `**B**`, `B.`);
 * 2. an explicit marker: `정답: B`, `정답은 (B)`, `답: B`, `Answer: B`, `answer is B` (the last one wins);
 * 3. the answer starts with a label followed by `.`, `)` or `:` (`B. 서울`);
 * 4. the text of exactly one choice appears in the answer.
 * Anything else — a letter in passing, two different markers' worth of doubt resolved by the last —
 * is unparsed rather than guessed.
 */
export function extractChoice(answer: string, choices: readonly string[]): Extraction {
  const count = choices.length;
  const labels = CHOICE_LABELS.slice(0, count).join('');
  const isLabel = (s: string) => s.length === 1 && labels.includes(s.toUpperCase());
  const bare = answer.replace(STRIP, '');
  if (isLabel(bare)) return { extracted: bare.toUpperCase() };
  const marker = new RegExp(
    `(?:정답|답|[Aa]nswer(?:\\s+is)?)\\s*(?:은|는|:|：|=)?\\s*[:：]?\\s*[*_(\\[「]*\\s*([${labels}])(?![A-Za-z])`,
    'g',
  );
  const marked = [...answer.matchAll(marker)].at(-1);
  if (marked) return { extracted: marked[1]!.toUpperCase() };
  const leading = new RegExp(`^\\s*[*_(\\[]*([${labels}])\\s*[.):：]`).exec(answer);
  if (leading) return { extracted: leading[1]!.toUpperCase() };
  const mentioned = choices
    .map((c, i) => ({ text: c.trim(), i }))
    .filter((c) => c.text.length >= 2 && answer.includes(c.text));
  if (mentioned.length === 1) return { extracted: CHOICE_LABELS[mentioned[0]!.i]! };
  return { extracted: null };
}

/**
 * The number a model gave as its final answer: after the last `####`, `정답`, `답` or `answer`
 * marker, else in the last `\boxed{}`, else (`lastNumber`) the last number of the text.
 */
export function extractNumber(answer: string, lastNumber = true): Extraction {
  const segments = [
    /####\s*([^\n]*)/g,
    /(?:정답|최종\s*답|답|answer(?:\s+is)?)\s*(?:은|는|:|：|=)?\s*[:：]?\s*([^\n]*)/gi,
    /\\boxed\{([^{}]*)\}/g,
  ];
  for (const pattern of segments) {
    const last = [...answer.matchAll(pattern)].at(-1);
    if (last === undefined) continue;
    const first = numbersIn(last[1]!)[0];
    if (first !== undefined) return { extracted: String(first) };
  }
  if (!lastNumber) return { extracted: null };
  const all = numbersIn(answer);
  return { extracted: all.length === 0 ? null : String(all.at(-1)) };
}

export function normalize(text: string, normalizers: readonly Normalizer[]): string {
  let out = text;
  for (const n of normalizers) {
    if (n === 'trim') out = out.trim();
    else if (n === 'lowercase') out = out.toLowerCase();
    else if (n === 'strip_commas') out = out.replace(/,/g, '');
    else if (n === 'strip_punctuation') out = out.replace(/[\p{P}\p{S}]/gu, '');
    else out = out.replace(/\s+/g, ' ');
  }
  return out;
}

export interface ExtractionSettings {
  type: 'numeric' | 'regex' | 'exact';
  pattern: string | null;
  flags: string;
  group: number;
  normalizers: readonly Normalizer[];
  tolerance: number;
}

/** A generation answer: taken out, then compared with the gold answer. */
export function scoreGeneration(
  answer: string,
  expected: string,
  settings: ExtractionSettings,
): { extracted: string | null; correct: boolean } {
  if (settings.type === 'numeric') {
    const { extracted } = extractNumber(answer);
    if (extracted === null) return { extracted: null, correct: false };
    const gold = parseNumber(expected);
    return { extracted, correct: gold !== null && sameNumber(Number(extracted), gold, settings.tolerance) };
  }
  let taken: string | null = answer;
  if (settings.type === 'regex') {
    const m = [...answer.matchAll(new RegExp(settings.pattern!, `${settings.flags.replace('g', '')}g`))].at(
      -1,
    );
    taken = m === undefined ? null : (m[settings.group] ?? null);
  }
  if (taken === null) return { extracted: null, correct: false };
  const extracted = normalize(taken, settings.normalizers);
  if (extracted === '') return { extracted: null, correct: false };
  return { extracted, correct: extracted === normalize(expected, settings.normalizers) };
}
