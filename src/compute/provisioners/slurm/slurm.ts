import type { AccountState, AccountTarget, JobUsage, Provisioner } from '../provisioner.ts';
import { SchedulerError } from '../provisioner.ts';
import { run, type SlurmRunner } from './commands.ts';
import { parseAssocMgr, parseSacctJobs, parseSacctmgrAssociations, parseSshare } from './parse.ts';

export interface SlurmSettings {
  /** ClusterName in slurm.conf: every sacctmgr and sacct call names it. */
  cluster: string;
  /** On reclaim and at the end, also cancel the account's running and pending jobs. */
  cancelJobsAtEnd: boolean;
  /** Tries to read the controller's view after a change before calling it a mismatch. */
  confirmAttempts?: number;
  confirmDelayMs?: number;
}

/** A list argument of at most this many accounts per command. */
const ACCOUNTS_PER_COMMAND = 200;

const chunks = <T>(items: readonly T[], size: number): T[][] => {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
};

/** `2026-11-30T05:49:40` (UTC: the runner sets TZ=UTC for every client). */
const slurmTime = (ms: number) => new Date(ms).toISOString().slice(0, 19);

/**
 * One Slurm cluster (docs/compute.md "Slurm"). Per organisation an account under root with its
 * association: `GrpTRES=gres/gpu=N` while a grant is live (0 otherwise), `GrpTRESMins=gres/gpu=M` for
 * a GPU-hour budget (enforced by priority/multifactor; usage reset with `RawUsage=0` at a grant's
 * start), the organisation's users added to it. Changes go through `sacctmgr` (the accounting
 * database); what the scheduler really enforces is read from the controller with `scontrol show
 * assoc_mgr`, so an allocation is active only once slurmctld has its limit.
 *
 * Every step can be repeated: adding what exists or removing what is gone counts as done. A new
 * account is created with a limit of 0 and its limit is raised last, so a failure half-way leaves
 * nothing granted.
 */
export class SlurmProvisioner implements Provisioner {
  readonly engine = 'slurm' as const;
  readonly byHand = false;
  readonly enforcesBudget = true;

  constructor(
    private readonly runner: SlurmRunner,
    private readonly settings: SlurmSettings,
  ) {}

  private get cluster(): string {
    return `cluster=${this.settings.cluster}`;
  }

  /** The accounting database's view (what sacctmgr has), for deciding what to change. */
  async stored(accounts: readonly string[]): Promise<Map<string, AccountState>> {
    const out = new Map<string, AccountState>();
    for (const batch of chunks(accounts, ACCOUNTS_PER_COMMAND)) {
      const text = await run(this.runner, 'sacctmgr', [
        '-nP',
        'show',
        'assoc',
        'where',
        this.cluster,
        `account=${batch.join(',')}`,
        'format=account,user,grptres,grptresmins',
      ]);
      for (const [k, v] of parseSacctmgrAssociations(text)) out.set(k, v);
    }
    return out;
  }

  async apply(target: AccountTarget): Promise<void> {
    const account = target.account;
    const current = (await this.stored([account])).get(account);
    // nothing to take away from an account that was never made
    if (!current && target.gpus === 0) return;
    if (!current) {
      // created granting nothing; the limit comes last
      await run(
        this.runner,
        'sacctmgr',
        [
          '-i',
          'add',
          'account',
          account,
          this.cluster,
          `Description=kaihub ${target.organizationId}`,
          'Organization=kaihub',
          'GrpTRES=gres/gpu=0',
        ],
        true,
      );
    }
    const lowering = target.gpus === 0 || (current?.gpus ?? 0) > target.gpus;
    if (lowering) await this.setLimits(target);
    const have = new Set(current?.users ?? []);
    const want = new Set(target.gpus > 0 ? target.users : (current?.users ?? []));
    for (const user of want)
      if (!have.has(user))
        await run(
          this.runner,
          'sacctmgr',
          ['-i', 'add', 'user', user, `account=${account}`, this.cluster],
          true,
        );
    if (target.gpus > 0)
      for (const user of have)
        if (!want.has(user))
          await run(
            this.runner,
            'sacctmgr',
            ['-i', 'remove', 'user', 'where', `name=${user}`, `account=${account}`, this.cluster],
            true,
          );
    if (target.resetUsage)
      await run(
        this.runner,
        'sacctmgr',
        ['-i', 'modify', 'account', 'where', `name=${account}`, this.cluster, 'set', 'RawUsage=0'],
        true,
      );
    if (!lowering) await this.setLimits(target);
  }

  private async setLimits(target: AccountTarget): Promise<void> {
    await run(
      this.runner,
      'sacctmgr',
      [
        '-i',
        'modify',
        'account',
        'where',
        `name=${target.account}`,
        this.cluster,
        'set',
        `GrpTRES=gres/gpu=${target.gpus}`,
        `GrpTRESMins=gres/gpu=${target.gpuMinutes ?? -1}`,
      ],
      true,
    );
  }

  async stopJobs(account: string): Promise<void> {
    if (!this.settings.cancelJobsAtEnd) return;
    await run(this.runner, 'scancel', [`--account=${account}`, `--clusters=${this.settings.cluster}`], true);
  }

  /** What the controller enforces; an account it does not know does not exist for the scheduler. */
  async observe(accounts: readonly string[]): Promise<Map<string, AccountState>> {
    const out = new Map<string, AccountState>();
    for (const batch of chunks(accounts, ACCOUNTS_PER_COMMAND)) {
      const text = await run(this.runner, 'scontrol', [
        '-o',
        'show',
        'assoc_mgr',
        `accounts=${batch.join(',')}`,
        'flags=assoc',
      ]);
      const seen = parseAssocMgr(text);
      for (const account of batch) {
        const s = seen.get(account);
        out.set(
          account,
          s
            ? { account, exists: true, gpus: s.gpus, gpuMinutes: s.gpuMinutes, users: s.users }
            : { account, exists: false, gpus: null, gpuMinutes: null, users: [] },
        );
      }
    }
    return out;
  }

  /** The budget's use as fair-share counts it (`sshare`, GrpTRESRaw): what GrpTRESMins is checked against. */
  async budgetUse(account: string) {
    const text = await run(this.runner, 'sshare', [
      '-P',
      '-n',
      `--clusters=${this.settings.cluster}`,
      `--accounts=${account}`,
      '--format=Account,User,RawUsage,GrpTRESMins,GrpTRESRaw',
    ]);
    const use = parseSshare(text).get(account);
    return use && { gpuMinutesLimit: use.gpuMinutesLimit, gpuMinutesUsed: use.gpuMinutesUsed };
  }

  async usage(fromMs: number, toMs: number, accounts: readonly string[]): Promise<JobUsage[]> {
    if (toMs <= fromMs) return [];
    const jobs: JobUsage[] = [];
    for (const batch of chunks(accounts, ACCOUNTS_PER_COMMAND)) {
      const text = await run(this.runner, 'sacct', [
        '-a',
        '-X',
        '-n',
        '-P',
        '-T',
        `--clusters=${this.settings.cluster}`,
        `--accounts=${batch.join(',')}`,
        `--starttime=${slurmTime(fromMs)}`,
        `--endtime=${slurmTime(toMs)}`,
        '--format=JobIDRaw,Account,User,State,Start,ElapsedRaw,AllocTRES',
      ]);
      jobs.push(...parseSacctJobs(text));
    }
    return jobs;
  }
}

/** A Slurm account name: lowercase letters, digits and `_` (Slurm folds case), from a prefix and the organisation id. */
export function slurmAccountName(prefix: string, organizationId: string): string {
  const name = `${prefix}${organizationId}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  if (name.length > 64)
    throw new SchedulerError('slurm', `account name too long for Slurm: ${name.slice(0, 20)}…`, false);
  return name;
}
