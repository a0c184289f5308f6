import { z } from 'zod';
import type { AuditTrail } from '../audit/audit-log.ts';
import { ConflictError, NotFoundError, ValidationError } from '../errors.ts';
import { type Database, isUniqueViolation, type SqlExecutor } from '../storage/database.ts';
import { newId } from '../storage/ids.ts';
import { parseInput } from '../validation.ts';
import { ROLES, type Role } from './roles.ts';

const userInput = z.strictObject({
  name: z.string().trim().min(1).max(200),
  email: z
    .email()
    .max(320)
    .transform((e) => e.toLowerCase()),
  status: z.enum(['active', 'suspended']).optional(),
});

const membershipInput = z.strictObject({
  role: z.enum(ROLES),
  supplierId: z.string().min(1).nullable().optional(),
  organizationId: z.string().min(1).nullable().optional(),
});

export interface Membership {
  id: string;
  userId: string;
  role: Role;
  /** Set for supplier_admin. */
  supplierId: string | null;
  /** Set for org_admin and org_member. */
  organizationId: string | null;
  createdAt: string;
}

export interface User {
  id: string;
  name: string;
  email: string;
  /** A suspended user's tokens stop working at once. */
  status: string;
  memberships: Membership[];
  createdAt: string;
  updatedAt: string;
}

const iso = (ms: unknown) => new Date(Number(ms)).toISOString();
const USER_COLUMNS = 'id, name, email, status, created_at, updated_at';
const MEMBERSHIP_COLUMNS = 'id, user_id, role, supplier_id, organization_id, created_at';

function toMembership(r: Record<string, unknown>): Membership {
  return {
    id: r.id as string,
    userId: r.user_id as string,
    role: r.role as Role,
    supplierId: (r.supplier_id as string | null) ?? null,
    organizationId: (r.organization_id as string | null) ?? null,
    createdAt: iso(r.created_at),
  };
}

/** Users and their memberships: a role, scoped to the one supplier or organisation it concerns. */
export class UserService {
  constructor(private readonly db: Database) {}

  async create(input: unknown, trail: AuditTrail): Promise<User> {
    const v = parseInput(userInput, input);
    const id = newId('usr');
    const now = Date.now();
    return this.db.transaction(async (tx) => {
      await this.unique(() =>
        tx.run(`INSERT INTO users (${USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)`, [
          id,
          v.name,
          v.email,
          v.status ?? 'active',
          now,
          now,
        ]),
      );
      const after = await this.get(id, tx);
      await trail(tx, { entityId: id, after });
      return after;
    });
  }

  async list(): Promise<User[]> {
    const rows = await this.db.all(`SELECT ${USER_COLUMNS} FROM users ORDER BY created_at, id`);
    const memberships = await this.db.all(
      `SELECT ${MEMBERSHIP_COLUMNS} FROM memberships ORDER BY created_at, id`,
    );
    const byUser = new Map<string, Membership[]>();
    for (const m of memberships.map(toMembership)) {
      const list = byUser.get(m.userId) ?? [];
      list.push(m);
      byUser.set(m.userId, list);
    }
    return rows.map((r) => this.toUser(r, byUser.get(r.id as string) ?? []));
  }

  async get(id: string, q: SqlExecutor = this.db): Promise<User> {
    const row = await q.get(`SELECT ${USER_COLUMNS} FROM users WHERE id = ?`, [id]);
    if (!row) throw new NotFoundError('user', id);
    return this.toUser(row, await this.memberships(id, q));
  }

  async update(id: string, input: unknown, trail: AuditTrail): Promise<User> {
    await this.get(id);
    const v = parseInput(userInput.partial(), input);
    return this.db.transaction(async (tx) => {
      const before = await this.get(id, tx);
      await this.unique(() =>
        tx.run('UPDATE users SET name = ?, email = ?, status = ?, updated_at = ? WHERE id = ?', [
          v.name ?? before.name,
          v.email ?? before.email,
          v.status ?? before.status,
          Date.now(),
          id,
        ]),
      );
      const after = await this.get(id, tx);
      await trail(tx, { entityId: id, before, after });
      return after;
    });
  }

  async memberships(userId: string, q: SqlExecutor = this.db): Promise<Membership[]> {
    const rows = await q.all(
      `SELECT ${MEMBERSHIP_COLUMNS} FROM memberships WHERE user_id = ? ORDER BY created_at, id`,
      [userId],
    );
    return rows.map(toMembership);
  }

  async getMembership(id: string, q: SqlExecutor = this.db): Promise<Membership> {
    const row = await q.get(`SELECT ${MEMBERSHIP_COLUMNS} FROM memberships WHERE id = ?`, [id]);
    if (!row) throw new NotFoundError('membership', id);
    return toMembership(row);
  }

  /** A role names its tenant exactly when it has one: supplier_admin a supplier, org roles an organisation. */
  async addMembership(userId: string, input: unknown, trail: AuditTrail): Promise<Membership> {
    await this.get(userId);
    const v = parseInput(membershipInput, input);
    const supplierId = v.supplierId ?? null;
    const organizationId = v.organizationId ?? null;
    const needsSupplier = v.role === 'supplier_admin';
    const needsOrganization = v.role === 'org_admin' || v.role === 'org_member';
    const problems: { field: string; message: string }[] = [];
    if (needsSupplier && !supplierId)
      problems.push({ field: 'supplierId', message: `required for ${v.role}` });
    if (!needsSupplier && supplierId)
      problems.push({ field: 'supplierId', message: `not used by ${v.role}` });
    if (needsOrganization && !organizationId)
      problems.push({ field: 'organizationId', message: `required for ${v.role}` });
    if (!needsOrganization && organizationId)
      problems.push({ field: 'organizationId', message: `not used by ${v.role}` });
    if (problems.length > 0) throw new ValidationError(problems);
    const id = newId('mem');
    return this.db.transaction(async (tx) => {
      if (supplierId && !(await tx.get('SELECT id FROM suppliers WHERE id = ?', [supplierId])))
        throw ValidationError.of('supplierId', 'no such supplier');
      if (organizationId && !(await tx.get('SELECT id FROM organizations WHERE id = ?', [organizationId])))
        throw ValidationError.of('organizationId', 'no such organization');
      try {
        await tx.run(`INSERT INTO memberships (${MEMBERSHIP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)`, [
          id,
          userId,
          v.role,
          supplierId,
          organizationId,
          Date.now(),
        ]);
      } catch (error) {
        if (isUniqueViolation(error)) throw new ConflictError('role', 'the user already has this role here');
        throw error;
      }
      const after = await this.getMembership(id, tx);
      await trail(tx, { entityId: id, after });
      return after;
    });
  }

  /** Memberships are current facts, not history: removing one deletes it (the audit log keeps it). */
  async removeMembership(id: string, trail: AuditTrail): Promise<Membership> {
    return this.db.transaction(async (tx) => {
      const before = await this.getMembership(id, tx);
      await tx.run('DELETE FROM memberships WHERE id = ?', [id]);
      await trail(tx, { entityId: id, before });
      return before;
    });
  }

  private toUser(r: Record<string, unknown>, memberships: Membership[]): User {
    return {
      id: r.id as string,
      name: r.name as string,
      email: r.email as string,
      status: r.status as string,
      memberships,
      createdAt: iso(r.created_at),
      updatedAt: iso(r.updated_at),
    };
  }

  private async unique(write: () => Promise<unknown>): Promise<void> {
    try {
      await write();
    } catch (error) {
      if (isUniqueViolation(error)) throw new ConflictError('email', 'a user with this e-mail exists');
      throw error;
    }
  }
}

/**
 * Fails on the first of `userIds` that has no evaluator membership: those a programme or a compute
 * call may assign to review. One query for the whole list (up to 200 ids).
 */
export async function requireEvaluators(tx: SqlExecutor, userIds: readonly string[]): Promise<void> {
  const ids = [...new Set(userIds)];
  if (ids.length === 0) return;
  const rows = await tx.all<{ user_id: string }>(
    `SELECT DISTINCT user_id FROM memberships WHERE role = 'evaluator' AND user_id IN (${ids.map(() => '?').join(', ')})`,
    ids,
  );
  const evaluators = new Set(rows.map((r) => r.user_id));
  for (const [i, userId] of userIds.entries())
    if (!evaluators.has(userId))
      throw ValidationError.of(`evaluatorIds.${i}`, `${userId} is not a user with the evaluator role`);
}
