import type { AccountState, JobUsage } from '../provisioner.ts';

/**
 * Readers of Slurm's text: `sacctmgr -nP show assoc`, `scontrol -o show assoc_mgr` and `sacct -nP`.
 * `--json` exists for sacct, squeue and sinfo but not for sacctmgr or scontrol; sacct's JSON of a
 * busy day (about 3 KB per job) is also a hundred times the size of its `-P` lines, so every reader
 * here reads `|`-separated or `key=value` text. Recorded outputs sit in fixtures/ (parse.test.ts).
 */

/** `gres/gpu=2` out of a TRES list (`cpu=4,gres/gpu=2,gres/gpu:h100=2`); null when absent or `N`. */
export function gpuOf(tres: string): number | null {
  for (const item of tres.split(',')) {
    const eq = item.indexOf('=');
    if (eq < 0 || item.slice(0, eq) !== 'gres/gpu') continue;
    // assoc_mgr writes `limit(used)`; `N` is no limit
    const value = item.slice(eq + 1).replace(/\(.*\)$/, '');
    if (value === 'N' || value === '') return null;
    const n = Number(value);
    return Number.isInteger(n) && n >= 0 ? n : null;
  }
  return null;
}

/** In-use figure of assoc_mgr's `gres/gpu=2(1)`: the 1. */
export function gpuInUse(tres: string): number {
  const m = /(?:^|,)gres\/gpu=[^,(]*\((\d+)\)/.exec(tres);
  return m ? Number(m[1]) : 0;
}

function emptyState(account: string): AccountState {
  return { account, exists: true, gpus: null, gpuMinutes: null, users: [] };
}

/** `sacctmgr -nP show assoc format=account,user,grptres,grptresmins`: what the accounting database has. */
export function parseSacctmgrAssociations(text: string): Map<string, AccountState> {
  const out = new Map<string, AccountState>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const [account = '', user = '', grpTres = '', grpTresMins = ''] = line.split('|');
    const state = out.get(account) ?? emptyState(account);
    if (user === '') {
      state.gpus = gpuOf(grpTres);
      state.gpuMinutes = gpuOf(grpTresMins);
    } else {
      state.users.push(user);
    }
    out.set(account, state);
  }
  return out;
}

/** What the controller enforces now, with what is in use: `scontrol -o show assoc_mgr flags=assoc`. */
export interface ControllerAccount extends AccountState {
  gpusInUse: number;
  gpuMinutesUsed: number;
}

export function parseAssocMgr(text: string): Map<string, ControllerAccount> {
  const out = new Map<string, ControllerAccount>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('ClusterName=')) continue;
    const fields = new Map<string, string>();
    for (const m of line.matchAll(/(\S+?)=(\S*)/g)) if (!fields.has(m[1]!)) fields.set(m[1]!, m[2]!);
    const account = fields.get('Account') ?? '';
    const user = (fields.get('UserName') ?? '').replace(/\(.*\)$/, '');
    const state = out.get(account) ?? { ...emptyState(account), gpusInUse: 0, gpuMinutesUsed: 0 };
    if (user === '') {
      const grpTres = fields.get('GrpTRES') ?? '';
      const grpTresMins = fields.get('GrpTRESMins') ?? '';
      state.gpus = gpuOf(grpTres);
      state.gpuMinutes = gpuOf(grpTresMins);
      state.gpusInUse = gpuInUse(grpTres);
      state.gpuMinutesUsed = gpuInUse(grpTresMins);
    } else {
      state.users.push(user);
    }
    out.set(account, state);
  }
  return out;
}

/** `2026-11-30T05:49:40` in the UTC the commands run in. */
function utcMs(text: string): number {
  return Date.parse(`${text}Z`);
}

/**
 * `sacct -a -X -n -P -T --format=JobIDRaw,Account,User,State,Start,ElapsedRaw,AllocTRES`: one line per
 * job, its run time already cut to the window (`-T`). Jobs that held no GPU, or ran no time in the
 * window, are left out: the hub counts GPU-time.
 */
export function parseSacctJobs(text: string): JobUsage[] {
  const jobs: JobUsage[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const [jobId = '', account = '', user = '', state = '', start = '', elapsed = '', tres = ''] =
      line.split('|');
    const gpus = gpuOf(tres) ?? 0;
    const seconds = Number(elapsed);
    if (gpus === 0 || !Number.isFinite(seconds) || seconds <= 0) continue;
    jobs.push({
      jobId,
      account,
      user,
      gpus,
      gpuSeconds: gpus * seconds,
      state: state.split(' ')[0]!,
      startMs: utcMs(start),
    });
  }
  return jobs;
}

/** What a GPU-hour budget has used, in GPU-minutes, as the scheduler counts it. */
export interface BudgetUse {
  account: string;
  gpuMinutesLimit: number | null;
  gpuMinutesUsed: number;
}

/**
 * `sshare -P -n -A … -o Account,User,RawUsage,GrpTRESMins,GrpTRESRaw`: the account rows (no user) with
 * the budget and the GPU-minutes used against it (`GrpTRESRaw`, whole minutes).
 */
export function parseSshare(text: string): Map<string, BudgetUse> {
  const out = new Map<string, BudgetUse>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const [account = '', user = '', , grpTresMins = '', grpTresRaw = ''] = line.split('|');
    if (user !== '') continue;
    out.set(account.trim(), {
      account: account.trim(),
      gpuMinutesLimit: gpuOf(grpTresMins),
      gpuMinutesUsed: gpuOf(grpTresRaw) ?? 0,
    });
  }
  return out;
}
