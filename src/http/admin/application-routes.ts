import {
  requireManageOrganization,
  requireManageSupplier,
  requireOnlyFields,
  requireOperator,
} from '../../accounts/access.ts';
import { type Principal, readableOrganizations } from '../../accounts/roles.ts';
import type { AuditTrail } from '../../audit/audit-log.ts';
import type { ReviewService } from '../../billing/application-reviews.ts';
import type { Application, ApplicationService } from '../../billing/programme-applications.ts';
import type { SelectionService } from '../../billing/programme-selection.ts';
import type { ProgrammeService } from '../../billing/programmes.ts';
import type { SupplierPoolService } from '../../billing/supplier-pool.ts';
import { ForbiddenError, NotFoundError } from '../../errors.ts';
import { created, list, ok } from './results.ts';
import { EVERYONE, ORGANIZATION_PEOPLE } from './roles-of-routes.ts';
import type { AdminRequest, AdminRoute } from './router.ts';

export interface ApplicationDeps {
  programmes: ProgrammeService;
  supplierPool: SupplierPoolService;
  applications: ApplicationService;
  reviews: ReviewService;
  selection: SelectionService;
}

/** Everyone an application concerns: its organisation's people, its supplier's admins, its evaluators. */
const APPLICATION_PEOPLE = ['supplier_admin', ...ORGANIZATION_PEOPLE, 'evaluator'] as const;

const bodyField = (body: unknown, field: string): unknown =>
  body && typeof body === 'object' ? (body as Record<string, unknown>)[field] : undefined;

/** How a person stands to an application; none of these: they may not know it exists. */
interface Relation {
  operator: boolean;
  orgAdmin: boolean;
  orgMember: boolean;
  supplier: boolean;
  evaluator: boolean;
}

/** What the matched supplier may change of a draft: the plan they write with the organisation. */
const SUPPLIER_APPLICATION_FIELDS = ['plan'];

/**
 * The supplier pool, applications, their review and the operator's decision (docs/billing.md).
 * Programmes and their pools are public; an application is seen by its organisation's people, the
 * admins of the supplier it matched, the evaluators assigned to its programme once it is submitted,
 * and the operator — anyone else gets the 404 a nonexistent id gets (docs/roles.md).
 */
export function applicationRoutes(deps: ApplicationDeps): AdminRoute[] {
  const { programmes, supplierPool, applications, reviews, selection } = deps;

  const assigned = async (p: Principal, programmeId: string) =>
    p.evaluator && p.userId !== null && (await programmes.evaluatorIds(programmeId)).includes(p.userId);

  /** The application and how the caller stands to it; a 404 when the caller may not see it. */
  const visible = async (p: Principal, id: string): Promise<{ app: Application; rel: Relation }> => {
    const app = await applications.get(id);
    const rel: Relation = {
      operator: p.operator,
      orgAdmin: p.orgAdminOf.has(app.organizationId),
      orgMember: p.orgMemberOf.has(app.organizationId),
      supplier: p.supplierAdminOf.has(app.supplierId),
      evaluator: app.status !== 'draft' && (await assigned(p, app.programmeId)),
    };
    if (!Object.values(rel).some(Boolean)) throw new NotFoundError('application', id);
    return { app, rel };
  };

  /** The operator also sees how reviewers scored each. */
  const scored = async (list: Application[]) => {
    const summaries = await reviews.summaries(list.map((a) => a.id));
    return list.map((a) => ({ ...a, review: summaries.get(a.id)! }));
  };

  /** What the caller may see of the applications the query asks for. */
  const listed = async (p: Principal, query: Record<string, string>) => {
    if (p.operator) return scored(await applications.list(query));
    return applications.list(query, {
      organizationIds: readableOrganizations(p),
      supplierIds: [...p.supplierAdminOf],
      evaluatorUserId: p.evaluator ? p.userId : null,
    });
  };

  const voucherTrail =
    (r: AdminRequest): AuditTrail =>
    (tx, change) =>
      r.audit({ entityType: 'voucher', action: 'issue', ...change }, tx);

  return [
    {
      method: 'PATCH',
      path: '/programmes/:id',
      roles: [],
      audit: { entityType: 'programme', action: 'update' },
      handle: async (r) => ok(await programmes.update(r.params.id!, r.body, r.trail)),
    },

    {
      method: 'POST',
      path: '/programmes/:id/pool',
      roles: ['supplier_admin'],
      audit: { entityType: 'pool_entry', action: 'join' },
      handle: async (r) => {
        const supplierId = bodyField(r.body, 'supplierId');
        // Without one the validation names the field; a supplier is public, so another's is a 403.
        if (typeof supplierId === 'string') requireManageSupplier(r.principal, supplierId);
        return created(await supplierPool.join(r.params.id!, r.body, r.trail));
      },
    },
    {
      method: 'PATCH',
      path: '/pool-entries/:id',
      roles: ['supplier_admin'],
      audit: { entityType: 'pool_entry', action: 'update' },
      handle: async (r) => {
        requireManageSupplier(r.principal, (await supplierPool.get(r.params.id!)).supplierId);
        return ok(await supplierPool.update(r.params.id!, r.body, r.trail));
      },
    },
    {
      method: 'GET',
      path: '/programmes/:id/pool',
      roles: EVERYONE,
      handle: async (r) => list(await supplierPool.list(r.params.id!)),
    },

    {
      method: 'POST',
      path: '/programmes/:id/applications',
      roles: ORGANIZATION_PEOPLE,
      audit: { entityType: 'application', action: 'create' },
      handle: async (r) => {
        const organizationId = bodyField(r.body, 'organizationId');
        if (typeof organizationId === 'string') requireManageOrganization(r.principal, organizationId);
        else requireOperator(r.principal, 'apply without naming the organization');
        return created(await applications.create(r.params.id!, r.body, r.trail));
      },
    },
    {
      method: 'GET',
      path: '/programmes/:id/applications',
      roles: [...APPLICATION_PEOPLE],
      handle: async (r) => {
        await programmes.get(r.params.id!);
        return list(await listed(r.principal, { ...r.query, programmeId: r.params.id! }));
      },
    },
    {
      // across programmes: an organisation's, a supplier's agreements, an evaluator's queue
      method: 'GET',
      path: '/applications',
      roles: [...APPLICATION_PEOPLE],
      handle: async (r) => list(await listed(r.principal, r.query)),
    },
    {
      method: 'GET',
      path: '/applications/:id',
      roles: [...APPLICATION_PEOPLE],
      hidden: true,
      handle: async (r) => {
        const { app } = await visible(r.principal, r.params.id!);
        return ok(r.principal.operator ? (await scored([app]))[0] : app);
      },
    },
    {
      method: 'PATCH',
      path: '/applications/:id',
      roles: [...APPLICATION_PEOPLE],
      hidden: true,
      audit: { entityType: 'application', action: 'update' },
      handle: async (r) => {
        const { rel } = await visible(r.principal, r.params.id!);
        if (!rel.operator && !rel.orgAdmin) {
          if (!rel.supplier)
            throw new ForbiddenError(
              'only the organization’s admins and the matched supplier edit an application',
            );
          requireOnlyFields(r.body, SUPPLIER_APPLICATION_FIELDS, 'the matched supplier');
        }
        return ok(await applications.update(r.params.id!, r.body, r.trail));
      },
    },
    {
      method: 'POST',
      path: '/applications/:id/submit',
      roles: [...APPLICATION_PEOPLE],
      hidden: true,
      audit: { entityType: 'application', action: 'submit' },
      handle: async (r) => {
        const { rel } = await visible(r.principal, r.params.id!);
        if (!rel.operator && !rel.orgAdmin)
          throw new ForbiddenError('only the organization’s admins submit its application');
        return ok(await applications.submit(r.params.id!, r.trail));
      },
    },

    {
      method: 'POST',
      path: '/applications/:id/reviews',
      roles: [...APPLICATION_PEOPLE],
      hidden: true,
      audit: { entityType: 'application_review', action: 'score' },
      handle: async (r) => {
        const { rel } = await visible(r.principal, r.params.id!);
        if (!rel.operator && !rel.evaluator)
          throw new ForbiddenError('only the evaluators assigned to the programme score its applications');
        // an evaluator who is also the applicant's or its supplier's does not score it
        if (!rel.operator && (rel.orgAdmin || rel.orgMember || rel.supplier))
          throw new ForbiddenError('the applicant’s and its supplier’s people do not score its application');
        return ok(await reviews.score(r.params.id!, r.principal.actorId, r.body, r.trail));
      },
    },
    {
      method: 'GET',
      path: '/applications/:id/reviews',
      roles: [...APPLICATION_PEOPLE],
      hidden: true,
      handle: async (r) => {
        const { rel } = await visible(r.principal, r.params.id!);
        if (!rel.operator && !rel.evaluator)
          throw new ForbiddenError('only the operator and the programme’s evaluators read reviews');
        return list(
          await reviews.list(r.params.id!, {
            reviewerId: r.principal.actorId,
            operator: r.principal.operator,
          }),
        );
      },
    },

    {
      method: 'POST',
      path: '/applications/:id/select',
      roles: [],
      audit: { entityType: 'application', action: 'select' },
      handle: async (r) =>
        ok(await selection.select(r.params.id!, r.body, r.trail, voucherTrail(r), r.principal.actorId)),
    },
    {
      method: 'POST',
      path: '/applications/:id/reject',
      roles: [],
      audit: { entityType: 'application', action: 'reject' },
      handle: async (r) => ok(await selection.reject(r.params.id!, r.body, r.trail)),
    },
  ];
}
