import { hash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { AuditTrail } from '../audit/audit-log.ts';
import { NotFoundError } from '../errors.ts';
import type { Database, SqlExecutor } from '../storage/database.ts';
import { newId } from '../storage/ids.ts';
import { parseInput } from '../validation.ts';
import {
  type RateLimitFields,
  rateLimitColumns,
  rateLimitFieldsOf,
  rateLimitsInput,
} from './rate-limit-fields.ts';

/** `sk-kai-` + 32 url-safe characters (192 random bits). Only the SHA-256 of the whole key is stored. */
const KEY_PREFIX = 'sk-kai-';
const PUBLIC_PREFIX_LENGTH = KEY_PREFIX.length + 6;

/** Every `/v1` call hashes its key: the one-shot `hash` costs ≈ 1.1 µs against createHash's ≈ 2.9. */
export function hashApiKey(key: string): string {
  return hash('sha256', key, 'hex');
}

const keyInput = z.strictObject({
  name: z.string().trim().min(1).max(200).default('default'),
  /** Product model ids this key may call; absent or null means every active product. */
  allowedModels: z.array(z.string().min(1)).min(1).max(1000).nullable().optional(),
  /** Requests and tokens per minute for this key (the operator's to set). */
  rateLimits: rateLimitsInput,
});

export interface ApiKey {
  id: string;
  organizationId: string;
  name: string;
  prefix: string;
  allowedModels: string[] | null;
  rateLimits: RateLimitFields;
  createdAt: string;
  revokedAt: string | null;
}

export interface CreatedApiKey extends ApiKey {
  /** The secret, shown once. */
  key: string;
}

const COLUMNS =
  'id, organization_id, name, prefix, allowed_models, created_at, revoked_at, requests_per_minute, tokens_per_minute';

function toApiKey(r: Record<string, unknown>): ApiKey {
  return {
    id: r.id as string,
    organizationId: r.organization_id as string,
    name: r.name as string,
    prefix: r.prefix as string,
    allowedModels: r.allowed_models ? (JSON.parse(r.allowed_models as string) as string[]) : null,
    rateLimits: rateLimitFieldsOf(r),
    createdAt: new Date(Number(r.created_at)).toISOString(),
    revokedAt:
      r.revoked_at === null || r.revoked_at === undefined
        ? null
        : new Date(Number(r.revoked_at)).toISOString(),
  };
}

export class ApiKeyService {
  /** Lets this replica's key cache forget a revoked key at once; other replicas poll. */
  onRevoke: (keyHash: string) => void = () => {};

  constructor(private readonly db: Database) {}

  async create(organizationId: string, input: unknown, trail: AuditTrail): Promise<CreatedApiKey> {
    const org = await this.db.get('SELECT id FROM organizations WHERE id = ?', [organizationId]);
    if (!org) throw new NotFoundError('organization', organizationId);
    const v = parseInput(keyInput, input ?? {});
    const key = KEY_PREFIX + randomBytes(24).toString('base64url');
    const id = newId('key');
    const prefix = key.slice(0, PUBLIC_PREFIX_LENGTH);
    return this.db.transaction(async (tx) => {
      await tx.run(
        `INSERT INTO api_keys (id, organization_id, name, prefix, key_hash, allowed_models, created_at, revoked_at,
           requests_per_minute, tokens_per_minute)
       VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)`,
        [
          id,
          organizationId,
          v.name,
          prefix,
          hashApiKey(key),
          v.allowedModels ? JSON.stringify(v.allowedModels) : null,
          Date.now(),
          ...rateLimitColumns(v.rateLimits),
        ],
      );
      const created = { ...(await this.get(id, tx)), key };
      await trail(tx, { entityId: id, after: created });
      return created;
    });
  }

  async list(organizationId: string): Promise<ApiKey[]> {
    const org = await this.db.get('SELECT id FROM organizations WHERE id = ?', [organizationId]);
    if (!org) throw new NotFoundError('organization', organizationId);
    const rows = await this.db.all(
      `SELECT ${COLUMNS} FROM api_keys WHERE organization_id = ? ORDER BY created_at, id`,
      [organizationId],
    );
    return rows.map(toApiKey);
  }

  async get(id: string, q: SqlExecutor = this.db): Promise<ApiKey> {
    const row = await q.get(`SELECT ${COLUMNS} FROM api_keys WHERE id = ?`, [id]);
    if (!row) throw new NotFoundError('key', id);
    return toApiKey(row);
  }

  /** Idempotent: revoking a revoked key keeps its first revocation time. */
  async revoke(id: string, trail: AuditTrail): Promise<ApiKey> {
    const { revoked, keyHash } = await this.db.transaction(async (tx) => {
      const row = await tx.get<{ key_hash: string }>('SELECT key_hash FROM api_keys WHERE id = ?', [id]);
      if (!row) throw new NotFoundError('key', id);
      const before = await this.get(id, tx);
      await tx.run('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL', [
        Date.now(),
        id,
      ]);
      const after = await this.get(id, tx);
      await trail(tx, { entityId: id, before, after });
      return { revoked: after, keyHash: row.key_hash };
    });
    // Only once committed: a revocation rolled back must not be forgotten by the cache alone.
    this.onRevoke(keyHash);
    return revoked;
  }
}
