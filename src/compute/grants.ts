import type { SqlExecutor, SqlValue } from '../storage/database.ts';
import { rowBatches } from '../storage/row-batches.ts';
import type { CallTerms } from './calls.ts';
import type { PoolRow } from './pools.ts';
import { accountFor } from './provisioners/registry.ts';
import type { Limits } from './ranking.ts';

/**
 * What every path that grants GPUs shares (a selection run, one approval, an offer, an extension): the
 * limits a grant must fit in, and how an allocation is written with its grant's terms.
 */

/** Each pool's GPUs (a retired pool has none to give), the call's and its tracks' capacities. */
export function limitsOf(call: CallTerms, pools: readonly PoolRow[]): Limits {
  return {
    pools: new Map(pools.map((p) => [p.id, p.status === 'active' ? p.gpuCount : 0])),
    callId: call.id,
    callCapacity: call.capacityGpus,
    trackCapacity: new Map(
      call.tracks.flatMap((t) =>
        t.capacityGpus === undefined ? [] : [[t.id, t.capacityGpus] as [string, number]],
      ),
    ),
  };
}

/** A new allocation, as selection and offers insert it. */
export interface NewAllocation {
  id: string;
  applicationId: string;
  call: CallTerms;
  pool: PoolRow;
  organizationId: string;
  gpus: number;
  startsAt: number;
  endsAt: number;
  gpuHourBudget: number | null;
  schedulerUsers: string;
  status: 'scheduled' | 'offered';
  offerExpiresAt: number | null;
}

const ALLOCATION_COLUMNS = `id, application_id, call_id, pool_id, organization_id, gpus, starts_at, ends_at, gpu_hour_budget,
  price_micro_krw_per_gpu_hour, copay_bp, funding_programme_id, scheduler_account, scheduler_users, status,
  offer_expires_at, created_at, updated_at`;
const ALLOCATION_TUPLE = `(${new Array(18).fill('?').join(', ')})`;

/** Inserts allocations (a hundred per statement): the grant's terms are copied from its call and pool now. */
export async function insertAllocations(
  tx: SqlExecutor,
  list: readonly NewAllocation[],
  now: number,
): Promise<void> {
  for (const batch of rowBatches(list, 100)) {
    await tx.run(
      `INSERT INTO compute_allocations (${ALLOCATION_COLUMNS}) VALUES ${batch.map(() => ALLOCATION_TUPLE).join(', ')}`,
      batch.flatMap((a): SqlValue[] => [
        a.id,
        a.applicationId,
        a.call.id,
        a.pool.id,
        a.organizationId,
        a.gpus,
        a.startsAt,
        a.endsAt,
        a.gpuHourBudget,
        a.pool.priceMicroKrwPerGpuHour,
        a.call.copayBp,
        a.call.fundingProgrammeId,
        accountFor(a.pool.provisioner, a.pool.config, a.organizationId),
        a.schedulerUsers,
        a.status,
        a.offerExpiresAt,
        now,
        now,
      ]),
    );
  }
}
