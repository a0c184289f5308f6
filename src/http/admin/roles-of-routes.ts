import type { Role } from '../../accounts/roles.ts';

/** Everyone signed in, with or without a role: the public catalogue, and one's own user and tokens. */
export const EVERYONE = 'anyone' as const;
/** An organisation's admins and members. */
export const ORGANIZATION_PEOPLE: readonly Role[] = ['org_admin', 'org_member'];
