import { ValidationError } from '../errors.ts';
import type { ReviewCriterion } from './programmes.ts';

/**
 * A review's weighted score in integer centipoints (Σ score × weight, the weights summing to 100),
 * kept as an integer so that means and rankings stay exact. Programme and compute-call reviews score
 * the same way; `owner` names what the criteria belong to in the error.
 */
export function weightedCentipoints(
  criteria: readonly ReviewCriterion[],
  scores: Readonly<Record<string, number>>,
  owner: 'programme' | 'call',
): number {
  const known = new Set(criteria.map((c) => c.id));
  for (const key of Object.keys(scores))
    if (!known.has(key)) throw ValidationError.of(`scores.${key}`, `not a criterion of this ${owner}`);
  let centipoints = 0;
  for (const c of criteria) {
    const score = scores[c.id];
    if (score === undefined) throw ValidationError.of(`scores.${c.id}`, `score "${c.name}" (0–100)`);
    centipoints += score * c.weight;
  }
  return centipoints;
}

/** Centipoints shown on the criteria's 0–100 scale, with two decimals. */
export const points = (centipoints: number): number => Math.round(centipoints) / 100;
