import type { ApiKeyService } from '../../accounts/api-keys.ts';
import type { OrganizationService } from '../../accounts/organizations.ts';
import type { UsageJournal } from '../../billing/usage-journal.ts';
import { listRejectedUsage, listUsageEvents, queryUsage } from '../../billing/usage-query.ts';
import type { Deployment } from '../../catalog/catalog-records.ts';
import type { CatalogService } from '../../catalog/catalog-service.ts';
import type { DeploymentHealth } from '../../routing/health.ts';
import type { DeploymentLoad } from '../../routing/load.ts';
import type { Database } from '../../storage/database.ts';
import type { AdminRoute } from './router.ts';

export interface AdminDeps {
  db: Database;
  catalog: CatalogService;
  organizations: OrganizationService;
  keys: ApiKeyService;
  /** Synced before usage is read, so this replica's answers include every completed request. */
  usageJournal: UsageJournal;
  /** This replica's in-memory deployment health, shown with each deployment. */
  health?: DeploymentHealth;
  /** This replica's in-flight counts and queues, shown with each deployment. */
  load?: DeploymentLoad;
  /** The cap a deployment without its own has (KAIHUB_DEPLOYMENT_MAX_CONCURRENT). */
  defaultMaxConcurrent?: number;
}

const ok = (body: unknown) => ({ status: 200, body });
const created = (body: unknown) => ({ status: 201, body });
const list = (data: unknown[]) => ({ status: 200, body: { data } });

/** Every /admin/v1 route in one table: the API at a glance. Handlers only translate. */
export function adminRoutes({
  db,
  catalog,
  organizations,
  keys,
  usageJournal,
  health,
  load,
  defaultMaxConcurrent,
}: AdminDeps): AdminRoute[] {
  const withHealth = (d: Deployment): Deployment => ({
    ...d,
    ...(health && { health: health.view(d.id) }),
    ...(load && {
      load: {
        inFlight: load.inFlight(d.id),
        maxConcurrent: d.maxConcurrent ?? defaultMaxConcurrent ?? 0,
        queued: load.queued(d.productId),
      },
    }),
  });
  return [
    {
      method: 'POST',
      path: '/suppliers',
      handle: async (r) => created(await catalog.createSupplier(r.body)),
    },
    { method: 'GET', path: '/suppliers', handle: async () => list(await catalog.listSuppliers()) },
    {
      method: 'GET',
      path: '/suppliers/:id',
      handle: async (r) => ok(await catalog.getSupplier(r.params.id!)),
    },
    {
      method: 'PATCH',
      path: '/suppliers/:id',
      handle: async (r) => ok(await catalog.updateSupplier(r.params.id!, r.body)),
    },

    { method: 'POST', path: '/products', handle: async (r) => created(await catalog.createProduct(r.body)) },
    {
      method: 'GET',
      path: '/products',
      handle: async (r) =>
        list(await catalog.listProducts({ ...(r.query.supplierId && { supplierId: r.query.supplierId }) })),
    },
    { method: 'GET', path: '/products/:id', handle: async (r) => ok(await catalog.getProduct(r.params.id!)) },
    {
      method: 'PATCH',
      path: '/products/:id',
      handle: async (r) => ok(await catalog.updateProduct(r.params.id!, r.body)),
    },

    {
      method: 'POST',
      path: '/deployments',
      handle: async (r) => created(withHealth(await catalog.createDeployment(r.body))),
    },
    {
      method: 'GET',
      path: '/deployments',
      handle: async (r) =>
        list(
          (await catalog.listDeployments({ ...(r.query.productId && { productId: r.query.productId }) })).map(
            withHealth,
          ),
        ),
    },
    {
      method: 'GET',
      path: '/deployments/:id',
      handle: async (r) => ok(withHealth(await catalog.getDeployment(r.params.id!))),
    },
    {
      method: 'PATCH',
      path: '/deployments/:id',
      handle: async (r) => ok(withHealth(await catalog.updateDeployment(r.params.id!, r.body))),
    },
    {
      method: 'DELETE',
      path: '/deployments/:id',
      handle: async (r) => {
        await catalog.deleteDeployment(r.params.id!);
        return { status: 204 };
      },
    },

    {
      method: 'POST',
      path: '/organizations',
      handle: async (r) => created(await organizations.create(r.body)),
    },
    { method: 'GET', path: '/organizations', handle: async () => list(await organizations.list()) },
    {
      method: 'GET',
      path: '/organizations/:id',
      handle: async (r) => ok(await organizations.get(r.params.id!)),
    },
    {
      method: 'PATCH',
      path: '/organizations/:id',
      handle: async (r) => ok(await organizations.update(r.params.id!, r.body)),
    },
    {
      method: 'POST',
      path: '/organizations/:id/keys',
      handle: async (r) => created(await keys.create(r.params.id!, r.body)),
    },
    {
      method: 'GET',
      path: '/organizations/:id/keys',
      handle: async (r) => list(await keys.list(r.params.id!)),
    },
    { method: 'DELETE', path: '/keys/:id', handle: async (r) => ok(await keys.revoke(r.params.id!)) },

    {
      method: 'GET',
      path: '/usage',
      handle: async (r) => {
        await usageJournal.sync();
        return ok(await queryUsage(db, r.query));
      },
    },
    {
      method: 'GET',
      path: '/usage/rejected',
      handle: async (r) => {
        await usageJournal.sync();
        return list(await listRejectedUsage(db, r.query));
      },
    },
    {
      method: 'GET',
      path: '/usage/events',
      handle: async (r) => {
        await usageJournal.sync();
        return list(await listUsageEvents(db, r.query));
      },
    },
  ];
}
