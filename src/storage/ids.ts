import { randomFillSync } from 'node:crypto';

/**
 * Random bytes for ids, read from the CSPRNG 4 KiB at a time: the journal applier makes three ids a
 * usage record (its ledger transaction and entries), and one `randomBytes(10)` each was 6 % of its time.
 * Ids are identifiers, not secrets; secrets (keys, tokens) take their own `randomBytes`.
 */
const pool = Buffer.allocUnsafeSlow(4096);
let poolOffset = pool.length;

function randomPart(bytes: number, encoding: 'base64url' | 'hex'): string {
  if (poolOffset + bytes > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const text = pool.toString(encoding, poolOffset, poolOffset + bytes);
  poolOffset += bytes;
  return text;
}

/**
 * `org_0mhx3k2p9a7Qk1f…`: a readable prefix that names the kind, then a time part so ids sort by
 * creation, then 80 random bits so replicas never collide without talking to each other.
 */
export function newId(prefix: string): string {
  return `${prefix}_${Date.now().toString(36).padStart(9, '0')}${randomPart(10, 'base64url')}`;
}

/**
 * `req_` and 32 hex digits, as clients have always seen them — 48 bits of milliseconds first, then 80
 * random bits. Request ids key `usage_events` and the ledger's charges, so ids in time order make each
 * insert land at the right edge of those indexes: with random ids every record of a batch dirtied a
 * page of its own, and applying a record cost 40 µs at 20,000 rows and 66 µs at 100,000 (flat 34 µs in
 * time order; docs/benchmarks.md).
 */
export function newRequestId(): string {
  return `req_${Date.now().toString(16).padStart(12, '0')}${randomPart(10, 'hex')}`;
}
