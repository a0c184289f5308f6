import type { AuditLog } from '../../audit/audit-log.ts';
import { parseCatalogFile } from '../../catalog/catalog-file.ts';
import { exportCatalog } from '../../catalog/catalog-import.ts';
import type { CatalogService } from '../../catalog/catalog-service.ts';
import { ValidationError } from '../../errors.ts';
import type { Database } from '../../storage/database.ts';
import { list, ok } from './results.ts';
import type { AdminRoute } from './router.ts';

export interface OperationDeps {
  db: Database;
  auditLog: AuditLog;
  catalog: CatalogService;
}

/** `?dryRun=true`: query flags are text; only `true` and `false` mean anything. */
function flag(query: Record<string, string>, name: string): boolean {
  const value = query[name];
  if (value === undefined || value === 'false') return false;
  if (value === 'true') return true;
  throw ValidationError.of(name, 'expected true or false');
}

/** The operator's own tools: the audit log, secret-key rotation, catalogue files. */
export function operationRoutes({ db, auditLog, catalog }: OperationDeps): AdminRoute[] {
  return [
    {
      method: 'POST',
      path: '/catalog/import',
      roles: [],
      audit: 'handler',
      handle: async (r) => {
        const options = {
          dryRun: flag(r.query, 'dryRun'),
          overwrite: flag(r.query, 'overwrite'),
          actorId: r.principal.actorId,
        };
        const file = parseCatalogFile(r.body);
        const report = await catalog.importCatalog(file, options, (entry, tx) =>
          r.audit({ action: 'import', ...entry }, tx),
        );
        return ok(report);
      },
    },
    { method: 'GET', path: '/catalog/export', roles: [], handle: async () => ok(await exportCatalog(db)) },
    { method: 'GET', path: '/audit', roles: [], handle: async (r) => list(await auditLog.query(r.query)) },
    {
      // After KAIHUB_SECRET_KEY changed (the old key kept in KAIHUB_SECRET_KEYS_OLD): every
      // credential sealed under the new key, so the old one can go.
      method: 'POST',
      path: '/credentials/reseal',
      roles: [],
      audit: 'handler',
      handle: async (r) => {
        const report = await catalog.resealCredentials((tx, change) =>
          r.audit({ action: 'reseal', entityType: 'deployment', ...change }, tx),
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
