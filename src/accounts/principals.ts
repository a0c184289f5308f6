import type { AdminTokenCheck } from './admin-token.ts';
import { PERSONAL_TOKEN_PREFIX, type PersonalTokenService } from './personal-tokens.ts';
import { operatorTokenPrincipal, type Principal } from './roles.ts';

export type Authenticate = (presented: string) => Promise<Principal | undefined>;

/** A bearer token on /admin/v1 (and /metrics): the operator token, or a person's access token. */
export function createAuthenticator(adminToken: AdminTokenCheck, tokens: PersonalTokenService): Authenticate {
  return async (presented) => {
    if (await adminToken.verify(presented)) return operatorTokenPrincipal;
    if (presented.startsWith(PERSONAL_TOKEN_PREFIX)) return tokens.principalFor(presented);
    return undefined;
  };
}
