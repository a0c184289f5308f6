/**
 * From items to what is asked: the prompt template filled in, few-shot examples drawn by a seeded
 * sampler, laid out as a chat (`chat`: each example a user turn and an assistant turn) or as one user
 * message (`single`). What comes out is stored with the run, so a resumed run asks exactly the same.
 */
import { ValidationError } from '../../errors.ts';
import { derivedSeed, seededRandom } from '../seeded-random.ts';
import {
  CHOICE_LABELS,
  type GenerationItem,
  type ItemRubric,
  type MultipleChoiceItem,
  type SuiteItem,
  type SuiteKind,
} from './items.ts';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** What one item asks: a chat to complete, or (judged suites) a conversation of turns. */
export type ItemRequest =
  | {
      type: 'chat';
      messages: ChatMessage[];
      /** Multiple choice: the choices, for reading which one an answer picked. */
      choices: string[] | null;
    }
  | {
      type: 'conversation';
      system: string | null;
      turns: string[];
      references: (string | null)[];
      rubric: ItemRubric | null;
    };

export interface PreparedItem {
  itemId: string;
  category: string;
  request: ItemRequest;
  /** The gold answer as stored: a choice label, a number or text; null for judged items. */
  expected: string | null;
}

export const DEFAULT_TEMPLATES: Record<SuiteKind, string> = {
  multiple_choice:
    '{context}{question}\n\n{choices}\n\n정답을 {labels} 중 하나로 고르고 마지막 줄에 "정답: <알파벳>" 형식으로 답하세요.',
  generation: '{question}\n\n풀이 과정을 쓴 뒤 마지막 줄에 "정답: <답>" 형식으로 답하세요.',
  judge: '{question}',
};
export const DEFAULT_ANSWER_TEMPLATE = '정답: {answer}';

const PLACEHOLDERS: Record<SuiteKind, readonly string[]> = {
  multiple_choice: ['context', 'question', 'choices', 'labels', ...CHOICE_LABELS],
  generation: ['question'],
  judge: ['question'],
};

const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** A template naming a placeholder the kind has not is refused before any item is asked. */
export function checkTemplate(template: string, allowed: readonly string[], field: string): void {
  for (const m of template.matchAll(PLACEHOLDER)) {
    if (!allowed.includes(m[1]!))
      throw ValidationError.of(
        field,
        `알 수 없는 자리표시자 {${m[1]}} (가능: ${allowed.map((a) => `{${a}}`).join(' ')}) / unknown placeholder {${m[1]}}`,
      );
  }
}

function fill(template: string, values: Record<string, string>): string {
  return template.replace(PLACEHOLDER, (whole, name: string) => values[name] ?? whole);
}

function multipleChoiceValues(item: MultipleChoiceItem): Record<string, string> {
  const labels = CHOICE_LABELS.slice(0, item.choices.length);
  const values: Record<string, string> = {
    // the passage keeps its blank line, so a template reads the same with or without one
    context: item.context === null ? '' : `${item.context}\n\n`,
    question: item.question,
    choices: item.choices.map((c, i) => `${labels[i]}. ${c}`).join('\n'),
    labels: labels.join(', '),
  };
  item.choices.forEach((c, i) => {
    values[labels[i]!] = c;
  });
  return values;
}

export interface PromptSpec {
  kind: SuiteKind;
  style: 'chat' | 'single';
  system: string | null;
  template: string;
  answerTemplate: string;
  fewShot: number;
  seed: number;
}

export function checkPromptSpec(p: PromptSpec): void {
  checkTemplate(p.template, PLACEHOLDERS[p.kind], 'prompt.template');
  checkTemplate(p.answerTemplate, ['answer'], 'prompt.answerTemplate');
}

function render(kind: SuiteKind, template: string, item: SuiteItem): string {
  if (kind === 'multiple_choice') return fill(template, multipleChoiceValues(item as MultipleChoiceItem));
  return fill(template, { question: (item as GenerationItem).question });
}

function expectedOf(kind: SuiteKind, item: SuiteItem): string | null {
  if (kind === 'multiple_choice') return CHOICE_LABELS[(item as MultipleChoiceItem).answer]!;
  if (kind === 'generation') return (item as GenerationItem).answer;
  return null;
}

/**
 * `k` examples for `item`, drawn from `pool` without the item itself, by a generator seeded with the
 * suite's seed and the item's id: the same examples for the same item whatever the order of asking.
 */
export function sampleShots<T extends { id: string }>(
  pool: readonly T[],
  item: T,
  k: number,
  seed: number,
): T[] {
  const candidates = pool.length - (pool.some((p) => p.id === item.id) ? 1 : 0);
  const count = Math.min(k, candidates);
  if (count <= 0) return [];
  const random = seededRandom(derivedSeed(seed, item.id));
  const picked = new Set<number>();
  const shots: T[] = [];
  while (shots.length < count) {
    const i = Math.floor(random() * pool.length);
    if (picked.has(i) || pool[i]!.id === item.id) continue;
    picked.add(i);
    shots.push(pool[i]!);
  }
  return shots;
}

/** What each item asks, in the suite's order. */
export function prepareItems(
  p: PromptSpec,
  items: readonly SuiteItem[],
  fewShotPool: readonly SuiteItem[],
): PreparedItem[] {
  return items.map((item) => {
    if (p.kind === 'judge') {
      const j = item as Extract<SuiteItem, { turns: string[] }>;
      return {
        itemId: j.id,
        category: j.category,
        request: {
          type: 'conversation',
          system: p.system,
          turns: j.turns.map((t) => fill(p.template, { question: t })),
          references: j.references,
          rubric: j.rubric,
        },
        expected: null,
      };
    }
    const shots = sampleShots(fewShotPool, item, p.fewShot, p.seed);
    const messages: ChatMessage[] = [];
    if (p.system) messages.push({ role: 'system', content: p.system });
    const question = render(p.kind, p.template, item);
    const answer = (shot: SuiteItem) => fill(p.answerTemplate, { answer: expectedOf(p.kind, shot)! });
    if (p.style === 'chat') {
      for (const shot of shots) {
        messages.push({ role: 'user', content: render(p.kind, p.template, shot) });
        messages.push({ role: 'assistant', content: answer(shot) });
      }
      messages.push({ role: 'user', content: question });
    } else {
      const examples = shots.map((shot) => `${render(p.kind, p.template, shot)}\n${answer(shot)}`);
      messages.push({ role: 'user', content: [...examples, question].join('\n\n') });
    }
    return {
      itemId: item.id,
      category: item.category,
      request: {
        type: 'chat',
        messages,
        choices: p.kind === 'multiple_choice' ? (item as MultipleChoiceItem).choices : null,
      },
      expected: expectedOf(p.kind, item),
    };
  });
}
