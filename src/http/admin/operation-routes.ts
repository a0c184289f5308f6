import type { AuditLog } from '../../audit/audit-log.ts';
import type { CatalogService } from '../../catalog/catalog-service.ts';
import type { AdminRoute } from './router.ts';

export interface OperationDeps {
  auditLog: AuditLog;
  catalog: CatalogService;
}

const ok = (body: unknown) => ({ status: 200, body });
const list = (data: unknown[]) => ({ status: 200, body: { data } });

/** The operator's own tools: the audit log, secret-key rotation. */
export function operationRoutes({ auditLog, catalog }: OperationDeps): AdminRoute[] {
  return [
    { method: 'GET', path: '/audit', roles: [], handle: async (r) => list(await auditLog.query(r.query)) },
    {
      // After KAIHUB_SECRET_KEY changed (the old key kept in KAIHUB_SECRET_KEYS_OLD): every
      // credential sealed under the new key, so the old one can go.
      method: 'POST',
      path: '/credentials/reseal',
      roles: [],
      audit: 'handler',
      handle: async (r) => {
        const report = await catalog.resealCredentials((deploymentId, fromKeyId, toKeyId) =>
          r.audit({
            action: 'reseal',
            entityType: 'deployment',
            entityId: deploymentId,
            before: { credential: { keyId: fromKeyId } },
            after: { credential: { keyId: toKeyId } },
          }),
        );
        // The run itself, even when it changed nothing: who rotated, and what was left unreadable.
        await r.audit({
          action: 'reseal',
          entityType: 'secret_key',
          entityId: report.keyId,
          after: {
            resealed: report.resealed.length,
            alreadyCurrent: report.alreadyCurrent,
            unreadable: report.unreadable,
          },
        });
        return ok(report);
      },
    },
  ];
}
