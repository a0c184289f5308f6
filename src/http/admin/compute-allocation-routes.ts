import { z } from 'zod';
import { requireOnlyFields, requireSupplierPrivate } from '../../accounts/access.ts';
import { type Principal, readableOrganizations } from '../../accounts/roles.ts';
import type { Allocation } from '../../compute/allocations.ts';
import {
  computeStatementCsv,
  computeStatementFilename,
  computeStatementXlsx,
} from '../../compute/statements.ts';
import { ForbiddenError, NotFoundError } from '../../errors.ts';
import { parseInput } from '../../validation.ts';
import type { ComputeDeps } from './compute-routes.ts';
import { inFormat } from './downloads.ts';
import { created, list, ok } from './results.ts';
import { ORGANIZATION_PEOPLE } from './roles-of-routes.ts';
import type { AdminResult, AdminRoute } from './router.ts';

/** Everyone an allocation concerns: its organisation's people and the pool's supplier's admins. */
const ALLOCATION_PEOPLE = [...ORGANIZATION_PEOPLE, 'supplier_admin'] as const;

/**
 * Allocations, extensions, compute statements and the loop run by hand (docs/compute.md). An
 * allocation is its organisation's, its pool's compute supplier's and the operator's: anyone else gets
 * the 404 a nonexistent id gets. Reclaim, a scheduler step by hand and extension decisions are the
 * operator's; a manual pool's hand-over, return and usage are its supplier's admins'; the users, an
 * offer's answer and an extension request are the organisation's admins'.
 */
export function computeAllocationRoutes({ compute }: ComputeDeps): AdminRoute[] {
  const { allocations, offers, extensions, usage } = compute;

  /** The allocation and how the caller stands to it; a 404 when the caller may not see it. */
  const visibleAllocation = async (p: Principal, id: string) => {
    const allocation = await allocations.get(id);
    const supplierId = await allocations.supplierOf(id);
    const rel = {
      operator: p.operator,
      orgAdmin: p.orgAdminOf.has(allocation.organizationId),
      orgMember: p.orgMemberOf.has(allocation.organizationId),
      supplier: p.supplierAdminOf.has(supplierId),
    };
    if (!Object.values(rel).some(Boolean)) throw new NotFoundError('allocation', id);
    return { allocation, rel };
  };
  const organizationAllocation = async (p: Principal, id: string): Promise<Allocation> => {
    const { allocation, rel } = await visibleAllocation(p, id);
    if (!rel.operator && !rel.orgAdmin) throw new ForbiddenError('only the organization’s admins do this');
    return allocation;
  };
  const supplierAllocation = async (p: Principal, id: string): Promise<Allocation> => {
    const { allocation, rel } = await visibleAllocation(p, id);
    if (!rel.operator && !rel.supplier)
      throw new ForbiddenError('only the compute supplier’s admins do this');
    return allocation;
  };

  /** The scheduler step a change needs now (reclaim, a retry), its outcome on the answer. */
  const afterStep = async (id: string): Promise<AdminResult> => {
    const a = await allocations.get(id);
    const step =
      a.status === 'ending'
        ? await compute.lifecycle.bringDown(id)
        : a.status === 'provisioning'
          ? await compute.lifecycle.bringUp(id)
          : a.status === 'active'
            ? await compute.lifecycle.reapply(id)
            : undefined;
    const after = await allocations.get(id);
    if (step && !step.ok)
      return {
        status: 503,
        body: {
          error: {
            code: 'scheduler_unavailable',
            message: `스케줄러에 반영하지 못했습니다(재시도 예정) / the scheduler step failed and will be retried: ${step.error}`,
          },
          allocation: after,
        },
      };
    return ok(after);
  };

  return [
    // --- allocations ------------------------------------------------------------------------------
    {
      method: 'GET',
      path: '/compute/allocations',
      roles: [...ALLOCATION_PEOPLE],
      handle: async (r) => {
        const p = r.principal;
        if (p.operator) return list(await allocations.list(r.query));
        return list(
          await allocations.list(r.query, {
            organizationIds: readableOrganizations(p),
            supplierIds: [...p.supplierAdminOf],
          }),
        );
      },
    },
    {
      method: 'GET',
      path: '/compute/allocations/:id',
      roles: [...ALLOCATION_PEOPLE],
      hidden: true,
      handle: async (r) => {
        const { allocation } = await visibleAllocation(r.principal, r.params.id!);
        return ok({ ...allocation, extensions: await extensions.ofAllocation(allocation.id) });
      },
    },
    {
      method: 'PATCH',
      path: '/compute/allocations/:id',
      roles: [...ALLOCATION_PEOPLE],
      hidden: true,
      audit: { entityType: 'compute_allocation', action: 'update' },
      handle: async (r) => {
        await organizationAllocation(r.principal, r.params.id!);
        if (!r.principal.operator) requireOnlyFields(r.body, ['schedulerUsers'], 'an organization admin');
        const after = await allocations.update(r.params.id!, r.body, r.trail);
        return after.status === 'active' ? afterStep(after.id) : ok(after);
      },
    },
    {
      method: 'GET',
      path: '/compute/allocations/:id/usage',
      roles: [...ALLOCATION_PEOPLE],
      hidden: true,
      handle: async (r) => {
        await visibleAllocation(r.principal, r.params.id!);
        return ok({
          ...(await usage.ofAllocation(r.params.id!)),
          schedulerBudget: await usage.schedulerBudget(r.params.id!),
          jobs: await usage.jobsOf(r.params.id!),
        });
      },
    },
    {
      method: 'POST',
      path: '/compute/allocations/:id/usage',
      roles: [...ALLOCATION_PEOPLE],
      hidden: true,
      audit: { entityType: 'compute_allocation', action: 'report_usage' },
      handle: async (r) => {
        await supplierAllocation(r.principal, r.params.id!);
        return ok(await usage.report(r.params.id!, r.body, r.trail));
      },
    },
    {
      method: 'GET',
      path: '/compute/allocations/:id/events',
      roles: [...ALLOCATION_PEOPLE],
      hidden: true,
      handle: async (r) => {
        await visibleAllocation(r.principal, r.params.id!);
        return list(await allocations.events(r.params.id!));
      },
    },
    {
      // the operator: try the scheduler step now instead of at its next retry
      method: 'POST',
      path: '/compute/allocations/:id/provision',
      roles: [],
      audit: 'handler',
      handle: async (r) => {
        const result = await afterStep(r.params.id!);
        await r.audit({
          entityType: 'compute_allocation',
          action: 'provision',
          entityId: r.params.id!,
          after: result.body,
        });
        return result;
      },
    },
    {
      method: 'POST',
      path: '/compute/allocations/:id/reclaim',
      roles: [],
      audit: { entityType: 'compute_allocation', action: 'reclaim' },
      handle: async (r) => {
        const after = await allocations.reclaim(r.params.id!, r.body, r.trail);
        return after.status === 'ending' ? afterStep(after.id) : ok(after);
      },
    },
    {
      method: 'POST',
      path: '/compute/allocations/:id/handover',
      roles: [...ALLOCATION_PEOPLE],
      hidden: true,
      audit: { entityType: 'compute_allocation', action: 'handover' },
      handle: async (r) => {
        await supplierAllocation(r.principal, r.params.id!);
        return ok(await allocations.confirmHandover(r.params.id!, r.trail));
      },
    },
    {
      method: 'POST',
      path: '/compute/allocations/:id/return',
      roles: [...ALLOCATION_PEOPLE],
      hidden: true,
      audit: { entityType: 'compute_allocation', action: 'return' },
      handle: async (r) => {
        await supplierAllocation(r.principal, r.params.id!);
        return ok(await allocations.confirmReturn(r.params.id!, r.trail));
      },
    },
    {
      method: 'POST',
      path: '/compute/allocations/:id/accept',
      roles: [...ALLOCATION_PEOPLE],
      hidden: true,
      audit: { entityType: 'compute_allocation', action: 'accept_offer' },
      handle: async (r) => {
        await organizationAllocation(r.principal, r.params.id!);
        return ok(await offers.accept(r.params.id!, r.trail));
      },
    },
    {
      method: 'POST',
      path: '/compute/allocations/:id/decline',
      roles: [...ALLOCATION_PEOPLE],
      hidden: true,
      audit: { entityType: 'compute_allocation', action: 'decline_offer' },
      handle: async (r) => {
        await organizationAllocation(r.principal, r.params.id!);
        return ok(await offers.decline(r.params.id!, r.trail));
      },
    },
    {
      method: 'POST',
      path: '/compute/allocations/:id/extensions',
      roles: [...ALLOCATION_PEOPLE],
      hidden: true,
      audit: { entityType: 'compute_extension', action: 'request' },
      handle: async (r) => {
        await organizationAllocation(r.principal, r.params.id!);
        return created(await extensions.request(r.params.id!, r.body, r.trail));
      },
    },
    {
      method: 'POST',
      path: '/compute/extensions/:id/approve',
      roles: [],
      audit: { entityType: 'compute_extension', action: 'approve' },
      handle: async (r) => ok(await extensions.approve(r.params.id!, r.body, r.trail, r.principal.actorId)),
    },
    {
      method: 'POST',
      path: '/compute/extensions/:id/reject',
      roles: [],
      audit: { entityType: 'compute_extension', action: 'reject' },
      handle: async (r) => ok(await extensions.reject(r.params.id!, r.body, r.trail, r.principal.actorId)),
    },

    // --- settlement, and the loop run by hand -----------------------------------------------------
    {
      method: 'GET',
      path: '/compute/settlements/:month/suppliers/:id',
      roles: ['supplier_admin'],
      hidden: true,
      handle: async (r) => {
        requireSupplierPrivate(
          r.principal,
          r.params.id!,
          'compute statement',
          `${r.params.month}/${r.params.id}`,
        );
        return inFormat(r.query.format, {
          body: await compute.statements.statement(r.params.month!, r.params.id!),
          csv: computeStatementCsv,
          xlsx: computeStatementXlsx,
          filename: computeStatementFilename,
        });
      },
    },
    {
      method: 'POST',
      path: '/compute/reconcile',
      roles: [],
      audit: 'handler',
      handle: async (r) => {
        const steps = parseInput(
          z.strictObject({
            usage: z.boolean().optional(),
            checks: z.boolean().optional(),
            drift: z.boolean().optional(),
          }),
          r.body,
        );
        const report = await compute.reconciler.tick(steps);
        await r.audit({ entityType: 'compute', action: 'reconcile', entityId: 'compute', after: report });
        return ok(report);
      },
    },
  ];
}
