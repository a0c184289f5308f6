import { z } from 'zod';
import { ValidationError } from './errors.ts';
import { parseDateOrTimestamp } from './kst.ts';

/** Parses admin input with a zod schema; problems come back naming each field (`purposes.1`). */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown): z.infer<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  throw new ValidationError(
    result.error.issues.map((issue) => {
      const unknownKeys = issue.code === 'unrecognized_keys' ? issue.keys : [];
      const path = issue.path.map(String).join('.');
      if (unknownKeys.length > 0) {
        return { field: [path, unknownKeys[0]].filter(Boolean).join('.'), message: 'unknown field' };
      }
      return { field: path || '(body)', message: issue.message };
    }),
  );
}

/** A query bound: `2026-11-01` (that KST day's start) or an ISO 8601 timestamp, as milliseconds. */
export const dateOrTimestamp = z.string().transform((value, ctx) => {
  const ms = parseDateOrTimestamp(value);
  if (Number.isNaN(ms)) {
    ctx.addIssue({
      code: 'custom',
      message: 'expected a date (YYYY-MM-DD, KST) or an ISO 8601 timestamp with its offset (Z or +09:00)',
    });
    return z.NEVER;
  }
  return ms;
});
