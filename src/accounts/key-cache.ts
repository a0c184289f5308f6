import type { Database } from '../storage/database.ts';
import { hashApiKey } from './api-keys.ts';

/** Who is calling: what the request path needs about a key, resolved from memory on the hot path. */
export interface Caller {
  keyId: string;
  organizationId: string;
  organizationName: string;
  organizationClass: string;
  /** null: every active product. */
  allowedModels: ReadonlySet<string> | null;
  /** The organisation's fallback chains by requested model, overriding the product's; null: none. */
  fallbackModels: Readonly<Record<string, readonly string[]>> | null;
  /** Calls the organisation may have in progress on one replica; null: the hub's default. */
  maxConcurrentRequests: number | null;
  /** Requests and tokens per minute the operator allows this key and its organisation; null: none. */
  rateLimits?: CallerRateLimits | null;
}

/** Per minute; null: no limit of that kind (limits/rate-limits.ts). */
export interface CallerRateLimits {
  keyRequests: number | null;
  keyTokens: number | null;
  organizationRequests: number | null;
  organizationTokens: number | null;
}

const positiveOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

function rateLimitsOf(row: Record<string, unknown>): CallerRateLimits | null {
  const limits = {
    keyRequests: positiveOrNull(row.key_rpm),
    keyTokens: positiveOrNull(row.key_tpm),
    organizationRequests: positiveOrNull(row.org_rpm),
    organizationTokens: positiveOrNull(row.org_tpm),
  };
  const any =
    limits.keyRequests !== null ||
    limits.keyTokens !== null ||
    limits.organizationRequests !== null ||
    limits.organizationTokens !== null;
  return any ? limits : null;
}

interface Entry {
  caller: Caller | null;
  expiresAt: number;
}

const POSITIVE_TTL_MS = 60_000;
// Unknown keys are remembered briefly so a flood of bad keys does not become a flood of queries.
const NEGATIVE_TTL_MS = 2_000;
const MAX_ENTRIES = 100_000;
// Clocks of replicas differ a little; re-reading a few seconds of revocations costs nothing.
const CLOCK_SKEW_MS = 5_000;

/**
 * Maps SHA-256(key) → caller. A revocation anywhere reaches this cache within `pollIntervalMs`: a poll
 * reads keys revoked and organisations changed since the last poll and evicts them.
 */
export class KeyCache {
  private readonly entries = new Map<string, Entry>();
  private watermark = Date.now();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: Database,
    private readonly onError: (error: unknown) => void = () => {},
  ) {}

  /** Resolves a presented key; undefined when unknown, revoked, or its organisation is not active. */
  async authenticate(key: string): Promise<Caller | undefined> {
    const hash = hashApiKey(key);
    const now = Date.now();
    const hit = this.entries.get(hash);
    if (hit && hit.expiresAt > now) return hit.caller ?? undefined;
    const caller = await this.load(hash);
    if (this.entries.size >= MAX_ENTRIES) this.entries.clear();
    this.entries.set(hash, { caller, expiresAt: now + (caller ? POSITIVE_TTL_MS : NEGATIVE_TTL_MS) });
    return caller ?? undefined;
  }

  evictHash(hash: string): void {
    this.entries.delete(hash);
  }

  /**
   * Forgets the organisation's keys, and every remembered unknown key too: a refusal may have been
   * for this organisation's suspension, which may just have been lifted.
   */
  evictOrganization(organizationId: string): void {
    for (const [hash, entry] of this.entries) {
      if (entry.caller === null || entry.caller.organizationId === organizationId) this.entries.delete(hash);
    }
  }

  start(pollIntervalMs = 500): void {
    this.timer = setInterval(() => {
      this.poll().catch(this.onError);
    }, pollIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  async poll(): Promise<void> {
    const since = this.watermark - CLOCK_SKEW_MS;
    this.watermark = Date.now();
    const revoked = await this.db.all<{ key_hash: string }>(
      'SELECT key_hash FROM api_keys WHERE revoked_at >= ?',
      [since],
    );
    for (const r of revoked) this.entries.delete(r.key_hash);
    const orgs = await this.db.all<{ id: string }>('SELECT id FROM organizations WHERE updated_at >= ?', [
      since,
    ]);
    for (const o of orgs) this.evictOrganization(o.id);
  }

  private async load(hash: string): Promise<Caller | null> {
    const row = await this.db.get<Record<string, unknown>>(
      `SELECT k.id, k.organization_id, k.allowed_models, o.name, o.class, o.fallback_models, o.max_concurrent_requests,
              k.requests_per_minute AS key_rpm, k.tokens_per_minute AS key_tpm,
              o.requests_per_minute AS org_rpm, o.tokens_per_minute AS org_tpm
         FROM api_keys k JOIN organizations o ON o.id = k.organization_id
        WHERE k.key_hash = ? AND k.revoked_at IS NULL AND o.status = 'active'`,
      [hash],
    );
    if (!row) return null;
    return {
      keyId: row.id as string,
      organizationId: row.organization_id as string,
      organizationName: row.name as string,
      organizationClass: row.class as string,
      allowedModels: row.allowed_models
        ? new Set(JSON.parse(row.allowed_models as string) as string[])
        : null,
      fallbackModels: row.fallback_models
        ? (JSON.parse(row.fallback_models as string) as Record<string, string[]>)
        : null,
      maxConcurrentRequests:
        row.max_concurrent_requests === null || row.max_concurrent_requests === undefined
          ? null
          : Number(row.max_concurrent_requests),
      rateLimits: rateLimitsOf(row),
    };
  }
}
