import { requireReadOrganization, requireSupplierPrivate } from '../../accounts/access.ts';
import type { SettlementService, Statement } from '../../billing/settlement.ts';
import { statementCsv, statementFilename, statementXlsx } from '../../billing/statement-export.ts';
import { inFormat } from './downloads.ts';
import { ORGANIZATION_PEOPLE } from './roles-of-routes.ts';
import type { AdminResult, AdminRoute } from './router.ts';

export interface SettlementDeps {
  settlement: SettlementService;
}

function asFormat(statement: Statement, format: string | undefined): AdminResult {
  return inFormat(format, {
    body: statement,
    csv: statementCsv,
    xlsx: statementXlsx,
    filename: statementFilename,
  });
}

/**
 * Monthly settlement. The operator closes months and reads everything; a supplier admin reads their
 * supplier's statements, an organisation's people their organisation's — nobody else's (404).
 */
export function settlementRoutes({ settlement }: SettlementDeps): AdminRoute[] {
  return [
    {
      method: 'POST',
      path: '/settlements',
      roles: [],
      audit: { entityType: 'settlement_month', action: 'close' },
      handle: async (r) => ({
        status: 201,
        body: await settlement.close(r.body, r.trail, r.principal.actorId),
      }),
    },
    {
      method: 'GET',
      path: '/settlements',
      roles: [],
      handle: async () => ({ status: 200, body: { data: await settlement.months() } }),
    },
    {
      method: 'GET',
      path: '/settlements/:month',
      roles: [],
      handle: async (r) => ({ status: 200, body: await settlement.month(r.params.month!) }),
    },
    {
      method: 'GET',
      path: '/settlements/:month/suppliers/:id',
      roles: ['supplier_admin'],
      hidden: true,
      handle: async (r) => {
        requireSupplierPrivate(
          r.principal,
          r.params.id!,
          'supplier statement',
          `${r.params.month}/${r.params.id}`,
        );
        return asFormat(
          await settlement.statement(r.params.month!, 'supplier', r.params.id!),
          r.query.format,
        );
      },
    },
    {
      method: 'GET',
      path: '/settlements/:month/organizations/:id',
      roles: ORGANIZATION_PEOPLE,
      hidden: true,
      handle: async (r) => {
        requireReadOrganization(r.principal, r.params.id!);
        return asFormat(
          await settlement.statement(r.params.month!, 'organization', r.params.id!),
          r.query.format,
        );
      },
    },
  ];
}
