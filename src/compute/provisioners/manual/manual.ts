import type { AccountState, JobUsage, Provisioner } from '../provisioner.ts';

/**
 * A pool the compute supplier hands over by hand (a server, a cloud project): its admin confirms the
 * hand-over and the return on /admin/v1, and reports usage per day; the hub drives nothing.
 */
export class ManualProvisioner implements Provisioner {
  readonly engine = 'manual' as const;
  readonly byHand = true;
  readonly enforcesBudget = false;

  async apply(): Promise<void> {}

  async stopJobs(): Promise<void> {}

  async observe(): Promise<Map<string, AccountState>> {
    return new Map();
  }

  async usage(): Promise<JobUsage[]> {
    return [];
  }
}
