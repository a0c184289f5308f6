import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { AuditTrail } from '../audit/audit-log.ts';
import { NotFoundError } from '../errors.ts';
import { DAY_MS } from '../kst.ts';
import type { Database, SqlExecutor } from '../storage/database.ts';
import { newId } from '../storage/ids.ts';
import { parseInput } from '../validation.ts';
import type { Principal } from './roles.ts';

/**
 * `kaihub-pat-` + 32 url-safe characters (192 random bits): a person's bearer token for /admin/v1 and
 * the CLI. Only its SHA-256 is stored; the token itself is shown once, when it is created.
 */
export const PERSONAL_TOKEN_PREFIX = 'kaihub-pat-';
const PUBLIC_PREFIX_LENGTH = PERSONAL_TOKEN_PREFIX.length + 6;
/** Writing last use on every request would make every admin read a write; once a minute says enough. */
const LAST_USED_RESOLUTION_MS = 60_000;

const tokenInput = z.strictObject({
  name: z.string().trim().min(1).max(200).default('default'),
  /** Every token expires: 90 days unless asked otherwise, at most ten years. */
  expiresInDays: z.number().int().min(1).max(3650).default(90),
});

export interface PersonalToken {
  id: string;
  userId: string;
  name: string;
  prefix: string;
  createdAt: string;
  expiresAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

export interface CreatedPersonalToken extends PersonalToken {
  /** The secret, shown once. */
  token: string;
}

const COLUMNS = 'id, user_id, name, prefix, created_at, expires_at, last_used_at, revoked_at';
const iso = (ms: unknown) => (ms === null || ms === undefined ? null : new Date(Number(ms)).toISOString());

function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

function toToken(r: Record<string, unknown>): PersonalToken {
  return {
    id: r.id as string,
    userId: r.user_id as string,
    name: r.name as string,
    prefix: r.prefix as string,
    createdAt: iso(r.created_at)!,
    expiresAt: iso(r.expires_at)!,
    lastUsedAt: iso(r.last_used_at),
    revokedAt: iso(r.revoked_at),
  };
}

export class PersonalTokenService {
  constructor(private readonly db: Database) {}

  async create(userId: string, input: unknown, trail: AuditTrail): Promise<CreatedPersonalToken> {
    if (!(await this.db.get('SELECT id FROM users WHERE id = ?', [userId])))
      throw new NotFoundError('user', userId);
    const v = parseInput(tokenInput, input ?? {});
    const token = PERSONAL_TOKEN_PREFIX + randomBytes(24).toString('base64url');
    const id = newId('pat');
    const now = Date.now();
    return this.db.transaction(async (tx) => {
      await tx.run(
        `INSERT INTO personal_access_tokens (id, user_id, name, prefix, token_hash, created_at, expires_at,
         last_used_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL)`,
        [
          id,
          userId,
          v.name,
          token.slice(0, PUBLIC_PREFIX_LENGTH),
          hashToken(token),
          now,
          now + v.expiresInDays * DAY_MS,
        ],
      );
      const created = { ...(await this.get(id, tx)), token };
      await trail(tx, { entityId: id, after: created });
      return created;
    });
  }

  async list(userId: string): Promise<PersonalToken[]> {
    if (!(await this.db.get('SELECT id FROM users WHERE id = ?', [userId])))
      throw new NotFoundError('user', userId);
    const rows = await this.db.all(
      `SELECT ${COLUMNS} FROM personal_access_tokens WHERE user_id = ? ORDER BY created_at, id`,
      [userId],
    );
    return rows.map(toToken);
  }

  async get(id: string, q: SqlExecutor = this.db): Promise<PersonalToken> {
    const row = await q.get(`SELECT ${COLUMNS} FROM personal_access_tokens WHERE id = ?`, [id]);
    if (!row) throw new NotFoundError('token', id);
    return toToken(row);
  }

  /** Idempotent: revoking a revoked token keeps its first revocation time. */
  async revoke(id: string, trail: AuditTrail): Promise<PersonalToken> {
    return this.db.transaction(async (tx) => {
      const before = await this.get(id, tx);
      await tx.run('UPDATE personal_access_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL', [
        Date.now(),
        id,
      ]);
      const after = await this.get(id, tx);
      await trail(tx, { entityId: id, before, after });
      return after;
    });
  }

  /**
   * The principal a presented token stands for: its user with the union of their memberships.
   * Undefined for an unknown, revoked or expired token, or a suspended user. Read from the database
   * on every admin request, so a revocation or a changed membership applies to the next request.
   */
  async principalFor(token: string): Promise<Principal | undefined> {
    const now = Date.now();
    const row = await this.db.get<Record<string, unknown>>(
      `SELECT t.id, t.user_id, t.last_used_at FROM personal_access_tokens t JOIN users u ON u.id = t.user_id
        WHERE t.token_hash = ? AND t.revoked_at IS NULL AND t.expires_at > ? AND u.status = 'active'`,
      [hashToken(token), now],
    );
    if (!row) return undefined;
    const tokenId = row.id as string;
    const userId = row.user_id as string;
    if (row.last_used_at === null || now - Number(row.last_used_at) > LAST_USED_RESOLUTION_MS) {
      await this.db.run('UPDATE personal_access_tokens SET last_used_at = ? WHERE id = ?', [now, tokenId]);
    }
    const memberships = await this.db.all<{
      role: string;
      supplier_id: string | null;
      organization_id: string | null;
    }>('SELECT role, supplier_id, organization_id FROM memberships WHERE user_id = ?', [userId]);
    const principal = {
      actorId: userId,
      userId,
      tokenId,
      operator: false,
      evaluator: false,
      supplierAdminOf: new Set<string>(),
      orgAdminOf: new Set<string>(),
      orgMemberOf: new Set<string>(),
    };
    for (const m of memberships) {
      if (m.role === 'operator') principal.operator = true;
      else if (m.role === 'evaluator') principal.evaluator = true;
      else if (m.role === 'supplier_admin' && m.supplier_id) principal.supplierAdminOf.add(m.supplier_id);
      else if (m.role === 'org_admin' && m.organization_id) principal.orgAdminOf.add(m.organization_id);
      else if (m.role === 'org_member' && m.organization_id) principal.orgMemberOf.add(m.organization_id);
    }
    return principal;
  }
}
