/**
 * Who may do what on /admin/v1 (docs/roles.md). A principal is the caller of one admin request: the
 * operator token, or a user through a personal access token with the union of their memberships.
 */
export const ROLES = ['operator', 'supplier_admin', 'org_admin', 'org_member', 'evaluator'] as const;
export type Role = (typeof ROLES)[number];

/** Roles scoped to one supplier or one organisation; the others are hub-wide. */
export const SUPPLIER_ROLES: readonly Role[] = ['supplier_admin'];
export const ORGANIZATION_ROLES: readonly Role[] = ['org_admin', 'org_member'];

/** What the audit log names as the actor of a change made with the operator token. */
export const OPERATOR_TOKEN_ACTOR = 'operator-token';

export interface Principal {
  /** `operator-token`, or the user's id: the audit log's actor. */
  actorId: string;
  userId: string | null;
  /** The personal access token this request came with. */
  tokenId: string | null;
  operator: boolean;
  evaluator: boolean;
  /** Supplier ids this principal administers. */
  supplierAdminOf: ReadonlySet<string>;
  /** Organisation ids this principal administers. */
  orgAdminOf: ReadonlySet<string>;
  /** Organisation ids this principal belongs to as a member (not as an admin). */
  orgMemberOf: ReadonlySet<string>;
}

export const operatorTokenPrincipal: Principal = Object.freeze({
  actorId: OPERATOR_TOKEN_ACTOR,
  userId: null,
  tokenId: null,
  operator: true,
  evaluator: false,
  supplierAdminOf: new Set<string>(),
  orgAdminOf: new Set<string>(),
  orgMemberOf: new Set<string>(),
});

export function hasRole(p: Principal, role: Role): boolean {
  switch (role) {
    case 'operator':
      return p.operator;
    case 'evaluator':
      return p.evaluator;
    case 'supplier_admin':
      return p.supplierAdminOf.size > 0;
    case 'org_admin':
      return p.orgAdminOf.size > 0;
    case 'org_member':
      return p.orgMemberOf.size > 0;
  }
}

/** Organisations whose things this principal may read (as admin or member). */
export function readableOrganizations(p: Principal): string[] {
  return [...new Set([...p.orgAdminOf, ...p.orgMemberOf])];
}

export const mayReadOrganization = (p: Principal, organizationId: string): boolean =>
  p.operator || p.orgAdminOf.has(organizationId) || p.orgMemberOf.has(organizationId);

export const mayManageOrganization = (p: Principal, organizationId: string): boolean =>
  p.operator || p.orgAdminOf.has(organizationId);

/** A supplier's products, deployments and usage: the operator's and the supplier's own admins'. */
export const mayManageSupplier = (p: Principal, supplierId: string): boolean =>
  p.operator || p.supplierAdminOf.has(supplierId);

/** A user's own record, memberships and tokens: theirs and the operator's. */
export const mayReadUser = (p: Principal, userId: string): boolean => p.operator || p.userId === userId;
