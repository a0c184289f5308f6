/**
 * LLM-as-judge: the prompt a judge product gets for one turn of an answer (MT-Bench style: the
 * conversation so far, the turn's question, the reference and the rubric where there are), and the
 * score read back from its verdict. Verdicts that give no score on the scale are unparsed, never zero.
 */
import type { ItemRubric } from '../suites/items.ts';
import type { ChatMessage } from '../suites/prompts.ts';

export const DEFAULT_JUDGE_SYSTEM =
  '당신은 공정하고 엄격한 평가자입니다. AI 어시스턴트의 답변을 질문, 참고 답안과 평가 기준에 비추어 평가하고, ' +
  '짧은 근거를 쓴 뒤 마지막 줄에 "[[점수]]" 형식으로 점수를 쓰세요 (예: [[7]]).';

export const DEFAULT_JUDGE_TEMPLATE =
  '{conversation}[질문]\n{question}\n\n{reference}{rubric}[AI 어시스턴트의 답변]\n{answer}\n\n' +
  '이 답변을 {min}점부터 {max}점까지의 정수로 평가하세요. 마지막 줄에 "[[점수]]" 형식으로 쓰세요.';

export const JUDGE_PLACEHOLDERS = [
  'conversation',
  'question',
  'reference',
  'rubric',
  'answer',
  'min',
  'max',
] as const;

export interface JudgeSettings {
  model: string;
  system: string;
  template: string;
  /** The suite's rubric, for items that bring none of their own. */
  rubric: string | null;
  scale: { min: number; max: number };
}

export interface TurnToJudge {
  /** The earlier turns of the conversation and their answers. */
  before: { question: string; answer: string }[];
  question: string;
  answer: string;
  reference: string | null;
  itemRubric: ItemRubric | null;
}

function rubricText(settings: JudgeSettings, itemRubric: ItemRubric | null): string {
  const parts: string[] = [];
  if (itemRubric?.criteria) parts.push(itemRubric.criteria);
  else if (settings.rubric) parts.push(settings.rubric);
  if (itemRubric && itemRubric.levels.length > 0)
    parts.push(itemRubric.levels.map((level, i) => `${settings.scale.min + i}점: ${level}`).join('\n'));
  return parts.length === 0 ? '' : `[평가 기준]\n${parts.join('\n')}\n\n`;
}

/** The judge's messages for one turn. */
export function judgeMessages(settings: JudgeSettings, turn: TurnToJudge): ChatMessage[] {
  const conversation =
    turn.before.length === 0
      ? ''
      : `[이전 대화]\n${turn.before.map((t, i) => `사용자 ${i + 1}: ${t.question}\n어시스턴트 ${i + 1}: ${t.answer}`).join('\n')}\n\n`;
  const values: Record<string, string> = {
    conversation,
    question: turn.question,
    reference: turn.reference === null ? '' : `[참고 답안]\n${turn.reference}\n\n`,
    rubric: rubricText(settings, turn.itemRubric),
    answer: turn.answer,
    min: String(settings.scale.min),
    max: String(settings.scale.max),
  };
  const content = settings.template.replace(
    /\{([A-Za-z_][A-Za-z0-9_]*)\}/g,
    (whole, name: string) => values[name] ?? whole,
  );
  return [
    { role: 'system', content: settings.system },
    { role: 'user', content },
  ];
}

/**
 * The score of a verdict: the last `[[n]]` (MT-Bench's convention), else the last `점수: n` /
 * `Rating: n` / `Score: n`; null when none is given or it is off the scale.
 */
export function parseVerdict(verdict: string, scale: { min: number; max: number }): number | null {
  const bracketed = [...verdict.matchAll(/\[\[\s*(\d+(?:\.\d+)?)\s*\]\]/g)];
  let found = bracketed.at(-1)?.[1];
  if (found === undefined) {
    const labelled = [...verdict.matchAll(/(?:점수|평점|rating|score)\s*[:：]?\s*(\d+(?:\.\d+)?)/gi)];
    found = labelled.at(-1)?.[1];
  }
  if (found === undefined) return null;
  const score = Number(found);
  return score >= scale.min && score <= scale.max ? score : null;
}
