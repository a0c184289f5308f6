import { requireOperator, requireReadUser } from '../../accounts/access.ts';
import type { PersonalTokenService } from '../../accounts/personal-tokens.ts';
import { hasRole, type Principal, ROLES } from '../../accounts/roles.ts';
import type { UserService } from '../../accounts/users.ts';
import { created, list, ok } from './results.ts';
import { EVERYONE } from './roles-of-routes.ts';
import type { AdminRoute } from './router.ts';

export interface PeopleDeps {
  users: UserService;
  tokens: PersonalTokenService;
}

/** Who the caller is: the operator token, or a user with their roles and tenants. */
function describe(p: Principal) {
  return {
    actorId: p.actorId,
    userId: p.userId,
    tokenId: p.tokenId,
    roles: ROLES.filter((role) => hasRole(p, role)),
    supplierIds: [...p.supplierAdminOf],
    organizationIds: { admin: [...p.orgAdminOf], member: [...p.orgMemberOf] },
  };
}

/**
 * Users, memberships and personal access tokens. The operator manages people; everyone reads their
 * own user and manages their own tokens. Another user's things answer 404 to anyone but the operator.
 */
export function peopleRoutes({ users, tokens }: PeopleDeps): AdminRoute[] {
  return [
    {
      method: 'GET',
      path: '/me',
      roles: EVERYONE,
      handle: async (r) =>
        ok({
          ...describe(r.principal),
          user: r.principal.userId ? await users.get(r.principal.userId) : null,
        }),
    },

    {
      method: 'POST',
      path: '/users',
      roles: [],
      audit: { entityType: 'user', action: 'create' },
      handle: async (r) => created(await users.create(r.body, r.trail)),
    },
    { method: 'GET', path: '/users', roles: [], handle: async () => list(await users.list()) },
    {
      method: 'GET',
      path: '/users/:id',
      roles: EVERYONE,
      handle: async (r) => {
        requireReadUser(r.principal, r.params.id!);
        return ok(await users.get(r.params.id!));
      },
    },
    {
      method: 'PATCH',
      path: '/users/:id',
      roles: EVERYONE,
      audit: { entityType: 'user', action: 'update' },
      handle: async (r) => {
        requireReadUser(r.principal, r.params.id!);
        requireOperator(r.principal, 'change users');
        return ok(await users.update(r.params.id!, r.body, r.trail));
      },
    },

    {
      method: 'POST',
      path: '/users/:id/memberships',
      roles: EVERYONE,
      audit: { entityType: 'membership', action: 'create' },
      handle: async (r) => {
        requireReadUser(r.principal, r.params.id!);
        requireOperator(r.principal, 'grant roles');
        return created(await users.addMembership(r.params.id!, r.body, r.trail));
      },
    },
    {
      method: 'GET',
      path: '/users/:id/memberships',
      roles: EVERYONE,
      handle: async (r) => {
        requireReadUser(r.principal, r.params.id!);
        await users.get(r.params.id!);
        return list(await users.memberships(r.params.id!));
      },
    },
    {
      method: 'DELETE',
      path: '/memberships/:id',
      roles: EVERYONE,
      audit: { entityType: 'membership', action: 'delete' },
      handle: async (r) => {
        const membership = await users.getMembership(r.params.id!);
        requireReadUser(r.principal, membership.userId, 'membership', r.params.id!);
        requireOperator(r.principal, 'take roles away');
        await users.removeMembership(r.params.id!, r.trail);
        return { status: 204 };
      },
    },

    {
      // The operator may issue a token for someone (there is no sign-in yet to get a first one).
      method: 'POST',
      path: '/users/:id/tokens',
      roles: EVERYONE,
      audit: { entityType: 'personal_access_token', action: 'create' },
      handle: async (r) => {
        requireReadUser(r.principal, r.params.id!);
        return created(await tokens.create(r.params.id!, r.body, r.trail));
      },
    },
    {
      method: 'GET',
      path: '/users/:id/tokens',
      roles: EVERYONE,
      handle: async (r) => {
        requireReadUser(r.principal, r.params.id!);
        return list(await tokens.list(r.params.id!));
      },
    },
    {
      method: 'DELETE',
      path: '/tokens/:id',
      roles: EVERYONE,
      audit: { entityType: 'personal_access_token', action: 'revoke' },
      handle: async (r) => {
        const token = await tokens.get(r.params.id!);
        requireReadUser(r.principal, token.userId, 'token', r.params.id!);
        return ok(await tokens.revoke(r.params.id!, r.trail));
      },
    },
  ];
}
