/**
 * A run's result from its items: overall and per category, each with its standard error and a 95%
 * interval, and the unparsed answers counted apart from the wrong ones (docs/evaluation.md).
 */

import { derivedSeed } from '../seeded-random.ts';
import type { SuiteKind } from '../suites/items.ts';
import { bootstrapInterval, mean, normalInterval, standardError } from './statistics.ts';

export interface ScoredItem {
  category: string;
  status: 'pending' | 'done' | 'failed';
  correct: boolean | null;
  unparsed: boolean;
  score: number | null;
}

export interface ScoreSummary {
  /** Items answered (parsed or not). */
  n: number;
  /** Multiple choice and generation: right, wrong (parsed but not right), unparsed. */
  correct: number | null;
  wrong: number | null;
  unparsed: number;
  /** Items no answer could be had for (after retries): not scored, and the run is incomplete. */
  failed: number;
  /** Accuracy (0–1), or the judges' mean score on their scale; null with nothing to score. */
  score: number | null;
  stderr: number | null;
  /** 95%: mean ± 1.96·SE for accuracy, a seeded percentile bootstrap for judge scores. */
  interval: [number, number] | null;
  intervalMethod: 'normal' | 'bootstrap';
  /** Accuracy among the answers that could be parsed (multiple choice and generation). */
  parsedAccuracy: number | null;
}

export interface RunResult {
  metric: 'accuracy' | 'judge_score';
  /** The range scores live in: 0–1 for accuracy, the judge's scale for judge scores. */
  range: { min: number; max: number };
  overall: ScoreSummary;
  categories: Record<string, ScoreSummary>;
}

function summarize(
  items: readonly ScoredItem[],
  kind: SuiteKind,
  range: { min: number; max: number },
  seed: number,
): ScoreSummary {
  const done = items.filter((i) => i.status === 'done');
  const failed = items.filter((i) => i.status === 'failed').length;
  const unparsed = done.filter((i) => i.unparsed).length;
  if (kind === 'judge') {
    const values = done.filter((i) => !i.unparsed && i.score !== null).map((i) => i.score!);
    return {
      n: done.length,
      correct: null,
      wrong: null,
      unparsed,
      failed,
      score: mean(values),
      stderr: standardError(values),
      interval: bootstrapInterval(values, seed),
      intervalMethod: 'bootstrap',
      parsedAccuracy: null,
    };
  }
  // an unparsed answer scores 0 like a wrong one, but is counted as what it is
  const values = done.map((i) => (i.correct ? 1 : 0));
  const correct = done.filter((i) => i.correct).length;
  const score = mean(values);
  const stderr = standardError(values);
  return {
    n: done.length,
    correct,
    wrong: done.length - correct - unparsed,
    unparsed,
    failed,
    score,
    stderr,
    interval: score === null || stderr === null ? null : normalInterval(score, stderr, range),
    intervalMethod: 'normal',
    parsedAccuracy: done.length - unparsed === 0 ? null : correct / (done.length - unparsed),
  };
}

export function aggregate(
  items: readonly ScoredItem[],
  kind: SuiteKind,
  judgeScale: { min: number; max: number } | null,
  seed: number,
): RunResult {
  const range = kind === 'judge' ? judgeScale! : { min: 0, max: 1 };
  const byCategory = new Map<string, ScoredItem[]>();
  for (const item of items) {
    const list = byCategory.get(item.category);
    if (list === undefined) byCategory.set(item.category, [item]);
    else list.push(item);
  }
  const categories: Record<string, ScoreSummary> = {};
  for (const name of [...byCategory.keys()].sort()) {
    categories[name] = summarize(byCategory.get(name)!, kind, range, derivedSeed(seed, `category:${name}`));
  }
  return {
    metric: kind === 'judge' ? 'judge_score' : 'accuracy',
    range,
    overall: summarize(items, kind, range, derivedSeed(seed, 'overall')),
    categories,
  };
}
