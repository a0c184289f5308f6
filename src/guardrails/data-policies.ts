import { z } from 'zod';
import { ORGANIZATION_CLASSES } from '../accounts/organizations.ts';
import type { AuditTrail } from '../audit/audit-log.ts';
import { ConflictError, NotFoundError, ValidationError } from '../errors.ts';
import type { Database, SqlExecutor, SqlValue } from '../storage/database.ts';
import { newId } from '../storage/ids.ts';
import { parseInput } from '../validation.ts';
import { PII_TYPES, type PiiType } from './pii/types.ts';

/**
 * What the guard does with personal data it finds, in order of strictness: when several policies
 * apply to a call, the strictest wins for each type. `pseudonymize` ranks below `mask` because the
 * client gets the values back; for the upstream the two are the same.
 */
export const PII_MODES = ['off', 'detect', 'pseudonymize', 'mask', 'block'] as const;
export type PiiMode = (typeof PII_MODES)[number];

/** What a policy is attached to; every one that matches a call applies (the strictest wins). */
export const POLICY_SCOPES = ['organization_class', 'organization', 'programme', 'product'] as const;
export type PolicyScope = (typeof POLICY_SCOPES)[number];

export const RESIDENCY_RULES = ['any', 'domestic'] as const;
export type ResidencyRule = (typeof RESIDENCY_RULES)[number];

/** The settings row whose value changes with every policy write: other replicas poll it. */
export const DATA_POLICY_REVISION_SETTING = 'data_policy_revision';

const terms = {
  piiMode: z.enum(PII_MODES),
  /** null or absent: every type. */
  piiTypes: z.array(z.enum(PII_TYPES)).min(1).max(PII_TYPES.length).nullable(),
  residency: z.enum(RESIDENCY_RULES),
  certifiedOnly: z.boolean(),
};

const createInput = z.strictObject({
  scope: z.enum(POLICY_SCOPES),
  scopeId: z.string().trim().min(1).max(200),
  piiMode: terms.piiMode.default('off'),
  piiTypes: terms.piiTypes.optional(),
  residency: terms.residency.default('any'),
  certifiedOnly: terms.certifiedOnly.default(false),
});

const updateInput = z.strictObject({
  piiMode: terms.piiMode.optional(),
  piiTypes: terms.piiTypes.optional(),
  residency: terms.residency.optional(),
  certifiedOnly: terms.certifiedOnly.optional(),
});

const listQuery = z.strictObject({
  scope: z.enum(POLICY_SCOPES).optional(),
  scopeId: z.string().min(1).optional(),
});

export interface DataPolicy {
  id: string;
  scope: PolicyScope;
  scopeId: string;
  piiMode: PiiMode;
  /** null: every type. */
  piiTypes: PiiType[] | null;
  residency: ResidencyRule;
  certifiedOnly: boolean;
  createdAt: string;
  updatedAt: string;
}

const COLUMNS = 'id, scope, scope_id, pii_mode, pii_types, residency, certified_only, created_at, updated_at';

export function toDataPolicy(r: Record<string, unknown>): DataPolicy {
  return {
    id: r.id as string,
    scope: r.scope as PolicyScope,
    scopeId: r.scope_id as string,
    piiMode: r.pii_mode as PiiMode,
    piiTypes: r.pii_types ? (JSON.parse(r.pii_types as string) as PiiType[]) : null,
    residency: r.residency as ResidencyRule,
    certifiedOnly: Number(r.certified_only) === 1,
    createdAt: new Date(Number(r.created_at)).toISOString(),
    updatedAt: new Date(Number(r.updated_at)).toISOString(),
  };
}

/** Every policy, for the snapshot the request path reads. */
export async function allDataPolicies(db: SqlExecutor): Promise<DataPolicy[]> {
  const rows = await db.all(`SELECT ${COLUMNS} FROM data_policies ORDER BY scope, scope_id`);
  return rows.map(toDataPolicy);
}

/** Sorted and without repeats, so that an equal set is stored (and audited) the same way. */
function typesColumn(types: readonly PiiType[] | null | undefined): string | null {
  if (!types) return null;
  return JSON.stringify(PII_TYPES.filter((t) => types.includes(t)));
}

/**
 * Data policies (docs/guardrails.md): the operator's rules for personal data and residency, per
 * organisation class, organisation, programme or product. Each change is audited in its transaction
 * and bumps a revision that every replica's snapshot (policy-snapshot.ts) polls.
 */
export class DataPolicyService {
  /** After a committed change: this replica's snapshot reads the policies again. */
  onChange: () => Promise<void> | void = () => {};

  constructor(private readonly db: Database) {}

  async list(query: unknown): Promise<DataPolicy[]> {
    const q = parseInput(listQuery, query);
    const where: string[] = [];
    const params: SqlValue[] = [];
    if (q.scope) {
      where.push('scope = ?');
      params.push(q.scope);
    }
    if (q.scopeId) {
      where.push('scope_id = ?');
      params.push(q.scopeId);
    }
    const rows = await this.db.all(
      `SELECT ${COLUMNS} FROM data_policies ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
        ORDER BY scope, scope_id`,
      params,
    );
    return rows.map(toDataPolicy);
  }

  async get(id: string, db: SqlExecutor = this.db): Promise<DataPolicy> {
    const row = await db.get(`SELECT ${COLUMNS} FROM data_policies WHERE id = ?`, [id]);
    if (!row) throw new NotFoundError('data policy', id);
    return toDataPolicy(row);
  }

  async create(input: unknown, trail: AuditTrail): Promise<DataPolicy> {
    const v = parseInput(createInput, input);
    const id = newId('dpol');
    const now = Date.now();
    const policy = await this.db.transaction(async (tx) => {
      await requireScopeTarget(tx, v.scope, v.scopeId);
      const existing = await tx.get<{ id: string }>(
        'SELECT id FROM data_policies WHERE scope = ? AND scope_id = ?',
        [v.scope, v.scopeId],
      );
      if (existing)
        throw new ConflictError(
          'scopeId',
          `${v.scope} ${v.scopeId} already has a data policy (${existing.id}): change that one`,
          `이 대상에는 이미 데이터 정책(${existing.id})이 있습니다. 그 정책을 수정하세요.`,
        );
      await tx.run(`INSERT INTO data_policies (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, [
        id,
        v.scope,
        v.scopeId,
        v.piiMode,
        typesColumn(v.piiTypes),
        v.residency,
        v.certifiedOnly ? 1 : 0,
        now,
        now,
      ]);
      await bumpRevision(tx);
      const after = await this.get(id, tx);
      await trail(tx, { entityId: id, after });
      return after;
    });
    await this.onChange();
    return policy;
  }

  async update(id: string, input: unknown, trail: AuditTrail): Promise<DataPolicy> {
    const v = parseInput(updateInput, input);
    const policy = await this.db.transaction(async (tx) => {
      const before = await this.get(id, tx);
      await tx.run(
        `UPDATE data_policies SET pii_mode = ?, pii_types = ?, residency = ?, certified_only = ?, updated_at = ?
          WHERE id = ?`,
        [
          v.piiMode ?? before.piiMode,
          v.piiTypes === undefined ? typesColumn(before.piiTypes) : typesColumn(v.piiTypes),
          v.residency ?? before.residency,
          (v.certifiedOnly ?? before.certifiedOnly) ? 1 : 0,
          Date.now(),
          id,
        ],
      );
      await bumpRevision(tx);
      const after = await this.get(id, tx);
      await trail(tx, { entityId: id, before, after });
      return after;
    });
    await this.onChange();
    return policy;
  }

  async remove(id: string, trail: AuditTrail): Promise<void> {
    await this.db.transaction(async (tx) => {
      const before = await this.get(id, tx);
      await tx.run('DELETE FROM data_policies WHERE id = ?', [id]);
      await bumpRevision(tx);
      await trail(tx, { entityId: id, before });
    });
    await this.onChange();
  }
}

async function bumpRevision(tx: SqlExecutor): Promise<void> {
  await tx.run(
    `INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)
     ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
    [DATA_POLICY_REVISION_SETTING, newId('rev'), Date.now()],
  );
}

/** A policy must name something that exists: a typo would otherwise protect nobody, silently. */
async function requireScopeTarget(tx: SqlExecutor, scope: PolicyScope, scopeId: string): Promise<void> {
  if (scope === 'organization_class') {
    if (!(ORGANIZATION_CLASSES as readonly string[]).includes(scopeId))
      throw ValidationError.of('scopeId', `one of ${ORGANIZATION_CLASSES.join(', ')}`);
    return;
  }
  const table =
    scope === 'organization' ? 'organizations' : scope === 'programme' ? 'programmes' : 'products';
  const row = await tx.get(`SELECT id FROM ${table} WHERE id = ?`, [scopeId]);
  if (!row) throw ValidationError.of('scopeId', `no such ${scope}`);
}
