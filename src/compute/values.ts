import { z } from 'zod';
import { PriceFormatError, parseKrwAmount } from '../billing/money.ts';

/** What compute services ask the time of: the wall clock, or a test's. */
export type Clock = () => number;

export const iso = (ms: unknown): string | null =>
  ms === null || ms === undefined ? null : new Date(Number(ms)).toISOString();

/** A price of KRW per GPU-hour, 0 or more, at most six decimals → µ₩ (bigint). */
export const krwPerGpuHour = z.union([z.string(), z.number()]).transform((value, ctx) => {
  try {
    return parseKrwAmount(value);
  } catch (error) {
    ctx.addIssue({
      code: 'custom',
      message: error instanceof PriceFormatError ? error.message : String(error),
    });
    return z.NEVER;
  }
});

/** A percentage with at most two decimals → basis points. */
export const percentBp = z
  .number()
  .min(0)
  .max(100)
  .refine((p) => Math.abs(p * 100 - Math.round(p * 100)) < 1e-9, { message: 'at most two decimals' })
  .transform((p) => Math.round(p * 100));

export const REGIONS = ['capital', 'non_capital'] as const;
export type Region = (typeof REGIONS)[number];

export const idText = z.string().min(1).max(64);

/** Scheduler user names (Slurm users, Kubernetes RBAC users): what runs jobs for the organisation. */
export const schedulerUsers = z
  .array(z.string().regex(/^[a-z_][a-z0-9_.@-]{0,63}$/, 'a user name: lowercase letters, digits, _ . @ -'))
  .max(200);
