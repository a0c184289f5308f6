import type { Caller } from '../accounts/key-cache.ts';
import type { UsageRecord } from '../billing/usage-journal.ts';
import type { RoutableProduct } from '../catalog/catalog-snapshot.ts';

/** What admission needs to decide: who, which product, and the worst case this request can cost. */
export interface AdmissionRequest {
  requestId: string;
  caller: Caller;
  product: RoutableProduct;
  estimatedPromptTokens: number;
  maxCompletionTokens: number | null;
}

/** A refusal the client reads as it is: 429 (rate limit) or 402/403 (funds, policy). */
export interface AdmissionRefusal {
  status: number;
  code: string;
  /** OpenAI's error `type` (e.g. `requests` or `tokens` for a rate limit); else from the status. */
  type?: string;
  message: string;
  retryAfterSeconds?: number;
  /** Sent with the refusal (e.g. `x-ratelimit-*`). */
  headers?: Record<string, string>;
}

export type AdmissionDecision =
  | { admitted: true; ticket: AdmissionTicket }
  | ({ admitted: false } & AdmissionRefusal);

/**
 * Held for the life of one admitted call. The call layer calls exactly one of `settle` and `release`,
 * once, whatever happens (src/calls/model-call.ts).
 */
export interface AdmissionTicket {
  /** The voucher whose share of the cost this call was admitted against; null: the wallet pays. */
  readonly voucherId?: string | null;
  /** Sent with the answer (e.g. OpenAI's `x-ratelimit-*`); null or absent: none. */
  readonly responseHeaders?: Readonly<Record<string, string>> | null;
  /**
   * Before the call goes to a fallback product (other prices, other residency): null when this caller
   * may use it, else why not — the fallback is then skipped.
   */
  reroute?(product: RoutableProduct): AdmissionRefusal | null;
  /**
   * The call was charged: `record` is its durable usage record, naming the product that really served
   * (a fallback's, with its prices) and the cost.
   */
  settle(record: UsageRecord): void;
  /** The call ended with nothing charged. */
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
