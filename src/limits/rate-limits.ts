import type { CallerRateLimits } from '../accounts/key-cache.ts';
import type { UsageRecord } from '../billing/usage-journal.ts';
import type { AdmissionRefusal, AdmissionRequest } from './admission.ts';

/**
 * Requests and tokens per minute, per key and per organisation, as the operator sets them
 * (docs/billing.md). Each limit is a bucket that holds one minute's allowance and refills evenly:
 * a limit of 60 requests per minute lets a burst of 60 through, then one a second. The tokens a call
 * takes are counted when it is admitted — its prompt estimate plus `max_tokens`, as OpenAI counts
 * them — and corrected to what it really used when it ends; what a call that failed took is given
 * back. Requests are not given back: a call refused by the supplier was still a request.
 *
 * One replica counts its own calls, exactly; with REDIS_URL the same buckets live in Redis (shared-admission.ts).
 */

const MINUTE_MS = 60_000;

export class Bucket {
  /** What is left now, before refilling since `at`; negative after a call used more than it said. */
  level: number;
  at: number;
  constructor(
    public capacity: number,
    now: number,
  ) {
    this.level = capacity;
    this.at = now;
  }
  refill(now: number, capacity: number): void {
    if (capacity !== this.capacity) {
      // a changed limit: keep what was used, against the new allowance
      this.level += capacity - this.capacity;
      this.capacity = capacity;
    }
    const elapsed = now - this.at;
    if (elapsed > 0) {
      this.level = Math.min(this.capacity, this.level + (elapsed * this.capacity) / MINUTE_MS);
      this.at = now;
    }
  }
  /** Milliseconds until `amount` is available (0: now). */
  waitFor(amount: number): number {
    const missing = amount - this.level;
    return missing <= 0 ? 0 : Math.ceil((missing * MINUTE_MS) / this.capacity);
  }
  /** Milliseconds until the bucket is full again. */
  untilFull(): number {
    return Math.max(0, Math.ceil(((this.capacity - this.level) * MINUTE_MS) / this.capacity));
  }
}

export type Scope = 'key' | 'organization';
export type Kind = 'requests' | 'tokens';

/** `1s`, `6m0s`, `20ms`: the form of OpenAI's `x-ratelimit-reset-*` headers. */
export function resetText(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.ceil(ms))}ms`;
  const seconds = Math.ceil(ms / 100) / 10;
  if (seconds < 60) return `${Number.isInteger(seconds) ? seconds : seconds.toFixed(1)}s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes}m${Math.ceil(seconds - minutes * 60)}s`;
}

/** What one admitted call took from which buckets; given back or corrected when it ends. */
export class RateReservation {
  constructor(
    private readonly keyRequests: Bucket | null,
    private readonly organizationRequests: Bucket | null,
    private readonly keyTokens: Bucket | null,
    private readonly organizationTokens: Bucket | null,
    private readonly tokens: number,
    readonly headers: Readonly<Record<string, string>> | null,
  ) {}

  /** The call was charged: its real tokens replace the estimate. */
  settle(record: UsageRecord): void {
    const difference = this.tokens - (record.promptTokens + record.completionTokens);
    if (this.keyTokens !== null) this.keyTokens.level += difference;
    if (this.organizationTokens !== null) this.organizationTokens.level += difference;
  }

  /** The call ended with nothing charged: its tokens are given back. */
  release(): void {
    if (this.keyTokens !== null) this.keyTokens.level += this.tokens;
    if (this.organizationTokens !== null) this.organizationTokens.level += this.tokens;
  }

  /** Admission refused the call after all (its budget): as if it had never been counted. */
  cancel(): void {
    this.release();
    if (this.keyRequests !== null) this.keyRequests.level += 1;
    if (this.organizationRequests !== null) this.organizationRequests.level += 1;
  }
}

/** Admitted with no limit set: nothing to correct. */
const UNLIMITED = new RateReservation(null, null, null, null, 0, null);

export type RateDecision = RateReservation | AdmissionRefusal;

/** How often (in buckets made) idle ones are looked for. */
const SWEEP_EVERY = 10_000;

export class RateLimits {
  private readonly buckets = new Map<string, Bucket>();
  private made = 0;

  constructor(private readonly clock: () => number = Date.now) {}

  check(request: AdmissionRequest): RateDecision {
    const limits = request.caller.rateLimits;
    if (limits === null || limits === undefined) return UNLIMITED;
    const now = this.clock();
    const tokens = request.estimatedPromptTokens + (request.maxCompletionTokens ?? 0);
    const { caller } = request;
    const keyRequests = this.bucket(`k:r:${caller.keyId}`, limits.keyRequests, now);
    const keyTokens = this.bucket(`k:t:${caller.keyId}`, limits.keyTokens, now);
    const orgRequests = this.bucket(`o:r:${caller.organizationId}`, limits.organizationRequests, now);
    const orgTokens = this.bucket(`o:t:${caller.organizationId}`, limits.organizationTokens, now);
    const refusal =
      rateRefusal(keyRequests, 1, 'key', 'requests', limits) ??
      rateRefusal(orgRequests, 1, 'organization', 'requests', limits) ??
      rateRefusal(keyTokens, tokens, 'key', 'tokens', limits) ??
      rateRefusal(orgTokens, tokens, 'organization', 'tokens', limits);
    if (refusal !== null) {
      refusal.headers = headersOf(keyRequests, orgRequests, keyTokens, orgTokens);
      return refusal;
    }
    if (keyRequests !== null) keyRequests.level -= 1;
    if (orgRequests !== null) orgRequests.level -= 1;
    if (keyTokens !== null) keyTokens.level -= tokens;
    if (orgTokens !== null) orgTokens.level -= tokens;
    return new RateReservation(
      keyRequests,
      orgRequests,
      keyTokens,
      orgTokens,
      tokens,
      headersOf(keyRequests, orgRequests, keyTokens, orgTokens),
    );
  }

  private bucket(id: string, limit: number | null, now: number): Bucket | null {
    if (limit === null) return null;
    let bucket = this.buckets.get(id);
    if (bucket === undefined) {
      if (++this.made % SWEEP_EVERY === 0) this.sweep(now);
      bucket = new Bucket(limit, now);
      this.buckets.set(id, bucket);
    } else {
      bucket.refill(now, limit);
    }
    return bucket;
  }

  /**
   * Forgets buckets untouched for two minutes: refilled, they would be full, which is what a new one
   * is — so a key seen once does not stay in memory for the life of the process. (A call still open
   * that long corrects a bucket nobody reads any more: its tokens are long refilled anyway.)
   */
  private sweep(now: number): void {
    for (const [id, bucket] of this.buckets) if (now - bucket.at > 2 * MINUTE_MS) this.buckets.delete(id);
  }

  /** Buckets held in memory (for tests). */
  get size(): number {
    return this.buckets.size;
  }
}

/** Why `bucket` cannot give `amount` now, as OpenAI words it; null when it can. */
export function rateRefusal(
  bucket: Bucket | null,
  amount: number,
  scope: Scope,
  kind: Kind,
  limits: CallerRateLimits,
): (AdmissionRefusal & { headers?: Record<string, string> }) | null {
  if (bucket === null || bucket.level >= amount) return null;
  const who = scope === 'key' ? '이 API 키 / this API key' : '이 조직 / this organization';
  const unit = kind === 'requests' ? 'RPM' : 'TPM';
  const limit =
    scope === 'key'
      ? kind === 'requests'
        ? limits.keyRequests
        : limits.keyTokens
      : kind === 'requests'
        ? limits.organizationRequests
        : limits.organizationTokens;
  if (amount > bucket.capacity) {
    // it would never fit: waiting does not help, a smaller request does
    return {
      status: 429,
      code: 'rate_limit_exceeded',
      type: kind,
      message:
        `요청이 분당 토큰 한도보다 큽니다(${who}, ${unit} ${limit}, 요청 ${amount}): max_tokens를 줄이세요. / ` +
        `Request too large for ${scope === 'key' ? 'this key' : 'this organization'} on tokens per minute (TPM): ` +
        `limit ${limit}, requested ${amount}. Lower max_tokens.`,
    };
  }
  const waitMs = bucket.waitFor(amount);
  return {
    status: 429,
    code: 'rate_limit_exceeded',
    type: kind,
    retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)),
    message:
      `요청 한도를 넘었습니다(${who}, ${unit} ${limit}). ${resetText(waitMs)} 후 다시 시도하세요. / ` +
      `Rate limit reached for ${scope === 'key' ? 'this key' : 'this organization'} on ` +
      `${kind === 'requests' ? 'requests per minute (RPM)' : 'tokens per minute (TPM)'}: limit ${limit}, ` +
      `requested ${amount}. Please try again in ${resetText(waitMs)}.`,
  };
}

/** OpenAI's `x-ratelimit-*` headers: of each kind, the tighter of the key's and the organisation's. */
export function headersOf(
  keyRequests: Bucket | null,
  orgRequests: Bucket | null,
  keyTokens: Bucket | null,
  orgTokens: Bucket | null,
): Record<string, string> {
  const headers: Record<string, string> = {};
  const requests = tighter(keyRequests, orgRequests);
  if (requests !== null) {
    headers['x-ratelimit-limit-requests'] = String(requests.capacity);
    headers['x-ratelimit-remaining-requests'] = String(Math.max(0, Math.floor(requests.level)));
    headers['x-ratelimit-reset-requests'] = resetText(requests.untilFull());
  }
  const tokens = tighter(keyTokens, orgTokens);
  if (tokens !== null) {
    headers['x-ratelimit-limit-tokens'] = String(tokens.capacity);
    headers['x-ratelimit-remaining-tokens'] = String(Math.max(0, Math.floor(tokens.level)));
    headers['x-ratelimit-reset-tokens'] = resetText(tokens.untilFull());
  }
  return headers;
}

/** The same headers from each bucket's capacity, what it limits, and its level now (`levels[i]`). */
export function headersOfLevels(
  buckets: readonly { capacity: number; scope: Scope; kind: Kind }[],
  levels: readonly number[],
): Record<string, string> {
  let keyRequests: Bucket | null = null;
  let orgRequests: Bucket | null = null;
  let keyTokens: Bucket | null = null;
  let orgTokens: Bucket | null = null;
  for (let i = 0; i < buckets.length; i++) {
    const use = buckets[i]!;
    const bucket = new Bucket(use.capacity, 0);
    bucket.level = levels[i]!;
    if (use.kind === 'requests') {
      if (use.scope === 'key') keyRequests = bucket;
      else orgRequests = bucket;
    } else if (use.scope === 'key') keyTokens = bucket;
    else orgTokens = bucket;
  }
  return headersOf(keyRequests, orgRequests, keyTokens, orgTokens);
}

function tighter(a: Bucket | null, b: Bucket | null): Bucket | null {
  if (a === null) return b;
  if (b === null) return a;
  return b.level < a.level ? b : a;
}
