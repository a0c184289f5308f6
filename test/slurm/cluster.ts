import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A real single-node Slurm cluster with eight fake H100s, started and stopped by the tests (the
 * `slurm-wlm`, `slurmdbd` and `munge` packages; accounting in the machine's MariaDB). What it takes,
 * measured on Slurm 22.05:
 * - slurmd drops GPUs without a device file: gres.conf says `AutoDetect=off` and names
 *   `<dir>/dev/nvidia[0-7]`, symlinks to /dev/null;
 * - `AccountingStorageTRES=gres/gpu,...` and the GPU TRES exists only once slurmctld has registered,
 *   so the cluster is ready only when sacctmgr lists gres/gpu;
 * - `GrpTRESMins` needs priority/multifactor (half-life 0: a budget does not decay), and with
 *   `AccountingStorageEnforce=...,safe` every job needs a time limit;
 * - every daemon listens on all interfaces; every client here goes to 127.0.0.1.
 * Its own munge socket, ports and accounting database, so it touches nothing else on the machine.
 */

export const SLURM_BINARIES = [
  'slurmctld',
  'slurmd',
  'slurmdbd',
  'munged',
  'sacctmgr',
  'scontrol',
  'sacct',
  'sbatch',
];
const SEARCH = ['/usr/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin'];

/** Why the Slurm suite cannot run here, or undefined when it can. */
export function slurmMissing(): string | undefined {
  const missing = SLURM_BINARIES.filter((b) => !SEARCH.some((d) => existsSync(join(d, b))));
  if (missing.length > 0)
    return `Slurm is not installed (${missing.join(', ')} missing): apt-get install -y slurm-wlm slurmdbd munge`;
  if (!existsSync('/etc/munge/munge.key')) return 'munge has no key (/etc/munge/munge.key)';
  if (process.getuid?.() !== 0) return 'slurmd runs jobs as root here: the suite needs root';
  return undefined;
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface SlurmCluster {
  name: string;
  dir: string;
  slurmConf: string;
  /** Runs a Slurm client against this cluster. */
  run(command: string, args: string[]): Promise<RunResult>;
  /** Like run, but throws unless it exits 0; returns stdout. */
  must(command: string, args: string[]): Promise<string>;
  /** Submits a batch job under an account: its id. */
  submit(account: string, gpus: number, seconds: number, limitMinutes?: number): Promise<string>;
  /** `RUNNING None`, `PENDING AssocGrpGRES`, … or '' once gone from the queue. */
  state(jobId: string): Promise<string>;
  waitFor(jobId: string, predicate: (state: string) => boolean, timeoutMs?: number): Promise<string>;
  stopDbd(): Promise<void>;
  startDbd(): Promise<void>;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startSlurm(): Promise<SlurmCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'kaihub-slurm-'));
  const name = `kh${randomBytes(3).toString('hex')}`;
  const node = 'kaihub-node';
  const [ctldPort, slurmdPort, dbdPort] = [await freePort(), await freePort(), await freePort()];
  for (const sub of ['state', 'spool', 'dev', 'jobs']) mkdirSync(join(dir, sub));
  for (let i = 0; i < 8; i++) symlinkSync('/dev/null', join(dir, 'dev', `nvidia${i}`));
  const socket = join(dir, 'munge.socket');
  const slurmConf = join(dir, 'slurm.conf');
  writeFileSync(
    slurmConf,
    `ClusterName=${name}
SlurmctldHost=${hostname()}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=${ctldPort}
SlurmdPort=${slurmdPort}
AuthType=auth/munge
AuthInfo=socket=${socket}
CredType=cred/munge
StateSaveLocation=${dir}/state
SlurmdSpoolDir=${dir}/spool
SlurmctldPidFile=${dir}/slurmctld.pid
SlurmdPidFile=${dir}/slurmd.pid
SlurmctldLogFile=${dir}/slurmctld.log
SlurmdLogFile=${dir}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
DebugFlags=NO_CONF_HASH
GresTypes=gpu
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=${dbdPort}
AccountingStoragePass=${socket}
AccountingStorageTRES=gres/gpu,gres/gpu:h100
AccountingStorageEnforce=associations,limits,qos,safe
PriorityType=priority/multifactor
PriorityDecayHalfLife=0
PriorityUsageResetPeriod=NONE
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
KillWait=1
NodeName=${node} NodeAddr=127.0.0.1 NodeHostname=localhost CPUs=32 RealMemory=1000 Gres=gpu:h100:8 State=UNKNOWN
PartitionName=gpu Nodes=${node} Default=YES MaxTime=INFINITE State=UP
`,
  );
  writeFileSync(
    join(dir, 'gres.conf'),
    `AutoDetect=off\nNodeName=${node} Name=gpu Type=h100 File=${dir}/dev/nvidia[0-7]\n`,
  );
  const dbdConf = join(dir, 'slurmdbd.conf');
  writeFileSync(
    dbdConf,
    `AuthType=auth/munge
AuthInfo=socket=${socket}
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=${dbdPort}
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=3306
StorageUser=root
StorageLoc=${name}_acct
PidFile=${dir}/slurmdbd.pid
LogFile=${dir}/slurmdbd.log
`,
  );
  chmodSync(dbdConf, 0o600);

  const env = { ...process.env, SLURM_CONF: slurmConf, TZ: 'UTC' };
  const children: ChildProcess[] = [];
  const daemon = (command: string, args: string[]) => {
    const out = openSync(join(dir, `${command}.out`), 'a');
    const child = spawn(command, args, { env, stdio: ['ignore', out, out] });
    children.push(child);
    return child;
  };
  const run = (command: string, args: string[]) =>
    new Promise<RunResult>((resolve) => {
      execFile(command, args, { env, cwd: join(dir, 'jobs'), timeout: 30_000 }, (error, stdout, stderr) => {
        const code = error ? Number((error as { code?: unknown }).code ?? 1) || 1 : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      });
    });
  const must = async (command: string, args: string[]) => {
    const r = await run(command, args);
    if (r.code !== 0)
      throw new Error(`${command} ${args.join(' ')}: exit ${r.code}: ${r.stderr || r.stdout}`);
    return r.stdout;
  };
  const until = async (what: string, check: () => Promise<boolean>, timeoutMs = 20_000) => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await check()) return;
      await sleep(100);
    }
    throw new Error(`Slurm test cluster: ${what} did not happen within ${timeoutMs} ms (logs in ${dir})`);
  };
  let dbd: ChildProcess | undefined;
  const startDbd = async () => {
    dbd = daemon('slurmdbd', ['-D']);
    await until(
      'slurmdbd answering',
      async () => (await run('sacctmgr', ['-nP', 'show', 'cluster'])).code === 0,
    );
  };
  const stopDbd = async () => {
    if (!dbd) return;
    const d = dbd;
    dbd = undefined;
    await new Promise<void>((resolve) => {
      d.once('exit', () => resolve());
      d.kill('SIGTERM');
    });
  };

  const munged = daemon('munged', [
    '-F',
    '-f',
    `--socket=${socket}`,
    '--key-file=/etc/munge/munge.key',
    `--pid-file=${dir}/munged.pid`,
    `--log-file=${dir}/munged.log`,
    `--seed-file=${dir}/munged.seed`,
  ]);
  void munged;
  const cluster: SlurmCluster = {
    name,
    dir,
    slurmConf,
    run,
    must,
    async submit(account, gpus, seconds, limitMinutes = 5) {
      const out = await must('sbatch', [
        '--parsable',
        `--account=${account}`,
        `--time=${limitMinutes}`,
        `--gres=gpu:${gpus}`,
        '--output=/dev/null',
        `--wrap=sleep ${seconds}`,
      ]);
      return out.trim().split(';')[0]!;
    },
    async state(jobId) {
      return (await run('squeue', ['-h', '-j', jobId, '-o', '%T %r'])).stdout.trim();
    },
    async waitFor(jobId, predicate, timeoutMs = 20_000) {
      let last = '';
      await until(
        `job ${jobId} state (last: ${last})`,
        async () => {
          last = await cluster.state(jobId);
          return predicate(last);
        },
        timeoutMs,
      );
      return last;
    },
    stopDbd,
    startDbd,
    async stop() {
      await run('scancel', ['--partition=gpu']);
      await sleep(300);
      for (const child of children.reverse()) if (child.exitCode === null) child.kill('SIGTERM');
      await Promise.all(
        children.map((c) =>
          c.exitCode === null ? new Promise((r) => c.once('exit', r)) : Promise.resolve(),
        ),
      );
      await new Promise<void>((resolve) =>
        execFile(
          'mysql',
          ['-h', '127.0.0.1', '-u', 'root', '-e', `DROP DATABASE IF EXISTS \`${name}_acct\``],
          () => resolve(),
        ),
      );
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await until('munged', async () => existsSync(socket), 5_000);
    await startDbd();
    await must('sacctmgr', ['-i', 'add', 'cluster', name]);
    daemon('slurmctld', ['-D', '-i']);
    await until('slurmctld answering', async () => (await run('scontrol', ['ping'])).stdout.includes('UP'));
    daemon('slurmd', ['-D', '-N', node]);
    await until('the node idle with its GPUs', async () => {
      const r = await run('sinfo', ['-h', '-N', '-o', '%T %G']);
      return r.stdout.includes('idle') && r.stdout.includes('gpu:h100:8');
    });
    await until('the GPU TRES registered', async () =>
      (await run('sacctmgr', ['-nP', 'show', 'tres'])).stdout.includes('gres|gpu|'),
    );
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}
