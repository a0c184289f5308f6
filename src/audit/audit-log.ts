import { z } from 'zod';
import type { SqlExecutor, SqlValue } from '../storage/database.ts';
import { newId } from '../storage/ids.ts';
import { dateOrTimestamp, parseInput } from '../validation.ts';

/** Where a change came from: the admin API, an offline CLI command, or the hub itself (first-start seed). */
export type AuditSource = 'admin-api' | 'cli' | 'system';

export interface AuditEntryInput {
  /** `operator-token`, a user id, `system`, or `cli:<os user>` for offline commands. */
  actorId: string;
  actorTokenId?: string | null;
  source: AuditSource;
  /** `create`, `update`, `delete`, `revoke`, `reseal`, `import`, `seed`, `reset`, … */
  action: string;
  entityType: string;
  entityId: string;
  before?: unknown;
  after?: unknown;
  /** The request body, secrets removed: what was asked, beside what it did. */
  request?: unknown;
  requestId?: string | null;
}

/** What a service says of a change it makes: which thing, as it was and as it is now. */
export interface AuditedChange {
  entityId: string;
  before?: unknown;
  after?: unknown;
}

/**
 * Records a change inside the transaction that makes it, so the entry exists exactly when the change
 * does: an entry that cannot be written rolls the change back. Every mutating service method takes
 * one; the admin router makes it from who asks, what the route does, and the request.
 */
export type AuditTrail = (tx: SqlExecutor, change: AuditedChange) => Promise<void>;

export interface AuditEntry {
  id: string;
  createdAt: string;
  actorId: string;
  actorTokenId: string | null;
  source: AuditSource;
  action: string;
  entityType: string;
  entityId: string;
  before: unknown;
  after: unknown;
  request: unknown;
  requestId: string | null;
}

/**
 * Fields that hold a secret wherever they appear, and the shapes of the hub's own secrets wherever
 * they appear: neither ever reaches the audit log. What is kept is that there was one (`[redacted]`).
 */
const SECRET_FIELDS = new Set([
  'key',
  'token',
  'apiKey',
  'api_key',
  'apiKeySealed',
  'api_key_sealed',
  'secret',
]);
// Whole secrets only: their short public prefixes (`sk-kai-AbC123`) are how people tell keys apart.
const SECRET_VALUE = /^(sk-kai-|kaihub-pat-|kaihub-admin-)[A-Za-z0-9_-]{16,}/;
export const REDACTED = '[redacted]';

export function redactSecrets(value: unknown): unknown {
  if (typeof value === 'string') return SECRET_VALUE.test(value) ? REDACTED : value;
  if (Array.isArray(value)) return value.map(redactSecrets);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = SECRET_FIELDS.has(k) && v !== null && v !== undefined ? REDACTED : redactSecrets(v);
    }
    return out;
  }
  return value;
}

const json = (value: unknown): string | null =>
  value === undefined || value === null ? null : JSON.stringify(redactSecrets(value));

const auditQuery = z.strictObject({
  actorId: z.string().min(1).optional(),
  entityType: z.string().min(1).optional(),
  entityId: z.string().min(1).optional(),
  action: z.string().min(1).optional(),
  requestId: z.string().min(1).optional(),
  from: dateOrTimestamp.optional(),
  /** Exclusive. */
  to: dateOrTimestamp.optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

const COLUMNS = `id, created_at, actor_id, actor_token_id, source, action, entity_type, entity_id, before_json,
  after_json, request_json, request_id`;

function toEntry(r: Record<string, unknown>): AuditEntry {
  const parse = (text: unknown) => (typeof text === 'string' ? JSON.parse(text) : null);
  return {
    id: r.id as string,
    createdAt: new Date(Number(r.created_at)).toISOString(),
    actorId: r.actor_id as string,
    actorTokenId: (r.actor_token_id as string | null) ?? null,
    source: r.source as AuditSource,
    action: r.action as string,
    entityType: r.entity_type as string,
    entityId: r.entity_id as string,
    before: parse(r.before_json),
    after: parse(r.after_json),
    request: parse(r.request_json),
    requestId: (r.request_id as string | null) ?? null,
  };
}

/**
 * The audit log: appended to, never changed (the database refuses UPDATE and DELETE on it, see
 * migration 011), read with filters, newest first.
 */
export class AuditLog {
  constructor(private readonly db: SqlExecutor) {}

  async record(entry: AuditEntryInput, tx: SqlExecutor = this.db): Promise<void> {
    await tx.run(`INSERT INTO audit_log (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, [
      newId('aud'),
      Date.now(),
      entry.actorId,
      entry.actorTokenId ?? null,
      entry.source,
      entry.action,
      entry.entityType,
      entry.entityId,
      json(entry.before),
      json(entry.after),
      json(entry.request),
      entry.requestId ?? null,
    ]);
  }

  async query(input: unknown): Promise<AuditEntry[]> {
    const q = parseInput(auditQuery, input);
    const where: string[] = [];
    const params: SqlValue[] = [];
    const add = (sql: string, value: SqlValue | undefined) => {
      if (value === undefined) return;
      where.push(sql);
      params.push(value);
    };
    add('actor_id = ?', q.actorId);
    add('entity_type = ?', q.entityType);
    add('entity_id = ?', q.entityId);
    add('action = ?', q.action);
    add('request_id = ?', q.requestId);
    add('created_at >= ?', q.from);
    add('created_at < ?', q.to);
    const rows = await this.db.all<Record<string, unknown>>(
      `SELECT ${COLUMNS} FROM audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
        ORDER BY created_at DESC, id DESC LIMIT ${q.limit}`,
      params,
    );
    return rows.map(toEntry);
  }
}
