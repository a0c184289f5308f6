import { z } from 'zod';

/** `{requestsPerMinute, tokensPerMinute}` on an organisation or a key; null or absent: no limit. */
export const rateLimitsInput = z
  .strictObject({
    // the columns are INTEGER: 32 bits on PostgreSQL, and two billion a minute is no limit at all
    requestsPerMinute: z.number().int().min(1).max(2_147_483_647).nullable().optional(),
    tokensPerMinute: z.number().int().min(1).max(2_147_483_647).nullable().optional(),
  })
  .nullable()
  .optional();

export interface RateLimitFields {
  requestsPerMinute: number | null;
  tokensPerMinute: number | null;
}

export function rateLimitFieldsOf(row: Record<string, unknown>): RateLimitFields {
  const n = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return { requestsPerMinute: n(row.requests_per_minute), tokensPerMinute: n(row.tokens_per_minute) };
}

/** The two column values an input sets (null clears both). */
export function rateLimitColumns(input: z.infer<typeof rateLimitsInput>): [number | null, number | null] {
  return [input?.requestsPerMinute ?? null, input?.tokensPerMinute ?? null];
}
