import { requireReadOrganization } from '../../accounts/access.ts';
import type { OrganizationService } from '../../accounts/organizations.ts';
import type { CatalogSnapshot } from '../../catalog/catalog-snapshot.ts';
import { ValidationError } from '../../errors.ts';
import type { DataPolicyService } from '../../guardrails/data-policies.ts';
import { PII_TYPES } from '../../guardrails/pii/types.ts';
import { combinePolicies, type DataPolicySnapshot } from '../../guardrails/policy-snapshot.ts';
import { Placement } from '../../providers/features.ts';
import { created, list, ok } from './results.ts';
import { ORGANIZATION_PEOPLE } from './roles-of-routes.ts';
import type { AdminRoute } from './router.ts';

export interface GuardrailDeps {
  dataPolicies: DataPolicyService;
  policySnapshot: DataPolicySnapshot;
  organizations: OrganizationService;
  routable: CatalogSnapshot;
}

/**
 * Data policies (docs/guardrails.md): the operator writes them; an organisation's people read what is
 * in force for their organisation (and a product), with the policies it comes from.
 */
export function guardrailRoutes(deps: GuardrailDeps): AdminRoute[] {
  const { dataPolicies, policySnapshot, organizations, routable } = deps;
  return [
    {
      method: 'GET',
      path: '/data-policies',
      roles: [],
      handle: async (r) => list(await dataPolicies.list(r.query)),
    },
    {
      method: 'POST',
      path: '/data-policies',
      roles: [],
      audit: { entityType: 'data_policy', action: 'create' },
      handle: async (r) => created(await dataPolicies.create(r.body, r.trail)),
    },
    {
      method: 'GET',
      path: '/data-policies/:id',
      roles: [],
      handle: async (r) => ok(await dataPolicies.get(r.params.id!)),
    },
    {
      method: 'PATCH',
      path: '/data-policies/:id',
      roles: [],
      audit: { entityType: 'data_policy', action: 'update' },
      handle: async (r) => ok(await dataPolicies.update(r.params.id!, r.body, r.trail)),
    },
    {
      method: 'DELETE',
      path: '/data-policies/:id',
      roles: [],
      audit: { entityType: 'data_policy', action: 'delete' },
      handle: async (r) => {
        await dataPolicies.remove(r.params.id!, r.trail);
        return { status: 204 };
      },
    },
    {
      method: 'GET',
      path: '/organizations/:id/data-policy',
      roles: ORGANIZATION_PEOPLE,
      hidden: true,
      handle: async (r) => {
        requireReadOrganization(r.principal, r.params.id!);
        const organization = await organizations.get(r.params.id!);
        const model = r.query.model;
        const product = model === undefined ? undefined : routable.byModel(model);
        if (model !== undefined && product === undefined) throw ValidationError.of('model', 'no such model');
        // what applies this moment on this replica: the snapshot the request path reads
        const applying = policySnapshot.applying(organization.id, organization.class, product?.id ?? '');
        const effective = combinePolicies(applying);
        return ok({
          organizationId: organization.id,
          organizationClass: organization.class,
          model: product?.model ?? null,
          residency: (effective.placement & Placement.domestic) !== 0 ? 'domestic' : 'any',
          certifiedOnly: (effective.placement & Placement.certified) !== 0,
          pii: Object.fromEntries(PII_TYPES.map((t, i) => [t, effective.modes[i]])),
          policies: applying,
        });
      },
    },
  ];
}
