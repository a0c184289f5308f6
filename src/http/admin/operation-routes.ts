import type { AuditLog } from '../../audit/audit-log.ts';
import type { AdminRoute } from './router.ts';

export interface OperationDeps {
  auditLog: AuditLog;
}

const list = (data: unknown[]) => ({ status: 200, body: { data } });

/** The operator's own tools: the audit log. */
export function operationRoutes({ auditLog }: OperationDeps): AdminRoute[] {
  return [
    { method: 'GET', path: '/audit', roles: [], handle: async (r) => list(await auditLog.query(r.query)) },
  ];
}
