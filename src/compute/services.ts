import type { AuditLog } from '../audit/audit-log.ts';
import type { CredentialBox } from '../catalog/credentials.ts';
import type { Logger } from '../observability/logger.ts';
import type { Database } from '../storage/database.ts';
import { AllocationService } from './allocations.ts';
import { ComputeApplicationService } from './applications.ts';
import { CallService } from './calls.ts';
import { ExtensionService } from './extensions.ts';
import { ComputeLifecycle } from './lifecycle.ts';
import { OfferService } from './offers.ts';
import { PoolService } from './pools.ts';
import { type ProvisionerOverrides, ProvisionerRegistry } from './provisioners/registry.ts';
import { ComputeReconciler, type ReconcilerSettings } from './reconciler.ts';
import { ComputeReviewService } from './reviews.ts';
import { ComputeSelectionService } from './selection.ts';
import { ComputeStatementService } from './statements.ts';
import { UsageService } from './usage.ts';
import { UtilisationService } from './utilisation.ts';
import type { Clock } from './values.ts';

/** The compute services, made together because they share one clock and one provisioner registry. */
export interface ComputeServices {
  clock: Clock;
  pools: PoolService;
  calls: CallService;
  applications: ComputeApplicationService;
  reviews: ComputeReviewService;
  selection: ComputeSelectionService;
  allocations: AllocationService;
  offers: OfferService;
  extensions: ExtensionService;
  usage: UsageService;
  utilisation: UtilisationService;
  lifecycle: ComputeLifecycle;
  reconciler: ComputeReconciler;
  statements: ComputeStatementService;
}

export interface ComputeOptions {
  clock?: Clock;
  provisioners?: ProvisionerOverrides;
  reconciler: ReconcilerSettings;
  /** Records what the background loop changes. */
  auditLog?: AuditLog;
}

/** Builds the compute services (called from the composition root, app.ts). */
export function createComputeServices(
  db: Database,
  credentials: CredentialBox,
  logger: Logger,
  options: ComputeOptions,
): ComputeServices {
  const clock = options.clock ?? Date.now;
  const pools = new PoolService(db, credentials, clock);
  const calls = new CallService(db, clock);
  const applications = new ComputeApplicationService(db, calls, pools, clock);
  const reviews = new ComputeReviewService(db, calls, applications);
  const selection = new ComputeSelectionService(db, calls, pools, applications, clock);
  const allocations = new AllocationService(db, clock);
  const offers = new OfferService(db, calls, pools, allocations, clock);
  const extensions = new ExtensionService(db, calls, pools, allocations, clock);
  const lifecycle = new ComputeLifecycle(
    db,
    pools,
    new ProvisionerRegistry(credentials, options.provisioners),
    clock,
    logger,
  );
  const usage = new UsageService(db, pools, lifecycle, clock);
  const utilisation = new UtilisationService(db, calls, allocations, clock);
  const reconciler = new ComputeReconciler(
    db,
    pools,
    lifecycle,
    offers,
    usage,
    utilisation,
    clock,
    options.reconciler,
    logger,
    options.auditLog,
  );
  // without background ticks (tests, a hub that only serves), changes wait for POST /compute/reconcile
  if (options.reconciler.intervalMs > 0) {
    selection.onAllocated = () => reconciler.kick();
    offers.onAccepted = () => reconciler.kick();
  }
  return {
    clock,
    pools,
    calls,
    applications,
    reviews,
    selection,
    allocations,
    offers,
    extensions,
    usage,
    utilisation,
    lifecycle,
    reconciler,
    statements: new ComputeStatementService(db),
  };
}
