/**
 * The pairwise judge (MT-Bench's "pair" rubric): two answers to one conversation side by side, the
 * verdict `[[A]]`, `[[B]]` or `[[C]]` (a tie). Each pair is judged twice with the positions swapped;
 * only a winner both orders agree on wins, any disagreement is a tie (judges favour a position), and a
 * verdict that names none is unparsed: the battle is not recorded, and it is counted apart.
 */
import type { ChatMessage } from '../suites/prompts.ts';

export type PairVerdict = 'A' | 'B' | 'tie';
export type BattleOutcome = 'a' | 'b' | 'tie';

export const PAIRWISE_JUDGE_SYSTEM =
  '당신은 공정한 심판입니다. 사용자의 질문에 대한 두 AI 어시스턴트의 답변을 비교해 더 나은 쪽을 고르세요. ' +
  '도움이 되는 정도, 정확성, 깊이, 구체성을 보고, 답변의 순서나 길이, 어시스턴트의 이름에 흔들리지 마세요. ' +
  '짧은 근거를 쓴 뒤 마지막 줄에 A가 낫다면 "[[A]]", B가 낫다면 "[[B]]", 비슷하다면 "[[C]]"라고 쓰세요.';

export interface BattlePrompt {
  id: string;
  system: string | null;
  /** The user's turns, asked in order in one conversation. */
  turns: string[];
}

function transcript(label: 'A' | 'B', prompt: BattlePrompt, answers: readonly string[]): string {
  if (prompt.turns.length === 1)
    return `[어시스턴트 ${label}의 답변 시작]\n${answers[0] ?? ''}\n[어시스턴트 ${label}의 답변 끝]`;
  const lines = prompt.turns.flatMap((turn, i) => [
    `사용자: ${turn}`,
    `어시스턴트 ${label}: ${answers[i] ?? ''}`,
  ]);
  return `[어시스턴트 ${label}와의 대화 시작]\n${lines.join('\n\n')}\n[어시스턴트 ${label}와의 대화 끝]`;
}

/** The judge's messages with `first` in position A and `second` in position B. */
export function pairwiseMessages(
  prompt: BattlePrompt,
  first: readonly string[],
  second: readonly string[],
): ChatMessage[] {
  const question = prompt.turns.length === 1 ? `[사용자 질문]\n${prompt.turns[0]}\n\n` : '';
  return [
    { role: 'system', content: PAIRWISE_JUDGE_SYSTEM },
    {
      role: 'user',
      content: `${question}${transcript('A', prompt, first)}\n\n${transcript('B', prompt, second)}`,
    },
  ];
}

/** The last `[[A]]`, `[[B]]` or `[[C]]` (also `[[tie]]`, `[[무승부]]`, `[[동점]]`); null when none. */
export function parsePairVerdict(text: string): PairVerdict | null {
  const found = [...text.matchAll(/\[\[\s*(A|B|C|tie|무승부|동점)\s*\]\]/gi)].at(-1)?.[1];
  if (found === undefined) return null;
  const upper = found.toUpperCase();
  return upper === 'A' || upper === 'B' ? upper : 'tie';
}

/**
 * The battle between model a and model b from the two verdicts: `straight` judged a in position A,
 * `swapped` judged b in position A. Null (unparsed) when either names no verdict.
 */
export function combineVerdicts(
  straight: PairVerdict | null,
  swapped: PairVerdict | null,
): BattleOutcome | null {
  if (straight === null || swapped === null) return null;
  const first: BattleOutcome = straight === 'A' ? 'a' : straight === 'B' ? 'b' : 'tie';
  const second: BattleOutcome = swapped === 'A' ? 'b' : swapped === 'B' ? 'a' : 'tie';
  return first === second ? first : 'tie';
}
