import { z } from 'zod';
import {
  requireManageOrganization,
  requireManageSupplier,
  requireOnlyFields,
  requireOperator,
  requireSupplierPrivate,
} from '../../accounts/access.ts';
import { type Principal, readableOrganizations } from '../../accounts/roles.ts';
import type { AuditTrail } from '../../audit/audit-log.ts';
import type { ComputeApplication } from '../../compute/applications.ts';
import { dailyAvailability } from '../../compute/capacity.ts';
import { eventsOf } from '../../compute/events.ts';
import { SUPPLIER_POOL_FIELDS } from '../../compute/pools.ts';
import { SchedulerError } from '../../compute/provisioners/provisioner.ts';
import type { ComputeServices } from '../../compute/services.ts';
import { ForbiddenError, NotFoundError } from '../../errors.ts';
import { dayIndex, dayOfText, dayText } from '../../kst.ts';
import type { Database } from '../../storage/database.ts';
import { parseInput } from '../../validation.ts';
import { computeAllocationRoutes } from './compute-allocation-routes.ts';
import { created, list, ok } from './results.ts';
import { EVERYONE, ORGANIZATION_PEOPLE } from './roles-of-routes.ts';
import type { AdminRequest, AdminRoute } from './router.ts';

export interface ComputeDeps {
  db: Database;
  compute: ComputeServices;
}

const bodyField = (body: unknown, field: string): unknown =>
  body && typeof body === 'object' ? (body as Record<string, unknown>)[field] : undefined;

/** For routes that audit themselves (`audit: 'handler'`): a trail of this route's kind of change. */
const trailOf =
  (r: AdminRequest, entityType: string, action: string): AuditTrail =>
  (tx, change) =>
    r.audit({ entityType, action, ...change }, tx);

const availabilityQuery = z.strictObject({
  from: z
    .string()
    .regex(/^\d{4}-\d{2}-\d{2}$/, 'expected a date, YYYY-MM-DD (KST)')
    .optional(),
  days: z.coerce.number().int().min(1).max(366).default(31),
});

/** Everyone an application concerns: its organisation's people and the call's evaluators. */
const APPLICATION_PEOPLE = [...ORGANIZATION_PEOPLE, 'evaluator'] as const;

/**
 * GPU compute on /admin/v1 (docs/compute.md, docs/roles.md). Pools and calls are public; an
 * application is its organisation's, its call's evaluators' (once submitted) and the operator's; an
 * allocation is its organisation's, its pool's compute supplier's and the operator's — anyone else
 * gets the 404 a nonexistent id gets. Decisions (selection, reclaim, extensions, checks) are the
 * operator's; a manual pool's hand-over, return and usage are its supplier's admins'.
 */
export function computeRoutes({ db, compute }: ComputeDeps): AdminRoute[] {
  const { pools, calls, applications, reviews, selection, usage } = compute;

  const assigned = async (p: Principal, callId: string) =>
    p.evaluator && p.userId !== null && (await calls.evaluatorIds(callId)).includes(p.userId);

  /** The application and how the caller stands to it; a 404 when the caller may not see it. */
  const visibleApplication = async (p: Principal, id: string) => {
    const app = await applications.get(id);
    const rel = {
      operator: p.operator,
      orgAdmin: p.orgAdminOf.has(app.organizationId),
      orgMember: p.orgMemberOf.has(app.organizationId),
      evaluator: app.status !== 'draft' && app.status !== 'withdrawn' && (await assigned(p, app.callId)),
    };
    if (!Object.values(rel).some(Boolean)) throw new NotFoundError('application', id);
    return { app, rel };
  };
  const manageApplication = async (p: Principal, id: string): Promise<ComputeApplication> => {
    const { app, rel } = await visibleApplication(p, id);
    if (!rel.operator && !rel.orgAdmin)
      throw new ForbiddenError('only the organization’s admins change its application');
    return app;
  };

  /** A pool's private side (drift, scheduler events): its supplier's admins and the operator. */
  const privatePool = async (p: Principal, id: string, entity: string) => {
    let supplierId: string;
    try {
      supplierId = (await pools.get(id, false)).supplierId;
    } catch (error) {
      // a pool that does not exist answers as another supplier's does
      if (error instanceof NotFoundError) throw new NotFoundError(entity, id);
      throw error;
    }
    requireSupplierPrivate(p, supplierId, entity, id);
  };

  return [
    // --- pools ------------------------------------------------------------------------------------
    {
      method: 'POST',
      path: '/compute/pools',
      roles: [],
      audit: { entityType: 'compute_pool', action: 'create' },
      handle: async (r) => created(await pools.create(r.body, r.trail)),
    },
    {
      method: 'GET',
      path: '/compute/pools',
      roles: EVERYONE,
      handle: async (r) =>
        list(
          await pools.list(
            { ...(r.query.supplierId && { supplierId: r.query.supplierId }) },
            r.principal.operator ? null : r.principal.supplierAdminOf,
          ),
        ),
    },
    {
      method: 'GET',
      path: '/compute/pools/:id',
      roles: EVERYONE,
      handle: async (r) => {
        const pool = await pools.get(r.params.id!, false);
        return ok(
          r.principal.operator || r.principal.supplierAdminOf.has(pool.supplierId)
            ? await pools.get(r.params.id!, true)
            : pool,
        );
      },
    },
    {
      method: 'PATCH',
      path: '/compute/pools/:id',
      roles: ['supplier_admin'],
      audit: { entityType: 'compute_pool', action: 'update' },
      handle: async (r) => {
        const pool = await pools.get(r.params.id!, false);
        requireManageSupplier(r.principal, pool.supplierId);
        if (!r.principal.operator)
          requireOnlyFields(r.body, SUPPLIER_POOL_FIELDS, 'a compute supplier admin');
        return ok(await pools.update(r.params.id!, r.body, r.trail));
      },
    },
    {
      // what is left to grant, day by day: for applicants choosing a pool and period
      method: 'GET',
      path: '/compute/pools/:id/availability',
      roles: EVERYONE,
      handle: async (r) => {
        const q = parseInput(availabilityQuery, r.query);
        const pool = await pools.get(r.params.id!, false);
        const from = q.from === undefined ? dayIndex(compute.clock()) : dayOfText(q.from);
        const days = await dailyAvailability(db, pool.id, pool.gpuCount, from, from + q.days);
        return ok({
          poolId: pool.id,
          gpuCount: pool.gpuCount,
          days: days.map((d) => ({ day: dayText(d.day), heldGpus: d.held, freeGpus: d.free })),
        });
      },
    },
    {
      method: 'GET',
      path: '/compute/pools/:id/drift',
      roles: ['supplier_admin'],
      hidden: true,
      handle: async (r) => {
        await privatePool(r.principal, r.params.id!, 'pool drift');
        return list(await compute.lifecycle.drift(r.params.id!));
      },
    },
    {
      method: 'POST',
      path: '/compute/pools/:id/repair',
      roles: ['supplier_admin'],
      hidden: true,
      audit: 'handler',
      handle: async (r) => {
        await privatePool(r.principal, r.params.id!, 'pool drift');
        const result = await compute.lifecycle.repair(r.params.id!);
        await r.audit({
          entityType: 'compute_pool',
          action: 'repair_drift',
          entityId: r.params.id!,
          after: result,
        });
        return ok(result);
      },
    },
    {
      method: 'POST',
      path: '/compute/pools/:id/usage',
      roles: [],
      audit: { entityType: 'compute_pool', action: 'ingest_usage' },
      handle: async (r) => {
        try {
          return ok(await usage.ingest(r.params.id!, r.body, r.trail));
        } catch (error) {
          if (!(error instanceof SchedulerError)) throw error;
          // nothing was stored: the day stays unread and the monthly check waits for it
          return {
            status: 503,
            body: {
              error: {
                code: 'scheduler_unavailable',
                message: `사용량을 읽지 못했습니다(저장된 것 없음) / usage could not be read, nothing stored: ${error.message}`,
              },
            },
          };
        }
      },
    },
    {
      method: 'GET',
      path: '/compute/pools/:id/events',
      roles: ['supplier_admin'],
      hidden: true,
      handle: async (r) => {
        await privatePool(r.principal, r.params.id!, 'pool events');
        return list(await eventsOf(db, { poolId: r.params.id! }));
      },
    },

    // --- calls ------------------------------------------------------------------------------------
    {
      method: 'POST',
      path: '/compute/calls',
      roles: [],
      audit: { entityType: 'compute_call', action: 'create' },
      handle: async (r) => created(await calls.create(r.body, r.trail)),
    },
    { method: 'GET', path: '/compute/calls', roles: EVERYONE, handle: async () => list(await calls.list()) },
    {
      method: 'GET',
      path: '/compute/calls/:id',
      roles: EVERYONE,
      handle: async (r) => {
        const call = await calls.get(r.params.id!);
        return ok(r.principal.operator ? { ...call, evaluatorIds: await calls.evaluatorIds(call.id) } : call);
      },
    },
    {
      method: 'PATCH',
      path: '/compute/calls/:id',
      roles: [],
      audit: { entityType: 'compute_call', action: 'update' },
      handle: async (r) => ok(await calls.update(r.params.id!, r.body, r.trail)),
    },
    {
      method: 'GET',
      path: '/compute/calls/:id/ranking',
      roles: [],
      handle: async (r) => ok(await selection.ranking(r.params.id!)),
    },
    {
      method: 'POST',
      path: '/compute/calls/:id/selection',
      roles: [],
      audit: 'handler',
      handle: async (r) =>
        ok(await selection.run(r.params.id!, r.body, trailOf(r, 'compute_call', 'select'))),
    },
    {
      method: 'POST',
      path: '/compute/calls/:id/checks',
      roles: [],
      audit: 'handler',
      handle: async (r) => {
        const outcomes = await compute.utilisation.check(
          r.params.id!,
          r.body,
          trailOf(r, 'compute_allocation', 'utilisation_check'),
        );
        for (const o of outcomes)
          if (o.outcome === 'reclaimed') await compute.lifecycle.bringDown(o.allocationId);
        // one entry for the run as well, so that a check that found nothing to do is on record too
        await r.audit({
          entityType: 'compute_call',
          action: 'utilisation_check',
          entityId: r.params.id!,
          after: { checked: outcomes.length, outcomes: outcomes.map((o) => [o.allocationId, o.outcome]) },
        });
        return list(outcomes);
      },
    },

    // --- applications -----------------------------------------------------------------------------
    {
      method: 'POST',
      path: '/compute/calls/:id/applications',
      roles: ORGANIZATION_PEOPLE,
      audit: { entityType: 'compute_application', action: 'create' },
      handle: async (r) => {
        const organizationId = bodyField(r.body, 'organizationId');
        if (typeof organizationId === 'string') requireManageOrganization(r.principal, organizationId);
        else requireOperator(r.principal, 'apply without naming the organization');
        return created(await applications.create(r.params.id!, r.body, r.trail));
      },
    },
    {
      method: 'GET',
      path: '/compute/applications',
      roles: [...APPLICATION_PEOPLE],
      handle: async (r) => {
        const p = r.principal;
        if (p.operator) return list(await applications.list(r.query));
        return list(
          await applications.list(r.query, {
            organizationIds: readableOrganizations(p),
            evaluatorUserId: p.evaluator ? p.userId : null,
          }),
        );
      },
    },
    {
      method: 'GET',
      path: '/compute/applications/:id',
      roles: [...APPLICATION_PEOPLE],
      hidden: true,
      handle: async (r) => ok((await visibleApplication(r.principal, r.params.id!)).app),
    },
    {
      method: 'PATCH',
      path: '/compute/applications/:id',
      roles: [...APPLICATION_PEOPLE],
      hidden: true,
      audit: { entityType: 'compute_application', action: 'update' },
      handle: async (r) => {
        await manageApplication(r.principal, r.params.id!);
        return ok(await applications.update(r.params.id!, r.body, r.trail));
      },
    },
    {
      method: 'POST',
      path: '/compute/applications/:id/submit',
      roles: [...APPLICATION_PEOPLE],
      hidden: true,
      audit: { entityType: 'compute_application', action: 'submit' },
      handle: async (r) => {
        await manageApplication(r.principal, r.params.id!);
        return ok(await applications.submit(r.params.id!, r.trail));
      },
    },
    {
      method: 'POST',
      path: '/compute/applications/:id/withdraw',
      roles: [...APPLICATION_PEOPLE],
      hidden: true,
      audit: { entityType: 'compute_application', action: 'withdraw' },
      handle: async (r) => {
        await manageApplication(r.principal, r.params.id!);
        return ok(await applications.withdraw(r.params.id!, r.trail));
      },
    },
    {
      method: 'POST',
      path: '/compute/applications/:id/reviews',
      roles: [...APPLICATION_PEOPLE],
      hidden: true,
      audit: { entityType: 'compute_review', action: 'score' },
      handle: async (r) => {
        const { rel } = await visibleApplication(r.principal, r.params.id!);
        if (!rel.operator && !rel.evaluator)
          throw new ForbiddenError('only the evaluators assigned to the call score its applications');
        if (!rel.operator && (rel.orgAdmin || rel.orgMember))
          throw new ForbiddenError('the applicant’s people do not score its application');
        return ok(await reviews.score(r.params.id!, r.principal.actorId, r.body, r.trail));
      },
    },
    {
      method: 'GET',
      path: '/compute/applications/:id/reviews',
      roles: [...APPLICATION_PEOPLE],
      hidden: true,
      handle: async (r) => {
        const { rel } = await visibleApplication(r.principal, r.params.id!);
        if (!rel.operator && !rel.evaluator)
          throw new ForbiddenError('only the operator and the call’s evaluators read reviews');
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
      path: '/compute/applications/:id/select',
      roles: [],
      audit: { entityType: 'compute_application', action: 'select' },
      handle: async (r) => ok(await selection.select(r.params.id!, r.body, r.trail)),
    },
    {
      method: 'POST',
      path: '/compute/applications/:id/reject',
      roles: [],
      audit: { entityType: 'compute_application', action: 'reject' },
      handle: async (r) => ok(await selection.reject(r.params.id!, r.body, r.trail)),
    },

    ...computeAllocationRoutes({ db, compute }),
  ];
}
