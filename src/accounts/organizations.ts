import { z } from 'zod';
import { ConflictError, NotFoundError } from '../errors.ts';
import { type Database, isUniqueViolation } from '../storage/database.ts';
import { newId } from '../storage/ids.ts';
import { parseInput } from '../validation.ts';

export const ORGANIZATION_CLASSES = ['sme', 'midsize', 'large', 'public', 'university', 'research'] as const;

const organizationInput = z.strictObject({
  name: z.string().trim().min(1).max(200),
  class: z.enum(ORGANIZATION_CLASSES),
  businessNumber: z
    .string()
    .regex(/^\d{3}-?\d{2}-?\d{5}$/, '사업자등록번호 형식: 000-00-00000')
    .nullable()
    .optional(),
  status: z.enum(['active', 'suspended']).optional(),
});

export interface Organization {
  id: string;
  name: string;
  class: string;
  businessNumber: string | null;
  status: string;
  createdAt: string;
  updatedAt: string;
}

const COLUMNS = 'id, name, class, business_number, status, created_at, updated_at';

function toOrganization(r: Record<string, unknown>): Organization {
  return {
    id: r.id as string,
    name: r.name as string,
    class: r.class as string,
    businessNumber: (r.business_number as string | null) ?? null,
    status: r.status as string,
    createdAt: new Date(Number(r.created_at)).toISOString(),
    updatedAt: new Date(Number(r.updated_at)).toISOString(),
  };
}

export class OrganizationService {
  /** Suspending an organisation must reach the key cache, which holds its status. */
  onChange: (organizationId: string) => void = () => {};

  constructor(private readonly db: Database) {}

  async create(input: unknown): Promise<Organization> {
    const v = parseInput(organizationInput, input);
    const id = newId('org');
    const now = Date.now();
    try {
      await this.db.run(`INSERT INTO organizations (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)`, [
        id,
        v.name,
        v.class,
        v.businessNumber ?? null,
        v.status ?? 'active',
        now,
        now,
      ]);
    } catch (error) {
      if (isUniqueViolation(error)) throw new ConflictError('name', 'an organization with this name exists');
      throw error;
    }
    return this.get(id);
  }

  async list(): Promise<Organization[]> {
    return (await this.db.all(`SELECT ${COLUMNS} FROM organizations ORDER BY created_at, id`)).map(
      toOrganization,
    );
  }

  async get(id: string): Promise<Organization> {
    const row = await this.db.get(`SELECT ${COLUMNS} FROM organizations WHERE id = ?`, [id]);
    if (!row) throw new NotFoundError('organization', id);
    return toOrganization(row);
  }

  async update(id: string, input: unknown): Promise<Organization> {
    const current = await this.get(id);
    const v = parseInput(organizationInput.partial(), input);
    const next = {
      name: v.name ?? current.name,
      class: v.class ?? current.class,
      businessNumber: v.businessNumber === undefined ? current.businessNumber : v.businessNumber,
      status: v.status ?? current.status,
    };
    try {
      await this.db.run(
        'UPDATE organizations SET name = ?, class = ?, business_number = ?, status = ?, updated_at = ? WHERE id = ?',
        [next.name, next.class, next.businessNumber, next.status, Date.now(), id],
      );
    } catch (error) {
      if (isUniqueViolation(error)) throw new ConflictError('name', 'an organization with this name exists');
      throw error;
    }
    this.onChange(id);
    return this.get(id);
  }
}
