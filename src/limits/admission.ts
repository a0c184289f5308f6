import type { Caller } from '../accounts/key-cache.ts';
import type { MicroKrw } from '../billing/money.ts';
import type { RoutableProduct } from '../catalog/catalog-snapshot.ts';

/** What admission needs to decide: who, which product, and the worst case this request can cost. */
export interface AdmissionRequest {
  requestId: string;
  caller: Caller;
  product: RoutableProduct;
  estimatedPromptTokens: number;
  maxCompletionTokens: number | null;
}

export type AdmissionDecision =
  | { admitted: true; ticket: AdmissionTicket }
  /** `status` 429 (rate limit) or 402/403 (funds, policy); the message is shown to the client. */
  | { admitted: false; status: number; code: string; message: string; retryAfterSeconds?: number };

/** Held for the life of one request; exactly one of the two is called. */
export interface AdmissionTicket {
  /** The request completed with this cost (already durably metered). */
  settle(costMicroKrw: MicroKrw, promptTokens: number, completionTokens: number): void;
  /** The request failed before anything was charged. */
  release(): void;
}

/**
 * The admission step of the request path: rate limits and budget holds plug in here (the vouchers
 * and limits issue), without the request path changing.
 */
export interface Admission {
  admit(request: AdmissionRequest): Promise<AdmissionDecision> | AdmissionDecision;
}

const NOOP_TICKET: AdmissionTicket = { settle() {}, release() {} };
const ADMITTED: AdmissionDecision = { admitted: true, ticket: NOOP_TICKET };

/** The default until limits and budgets exist: everyone with a valid key is admitted. */
export const admitEveryone: Admission = { admit: () => ADMITTED };
