import {
  requireManageOrganization,
  requireOperator,
  requireReadOrganization,
} from '../../accounts/access.ts';
import { mayReadOrganization } from '../../accounts/roles.ts';
import type { CorrectionService } from '../../billing/corrections.ts';
import { finalReportCsv, finalReportFilename, finalReportXlsx } from '../../billing/final-report-export.ts';
import type { FundsService } from '../../billing/funds.ts';
import type { MicroKrw } from '../../billing/money.ts';
import { formatKrw } from '../../billing/money.ts';
import type { ProgrammeCloseService } from '../../billing/programme-close.ts';
import type { ProgrammeService } from '../../billing/programmes.ts';
import type { UsageJournal } from '../../billing/usage-journal.ts';
import type { WebhookService } from '../../billing/webhooks.ts';
import { NotFoundError } from '../../errors.ts';
import { inFormat } from './downloads.ts';
import { created, list, ok } from './results.ts';
import { EVERYONE, ORGANIZATION_PEOPLE } from './roles-of-routes.ts';
import type { AdminRoute } from './router.ts';

export interface FundingDeps {
  programmes: ProgrammeService;
  funds: FundsService;
  corrections: CorrectionService;
  /** Budget holds, in memory (this replica's) or shared through Redis (every replica's). */
  budgetHolds?: { heldFor(organizationId: string): MicroKrw | Promise<MicroKrw> };
  /** Balances and ledgers show every call a client saw complete (decision 0021: charged just after). */
  usageJournal?: Pick<UsageJournal, 'syncAll'>;
}

/**
 * Programmes, vouchers and wallets. Programmes are public (an organisation reads what it may apply
 * to); the operator creates them, issues vouchers and records deposits; an organisation's people see
 * their own funds and ledger, nobody else's.
 */
export function fundingRoutes({
  programmes,
  funds,
  corrections,
  budgetHolds,
  usageJournal,
}: FundingDeps): AdminRoute[] {
  return [
    {
      method: 'POST',
      path: '/programmes',
      roles: [],
      audit: { entityType: 'programme', action: 'create' },
      handle: async (r) => created(await programmes.create(r.body, r.trail, r.principal.actorId)),
    },
    {
      method: 'GET',
      path: '/programmes',
      roles: EVERYONE,
      handle: async () => list(await programmes.list()),
    },
    {
      method: 'GET',
      path: '/programmes/:id',
      roles: EVERYONE,
      // who reviews it is the operator's to know
      handle: async (r) => {
        const programme = await programmes.get(r.params.id!);
        return ok(r.principal.operator ? await programmes.withEvaluators(programme) : programme);
      },
    },
    {
      method: 'POST',
      path: '/programmes/:id/vouchers',
      roles: [],
      audit: { entityType: 'voucher', action: 'issue' },
      handle: async (r) =>
        created(await programmes.issueVoucher(r.params.id!, r.body, r.trail, r.principal.actorId)),
    },
    {
      method: 'GET',
      path: '/programmes/:id/vouchers',
      roles: [],
      handle: async (r) => {
        await programmes.get(r.params.id!);
        return list(await programmes.vouchers({ programmeId: r.params.id! }));
      },
    },
    {
      method: 'POST',
      path: '/organizations/:id/deposits',
      roles: ORGANIZATION_PEOPLE,
      hidden: true,
      audit: { entityType: 'wallet', action: 'deposit' },
      handle: async (r) => {
        requireManageOrganization(r.principal, r.params.id!);
        requireOperator(r.principal, 'record deposits');
        return created(await funds.deposit(r.params.id!, r.body, r.trail, r.principal.actorId));
      },
    },
    {
      method: 'POST',
      path: '/organizations/:id/corrections',
      roles: ORGANIZATION_PEOPLE,
      // like a deposit: an organisation's admin learns it exists, an outsider that nothing does
      hidden: true,
      audit: { entityType: 'wallet', action: 'correct' },
      handle: async (r) => {
        requireManageOrganization(r.principal, r.params.id!);
        requireOperator(r.principal, 'correct the ledger');
        return created(await corrections.create(r.params.id!, r.body, r.trail, r.principal.actorId));
      },
    },
    {
      method: 'GET',
      path: '/organizations/:id/funds',
      roles: ORGANIZATION_PEOPLE,
      hidden: true,
      handle: async (r) => {
        requireReadOrganization(r.principal, r.params.id!);
        await usageJournal?.syncAll();
        const body = await funds.of(r.params.id!);
        // in memory: this replica's holds; with Redis: every replica's
        const held = (await budgetHolds?.heldFor(r.params.id!)) ?? 0n;
        return ok({ ...body, heldKrw: formatKrw(held) });
      },
    },
    {
      method: 'GET',
      path: '/organizations/:id/ledger',
      roles: ORGANIZATION_PEOPLE,
      hidden: true,
      handle: async (r) => {
        requireReadOrganization(r.principal, r.params.id!);
        await usageJournal?.syncAll();
        return list(await funds.ledger(r.params.id!, r.query));
      },
    },
  ];
}

export interface AlertDeps {
  webhooks: WebhookService;
  /** Events are raised by charges: posted just after the record on PostgreSQL (decision 0021). */
  usageJournal?: Pick<UsageJournal, 'syncAll'>;
}

/** An organisation's webhooks (its admins) and events (its people). */
export function alertRoutes({ webhooks, usageJournal }: AlertDeps): AdminRoute[] {
  return [
    {
      method: 'POST',
      path: '/organizations/:id/webhooks',
      roles: ORGANIZATION_PEOPLE,
      hidden: true,
      audit: { entityType: 'webhook', action: 'create' },
      handle: async (r) => {
        requireManageOrganization(r.principal, r.params.id!);
        return created(await webhooks.create(r.params.id!, r.body, r.trail));
      },
    },
    {
      method: 'GET',
      path: '/organizations/:id/webhooks',
      roles: ORGANIZATION_PEOPLE,
      hidden: true,
      handle: async (r) => {
        requireReadOrganization(r.principal, r.params.id!);
        return list(await webhooks.list(r.params.id!));
      },
    },
    {
      method: 'DELETE',
      path: '/webhooks/:id',
      roles: ORGANIZATION_PEOPLE,
      hidden: true,
      audit: { entityType: 'webhook', action: 'disable' },
      handle: async (r) => {
        const webhook = await webhooks.get(r.params.id!);
        // a foreign organisation's webhook is answered as a nonexistent one
        if (!mayReadOrganization(r.principal, webhook.organizationId))
          throw new NotFoundError('webhook', r.params.id!);
        requireManageOrganization(r.principal, webhook.organizationId);
        return ok(await webhooks.disable(r.params.id!, r.trail));
      },
    },
    {
      method: 'GET',
      path: '/organizations/:id/events',
      roles: ORGANIZATION_PEOPLE,
      hidden: true,
      handle: async (r) => {
        requireReadOrganization(r.principal, r.params.id!);
        await usageJournal?.syncAll();
        return list(await webhooks.events(r.params.id!, r.query));
      },
    },
  ];
}

export interface ProgrammeCloseDeps {
  programmeClose: ProgrammeCloseService;
}

/** Closing a programme and its final report: the operator's. */
export function programmeCloseRoutes({ programmeClose }: ProgrammeCloseDeps): AdminRoute[] {
  return [
    {
      method: 'POST',
      path: '/programmes/:id/close',
      roles: [],
      audit: { entityType: 'programme', action: 'close' },
      handle: async (r) =>
        created(await programmeClose.close(r.params.id!, r.body, r.trail, r.principal.actorId)),
    },
    {
      method: 'GET',
      path: '/programmes/:id/final-report',
      roles: [],
      // a document like a statement: ?format=csv|xlsx for the programme's own books
      handle: async (r) =>
        inFormat(r.query.format, {
          body: await programmeClose.report(r.params.id!),
          csv: finalReportCsv,
          xlsx: finalReportXlsx,
          filename: finalReportFilename,
        }),
    },
  ];
}
