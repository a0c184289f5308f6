import { ForbiddenError, NotFoundError } from '../errors.ts';
import {
  mayManageOrganization,
  mayManageSupplier,
  mayReadOrganization,
  mayReadUser,
  type Principal,
} from './roles.ts';

/**
 * The tenant checks every /admin/v1 route makes (docs/roles.md). What the caller may not see is
 * answered exactly as a nonexistent id would be (NotFoundError), so that its existence does not
 * leak; what the caller may see but not change is a ForbiddenError.
 */

export function requireReadOrganization(p: Principal, organizationId: string): void {
  if (!mayReadOrganization(p, organizationId)) throw new NotFoundError('organization', organizationId);
}

export function requireManageOrganization(p: Principal, organizationId: string): void {
  requireReadOrganization(p, organizationId);
  if (!mayManageOrganization(p, organizationId))
    throw new ForbiddenError(`only the organization's admins may change ${organizationId}`);
}

/** Suppliers and products are the public catalogue: everyone sees them, so a refusal is a 403. */
export function requireManageSupplier(p: Principal, supplierId: string): void {
  if (!mayManageSupplier(p, supplierId))
    throw new ForbiddenError(`only the operator and the admins of supplier ${supplierId} may change this`);
}

/**
 * Something that is its supplier's business alone (a deployment, a statement): outsiders get the 404 a
 * nonexistent `entity` would.
 */
export function requireSupplierPrivate(p: Principal, supplierId: string, entity: string, id: string): void {
  if (!mayManageSupplier(p, supplierId)) throw new NotFoundError(entity, id);
}

/** A deployment (base URL, credential, health) is its supplier's business: outsiders get a 404. */
export function requireSupplierDeployment(p: Principal, supplierId: string, deploymentId: string): void {
  requireSupplierPrivate(p, supplierId, 'deployment', deploymentId);
}

export function requireReadUser(p: Principal, userId: string, entity = 'user', id = userId): void {
  if (!mayReadUser(p, userId)) throw new NotFoundError(entity, id);
}

export function requireOperator(p: Principal, what: string): void {
  if (!p.operator) throw new ForbiddenError(`only the operator may ${what}`);
}

/** Refuses a change that sets any field outside `allowed`, naming those fields. */
export function requireOnlyFields(body: unknown, allowed: readonly string[], who: string): void {
  const fields = body && typeof body === 'object' ? Object.keys(body) : [];
  const refused = fields.filter((f) => !allowed.includes(f));
  if (refused.length > 0)
    throw new ForbiddenError(`${who} may change only ${allowed.join(', ')}; not ${refused.join(', ')}`);
}
