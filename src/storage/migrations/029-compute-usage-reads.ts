import type { Migration } from '../migrator.ts';

/**
 * What the monthly utilisation check may decide on (docs/compute.md "Usage and utilisation").
 * `read_until`: up to when a scheduler read covered the day; a day is complete once it was read up to
 * its end, and a month is decided only when every day of the allocation in it is (a failed or partial
 * read must not read as "0 used"). Rows written before this column existed were read at `updated_at`.
 * `busy_gpu_seconds`: GPU-seconds weighted by the GPUs' own utilisation, where the scheduler reports it
 * (DCGM on Kubernetes); NULL where it only knows what jobs held (Slurm's sacct, manual reports).
 */
export const migration029ComputeUsageReads: Migration = {
  id: '029-compute-usage-reads',
  statements: [
    'ALTER TABLE compute_usage_daily ADD COLUMN read_until BIGINT',
    'ALTER TABLE compute_usage_daily ADD COLUMN busy_gpu_seconds BIGINT',
    "UPDATE compute_usage_daily SET read_until = updated_at WHERE source <> 'manual'",
  ],
};
