/**
 * The contract between the hub and a scheduler (docs/compute.md "Provisioners"). One folder per engine
 * under compute/provisioners/, as providers/ has one per protocol; `registry.ts` builds one for a pool.
 *
 * The hub thinks in **accounts**: per organisation and pool one scheduler account (a Slurm account
 * with its association, a Kubernetes namespace with its quota) whose GPU limit is the organisation's
 * live allocation on that pool, or zero. A provisioner makes the scheduler match a desired account
 * (`apply`, idempotent: applying twice is applying once) and says what the scheduler has (`observe`),
 * which is how the hub knows an allocation is really active and how drift is found.
 */

export type ProvisionerEngine = 'manual' | 'slurm' | 'kubernetes';

/** What the hub wants the scheduler to have for one account. */
export interface AccountTarget {
  account: string;
  organizationId: string;
  /** GPUs the account may hold at once; 0 grants nothing. */
  gpus: number;
  /** A GPU-minute budget over the grant (Slurm `GrpTRESMins`); null: none. */
  gpuMinutes: number | null;
  /** Scheduler user names allowed to submit under the account. */
  users: readonly string[];
  /** The start of a grant: the budget's usage counter starts again from zero. */
  resetUsage: boolean;
}

/** What the scheduler has for one account. */
export interface AccountState {
  account: string;
  exists: boolean;
  /** Null when the account does not exist or sets no GPU limit (unlimited). */
  gpus: number | null;
  gpuMinutes: number | null;
  users: string[];
}

/** GPU usage of one job within a window (its run time cut to the window). */
export interface JobUsage {
  jobId: string;
  account: string;
  user: string;
  gpus: number;
  /** GPUs × seconds run within the window. */
  gpuSeconds: number;
  /**
   * GPU-seconds weighted by the GPUs' own utilisation (Σ utilisation × time), where the scheduler
   * measures it (DCGM on Kubernetes); absent where it only knows what was held (Slurm's sacct).
   */
  busyGpuSeconds?: number;
  state: string;
  /** When it started running (or the window's start, if before). */
  startMs: number;
}

/**
 * A scheduler refused or could not be reached. `unavailable`: nothing answered (a daemon down, a
 * refused connection), so nothing was changed by this step.
 */
export class SchedulerError extends Error {
  override name = 'SchedulerError';
  constructor(
    readonly engine: ProvisionerEngine,
    message: string,
    readonly unavailable: boolean,
  ) {
    super(message);
  }
}

export interface Provisioner {
  readonly engine: ProvisionerEngine;
  /** Manual pools: a person confirms hand-over and return; the hub only records it. */
  readonly byHand: boolean;
  /** Whether `usage` reports the GPUs' utilisation (busyGpuSeconds), which the monthly check then uses. */
  readonly reportsUtilisation?: boolean;
  /** Whether the scheduler itself stops an account at its GPU-hour budget (Slurm's GrpTRESMins). */
  readonly enforcesBudget: boolean;
  /** Makes the scheduler match the target: creates what is missing, changes what differs, grants last. */
  apply(target: AccountTarget): Promise<void>;
  /** Stops the account's jobs (running and pending): at the end of a grant and on reclaim. */
  stopJobs(account: string): Promise<void>;
  observe(accounts: readonly string[]): Promise<Map<string, AccountState>>;
  /** Every job's GPU use within [fromMs, toMs) of these accounts. */
  usage(fromMs: number, toMs: number, accounts: readonly string[]): Promise<JobUsage[]>;
  /** Where the scheduler enforces a GPU-hour budget: what it has counted against it, in GPU-minutes. */
  budgetUse?(
    account: string,
  ): Promise<{ gpuMinutesLimit: number | null; gpuMinutesUsed: number } | undefined>;
}

/** The differences between a target and what the scheduler has: the fields that differ. */
export function differences(
  target: AccountTarget,
  state: AccountState | undefined,
  enforcesBudget: boolean,
): string[] {
  const out: string[] = [];
  if (!state?.exists) return target.gpus > 0 ? ['account'] : [];
  if ((state.gpus ?? Number.POSITIVE_INFINITY) !== target.gpus) out.push('gpus');
  if (enforcesBudget && target.gpus > 0 && state.gpuMinutes !== target.gpuMinutes) out.push('gpuMinutes');
  const want = [...new Set(target.users)].sort();
  const have = [...new Set(state.users)].sort();
  if (target.gpus > 0 && want.join('\u0000') !== have.join('\u0000')) out.push('users');
  return out;
}
