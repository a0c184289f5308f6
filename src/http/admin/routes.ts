import {
  requireManageOrganization,
  requireManageSupplier,
  requireOnlyFields,
  requireReadOrganization,
  requireSupplierDeployment,
} from '../../accounts/access.ts';
import type { ApiKeyService } from '../../accounts/api-keys.ts';
import type { OrganizationService } from '../../accounts/organizations.ts';
import { mayReadOrganization, type Principal, readableOrganizations } from '../../accounts/roles.ts';
import type { UsageJournal } from '../../billing/usage-journal.ts';
import {
  listRejectedUsage,
  listUsageEvents,
  queryUsage,
  type UsageScope,
} from '../../billing/usage-query.ts';
import type { Deployment, UrlSetter } from '../../catalog/catalog-records.ts';
import type { CatalogService } from '../../catalog/catalog-service.ts';
import { ForbiddenError, NotFoundError, ValidationError } from '../../errors.ts';
import type { NetworkPolicy } from '../../providers/network.ts';
import type { DeploymentHealth } from '../../routing/health.ts';
import type { DeploymentLoad } from '../../routing/load.ts';
import type { Database } from '../../storage/database.ts';
import { type ApplicationDeps, applicationRoutes } from './application-routes.ts';
import { type ComputeDeps, computeRoutes } from './compute-routes.ts';
import { type EvaluationDeps, evaluationRoutes } from './evaluation-routes.ts';
import {
  type AlertDeps,
  alertRoutes,
  type FundingDeps,
  fundingRoutes,
  type ProgrammeCloseDeps,
  programmeCloseRoutes,
} from './funding-routes.ts';
import { type GuardrailDeps, guardrailRoutes } from './guardrail-routes.ts';
import { type OperationDeps, operationRoutes } from './operation-routes.ts';
import { type PeopleDeps, peopleRoutes } from './people-routes.ts';
import { created, list, ok } from './results.ts';
import { EVERYONE, ORGANIZATION_PEOPLE } from './roles-of-routes.ts';
import { type RoundDeps, roundRoutes } from './round-routes.ts';
import type { AdminRoute } from './router.ts';
import { type SettlementDeps, settlementRoutes } from './settlement-routes.ts';

export interface AdminDeps
  extends OperationDeps,
    PeopleDeps,
    FundingDeps,
    SettlementDeps,
    AlertDeps,
    ApplicationDeps,
    ProgrammeCloseDeps,
    GuardrailDeps,
    RoundDeps,
    ComputeDeps,
    EvaluationDeps {
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
  /** Where a supplier admin's deployment may point (KAIHUB_SUPPLIER_NETWORKS). */
  supplierNetworks: NetworkPolicy;
}

/** What a supplier admin may change on their supplier; the name and status are the operator's. */
const SUPPLIER_ADMIN_SUPPLIER_FIELDS = ['nameEn', 'contactName', 'contactEmail', 'website'];
/** What an organisation admin may change on their organisation; the rest is the operator's. */
const ORG_ADMIN_ORGANIZATION_FIELDS = ['fallbackModels'];

const bodyField = (body: unknown, field: string): unknown =>
  body && typeof body === 'object' ? (body as Record<string, unknown>)[field] : undefined;

/**
 * What stays the operator's even on a supplier's own things: which supplier a product belongs to,
 * fallback chains (they send callers to other suppliers' products), and `local` deployments (they
 * run on the hub's own machine). `creating`: the supplier id of a new product is checked elsewhere.
 */
function requireOperatorProductDecisions(p: Principal, body: unknown, creating: boolean): void {
  if (p.operator) return;
  if (!creating && bodyField(body, 'supplierId') !== undefined)
    throw new ForbiddenError('only the operator moves a product to another supplier');
  if (bodyField(body, 'fallbackModels') !== undefined)
    throw new ForbiddenError('fallback chains across products are the operator’s to set');
}

function requireOperatorDeploymentDecisions(
  p: Principal,
  networks: NetworkPolicy,
  body: unknown,
  currentAdapter?: string,
): void {
  if (p.operator) return;
  if (bodyField(body, 'adapter') === 'local' || currentAdapter === 'local')
    throw new ForbiddenError(
      'local deployments run on the hub’s own machine: only the operator manages them',
    );
  const baseUrl = bodyField(body, 'baseUrl');
  const problem = typeof baseUrl === 'string' ? networks.urlProblem(baseUrl) : undefined;
  if (problem) throw ValidationError.of('baseUrl', problem);
}

const urlSetter = (p: Principal): UrlSetter => (p.operator ? 'operator' : 'supplier_admin');

/**
 * Every /admin/v1 route in one table: the API at a glance, with who may call each (`roles`; the
 * operator always may) and the tenant check each makes. Handlers only check and translate.
 */
export function adminRoutes(deps: AdminDeps): AdminRoute[] {
  const {
    db,
    catalog,
    organizations,
    keys,
    usageJournal,
    health,
    load,
    defaultMaxConcurrent,
    supplierNetworks,
    scores,
  } = deps;
  /** A product as the catalogue shows it: with its latest evaluation scores, once it has some. */
  const withScores = <P extends { id: string }>(p: P) => {
    const evaluations = scores.of(p.id);
    return evaluations.length === 0 ? p : { ...p, evaluations };
  };
  /** This replica's view of a deployment: its health and its load (in flight, cap, queued). */
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
  /** The deployment, if the caller may see it (its supplier's admins and the operator): else 404. */
  const visibleDeployment = async (p: Principal, id: string) => {
    const deployment = await catalog.getDeployment(id);
    requireSupplierDeployment(p, (await catalog.supplierOfProduct(deployment.productId)) ?? '', id);
    return deployment;
  };
  const usageScope = async (p: Principal): Promise<UsageScope | undefined> =>
    p.operator
      ? undefined
      : {
          organizationIds: readableOrganizations(p),
          productIds: await catalog.productIdsOf([...p.supplierAdminOf]),
        };

  return [
    {
      method: 'POST',
      path: '/suppliers',
      roles: [],
      audit: { entityType: 'supplier', action: 'create' },
      handle: async (r) => created(await catalog.createSupplier(r.body, r.trail)),
    },
    {
      method: 'GET',
      path: '/suppliers',
      roles: EVERYONE,
      handle: async () => list(await catalog.listSuppliers()),
    },
    {
      method: 'GET',
      path: '/suppliers/:id',
      roles: EVERYONE,
      handle: async (r) => ok(await catalog.getSupplier(r.params.id!)),
    },
    {
      method: 'PATCH',
      path: '/suppliers/:id',
      roles: ['supplier_admin'],
      audit: { entityType: 'supplier', action: 'update' },
      handle: async (r) => {
        requireManageSupplier(r.principal, r.params.id!);
        if (!r.principal.operator)
          requireOnlyFields(r.body, SUPPLIER_ADMIN_SUPPLIER_FIELDS, 'a supplier admin');
        return ok(await catalog.updateSupplier(r.params.id!, r.body, r.trail));
      },
    },

    {
      method: 'POST',
      path: '/products',
      roles: ['supplier_admin'],
      audit: { entityType: 'product', action: 'create' },
      handle: async (r) => {
        const supplierId = bodyField(r.body, 'supplierId');
        // Without a supplier id the validation names the field (400); with one, it must be theirs.
        if (typeof supplierId === 'string') requireManageSupplier(r.principal, supplierId);
        requireOperatorProductDecisions(r.principal, r.body, true);
        return created(await catalog.createProduct(r.body, r.trail, r.principal.actorId));
      },
    },
    {
      method: 'GET',
      path: '/products',
      roles: EVERYONE,
      handle: async (r) =>
        list(
          (await catalog.listProducts({ ...(r.query.supplierId && { supplierId: r.query.supplierId }) })).map(
            withScores,
          ),
        ),
    },
    {
      method: 'GET',
      path: '/products/:id',
      roles: EVERYONE,
      handle: async (r) => ok(withScores(await catalog.getProduct(r.params.id!))),
    },
    {
      method: 'PATCH',
      path: '/products/:id',
      roles: ['supplier_admin'],
      audit: { entityType: 'product', action: 'update' },
      handle: async (r) => {
        const product = await catalog.getProduct(r.params.id!);
        requireManageSupplier(r.principal, product.supplierId);
        requireOperatorProductDecisions(r.principal, r.body, false);
        return ok(await catalog.updateProduct(r.params.id!, r.body, r.trail, r.principal.actorId));
      },
    },
    {
      // The schedule is as public as the price: the catalogue is (docs/roles.md).
      method: 'GET',
      path: '/products/:id/prices',
      roles: EVERYONE,
      handle: async (r) => list(await catalog.listPrices(r.params.id!)),
    },

    {
      method: 'POST',
      path: '/deployments',
      roles: ['supplier_admin'],
      audit: { entityType: 'deployment', action: 'create' },
      handle: async (r) => {
        const productId = bodyField(r.body, 'productId');
        const supplierId =
          typeof productId === 'string' ? await catalog.supplierOfProduct(productId) : undefined;
        // A missing or unknown product is the validation's to name (400 productId); a product is
        // public, so someone else's is a 403.
        if (supplierId !== undefined) requireManageSupplier(r.principal, supplierId);
        requireOperatorDeploymentDecisions(r.principal, supplierNetworks, r.body);
        return created(withHealth(await catalog.createDeployment(r.body, r.trail, urlSetter(r.principal))));
      },
    },
    {
      method: 'GET',
      path: '/deployments',
      roles: ['supplier_admin'],
      handle: async (r) =>
        list(
          (
            await catalog.listDeployments({
              ...(r.query.productId && { productId: r.query.productId }),
              ...(!r.principal.operator && { supplierIds: [...r.principal.supplierAdminOf] }),
            })
          ).map(withHealth),
        ),
    },
    {
      method: 'GET',
      path: '/deployments/:id',
      roles: ['supplier_admin'],
      hidden: true,
      handle: async (r) => ok(withHealth(await visibleDeployment(r.principal, r.params.id!))),
    },
    {
      method: 'PATCH',
      path: '/deployments/:id',
      roles: ['supplier_admin'],
      hidden: true,
      audit: { entityType: 'deployment', action: 'update' },
      handle: async (r) => {
        const deployment = await visibleDeployment(r.principal, r.params.id!);
        requireOperatorDeploymentDecisions(r.principal, supplierNetworks, r.body, deployment.adapter);
        return ok(
          withHealth(await catalog.updateDeployment(r.params.id!, r.body, r.trail, urlSetter(r.principal))),
        );
      },
    },
    {
      method: 'DELETE',
      path: '/deployments/:id',
      roles: ['supplier_admin'],
      hidden: true,
      audit: { entityType: 'deployment', action: 'delete' },
      handle: async (r) => {
        const deployment = await visibleDeployment(r.principal, r.params.id!);
        requireOperatorDeploymentDecisions(r.principal, supplierNetworks, undefined, deployment.adapter);
        await catalog.deleteDeployment(r.params.id!, r.trail);
        return { status: 204 };
      },
    },

    {
      method: 'POST',
      path: '/organizations',
      roles: [],
      audit: { entityType: 'organization', action: 'create' },
      handle: async (r) => created(await organizations.create(r.body, r.trail)),
    },
    {
      method: 'GET',
      path: '/organizations',
      roles: ORGANIZATION_PEOPLE,
      handle: async (r) => {
        const all = await organizations.list();
        if (r.principal.operator) return list(all);
        const mine = new Set(readableOrganizations(r.principal));
        return list(all.filter((o) => mine.has(o.id)));
      },
    },
    {
      method: 'GET',
      path: '/organizations/:id',
      roles: ORGANIZATION_PEOPLE,
      hidden: true,
      handle: async (r) => {
        requireReadOrganization(r.principal, r.params.id!);
        return ok(await organizations.get(r.params.id!));
      },
    },
    {
      method: 'PATCH',
      path: '/organizations/:id',
      roles: ORGANIZATION_PEOPLE,
      hidden: true,
      audit: { entityType: 'organization', action: 'update' },
      handle: async (r) => {
        requireManageOrganization(r.principal, r.params.id!);
        if (!r.principal.operator)
          requireOnlyFields(r.body, ORG_ADMIN_ORGANIZATION_FIELDS, 'an organization admin');
        return ok(await organizations.update(r.params.id!, r.body, r.trail));
      },
    },
    {
      method: 'POST',
      path: '/organizations/:id/keys',
      roles: ORGANIZATION_PEOPLE,
      hidden: true,
      audit: { entityType: 'api_key', action: 'create' },
      handle: async (r) => {
        requireManageOrganization(r.principal, r.params.id!);
        if (!r.principal.operator && bodyField(r.body, 'rateLimits') !== undefined)
          throw new ForbiddenError('only the operator may set rate limits');
        return created(await keys.create(r.params.id!, r.body, r.trail));
      },
    },
    {
      method: 'GET',
      path: '/organizations/:id/keys',
      roles: ORGANIZATION_PEOPLE,
      hidden: true,
      handle: async (r) => {
        requireReadOrganization(r.principal, r.params.id!);
        return list(await keys.list(r.params.id!));
      },
    },
    {
      method: 'DELETE',
      path: '/keys/:id',
      roles: ORGANIZATION_PEOPLE,
      hidden: true,
      audit: { entityType: 'api_key', action: 'revoke' },
      handle: async (r) => {
        const key = await keys.get(r.params.id!);
        if (!mayReadOrganization(r.principal, key.organizationId))
          throw new NotFoundError('key', r.params.id!);
        requireManageOrganization(r.principal, key.organizationId);
        return ok(await keys.revoke(r.params.id!, r.trail));
      },
    },

    {
      method: 'GET',
      path: '/usage',
      roles: ['supplier_admin', ...ORGANIZATION_PEOPLE],
      handle: async (r) => {
        const p = r.principal;
        const byCustomer =
          r.query.organizationId !== undefined ||
          r.query.keyId !== undefined ||
          r.query.groupBy === 'organization' ||
          r.query.groupBy === 'key';
        let scope = await usageScope(p);
        // Which organisations call a supplier's products is theirs to know, not the supplier's.
        if (scope && byCustomer) {
          if (scope.organizationIds.length === 0)
            throw new ForbiddenError(
              'supplier admins see the usage of their products by day or product, not by organization or key',
            );
          scope = { organizationIds: scope.organizationIds, productIds: [] };
        }
        await usageJournal.syncAll();
        return ok(await queryUsage(db, r.query, scope));
      },
    },
    {
      method: 'GET',
      path: '/usage/rejected',
      // the records of every organisation: the operator's to examine and correct
      roles: [],
      handle: async (r) => {
        await usageJournal.syncAll();
        return list(await listRejectedUsage(db, r.query));
      },
    },
    {
      method: 'GET',
      path: '/usage/events',
      roles: ORGANIZATION_PEOPLE,
      handle: async (r) => {
        await usageJournal.syncAll();
        const p = r.principal;
        if (p.operator) return list(await listUsageEvents(db, r.query));
        const events = await listUsageEvents(db, r.query, {
          organizationIds: readableOrganizations(p),
          productIds: [],
        });
        // Which deployment served is the supplier's business: an organisation sees the product.
        return list(
          events.map((e) => ({
            ...e,
            deploymentId: null,
            attempts: e.attempts.map((a) => ({ ...a, deploymentId: null })),
          })),
        );
      },
    },

    ...peopleRoutes(deps),
    ...operationRoutes(deps),
    ...fundingRoutes(deps),
    ...settlementRoutes(deps),
    ...alertRoutes(deps),
    ...programmeCloseRoutes(deps),
    ...applicationRoutes(deps),
    ...guardrailRoutes(deps),
    ...roundRoutes(deps),
    ...computeRoutes(deps),
    ...evaluationRoutes(deps),
  ];
}
