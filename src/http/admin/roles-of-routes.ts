import type { Role } from '../../accounts/roles.ts';

/** Every signed-in role: who may read the public catalogue and their own user. */
export const EVERYONE: readonly Role[] = ['supplier_admin', 'org_admin', 'org_member', 'evaluator'];
/** An organisation's admins and members. */
export const ORGANIZATION_PEOPLE: readonly Role[] = ['org_admin', 'org_member'];
