/**
 * One item, asked and scored: a multiple-choice or generation item is one call whose answer is
 * extracted and compared; a judged item is a conversation (one call per turn) and then one judge call
 * per turn, each judge prompt and verdict logged.
 */
import { extractChoice, scoreGeneration } from '../scoring/extract.ts';
import { judgeMessages, parseVerdict } from '../scoring/judge.ts';
import { mean } from '../scoring/statistics.ts';
import type { ChatMessage } from '../suites/prompts.ts';
import type { CallParameters } from '../suites/suite-spec.ts';
import type { RunManifest } from './manifest.ts';
import type { Answer } from './model-asker.ts';
import type { ClaimedItem, ItemOutcome, JudgeLogEntry } from './run-records.ts';

export type Ask = (
  model: string,
  messages: readonly ChatMessage[],
  parameters: CallParameters,
) => Promise<Answer>;

export type ItemResult =
  | { ok: true; outcome: ItemOutcome }
  | { ok: false; error: string; requestIds: string[] };

function failure(answer: Extract<Answer, { ok: false }>, requestIds: string[]): ItemResult {
  return {
    ok: false,
    error: `${answer.status} ${answer.code ?? ''}: ${answer.message}`.trim(),
    requestIds: [...requestIds, answer.requestId],
  };
}

export async function answerItem(item: ClaimedItem, manifest: RunManifest, ask: Ask): Promise<ItemResult> {
  const started = performance.now();
  const request = item.request;
  const requestIds: string[] = [];
  if (request.type === 'chat') {
    const answer = await ask(manifest.model, request.messages, manifest.parameters);
    if (!answer.ok) return failure(answer, requestIds);
    requestIds.push(answer.requestId);
    let extracted: string | null;
    let correct: boolean;
    if (manifest.suite.kind === 'multiple_choice') {
      extracted = extractChoice(answer.text, request.choices ?? []).extracted;
      correct = extracted !== null && extracted === item.expected;
    } else {
      ({ extracted, correct } = scoreGeneration(answer.text, item.expected ?? '', manifest.extraction!));
    }
    return {
      ok: true,
      outcome: {
        answers: [answer.text],
        extracted,
        correct,
        unparsed: extracted === null,
        score: correct ? 1 : 0,
        judge: null,
        requestIds,
        latencyMs: performance.now() - started,
      },
    };
  }

  const judge = manifest.judge!;
  const conversation: ChatMessage[] = request.system ? [{ role: 'system', content: request.system }] : [];
  const answers: string[] = [];
  for (const turn of request.turns) {
    conversation.push({ role: 'user', content: turn });
    const answer = await ask(manifest.model, conversation, manifest.parameters);
    if (!answer.ok) return failure(answer, requestIds);
    requestIds.push(answer.requestId);
    answers.push(answer.text);
    conversation.push({ role: 'assistant', content: answer.text });
  }
  const log: JudgeLogEntry[] = [];
  for (let t = 0; t < request.turns.length; t++) {
    const prompt = judgeMessages(judge, {
      before: request.turns.slice(0, t).map((question, i) => ({ question, answer: answers[i]! })),
      question: request.turns[t]!,
      answer: answers[t]!,
      reference: request.references[t] ?? null,
      itemRubric: request.rubric,
    });
    const verdict = await ask(judge.model, prompt, judge.parameters);
    if (!verdict.ok) return failure(verdict, requestIds);
    requestIds.push(verdict.requestId);
    log.push({
      turn: t + 1,
      model: judge.model,
      prompt,
      verdict: verdict.text,
      score: parseVerdict(verdict.text, judge.scale),
      requestId: verdict.requestId,
    });
  }
  const scores = log.map((entry) => entry.score);
  const unparsed = scores.some((s) => s === null);
  return {
    ok: true,
    outcome: {
      answers,
      extracted: unparsed ? null : scores.join(','),
      correct: null,
      unparsed,
      score: unparsed ? null : mean(scores as number[]),
      judge: log,
      requestIds,
      latencyMs: performance.now() - started,
    },
  };
}
