import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { SchedulerError } from '../provisioner.ts';

/** How the hub reaches one Slurm cluster: its slurm.conf (which names the controller and slurmdbd). */
export interface SlurmConnection {
  /** slurm.conf of the cluster; the clients read the controller's and slurmdbd's addresses there. */
  slurmConf: string;
  /** Where sacctmgr, scontrol, sacct and scancel are; default: the PATH. */
  binDir?: string;
  timeoutMs: number;
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs one Slurm client; tests replace it with recorded answers. */
export type SlurmRunner = (command: string, args: readonly string[]) => Promise<CommandResult>;

/** Stderr of a client that reached nobody: slurmdbd or slurmctld down, refused, timed out. */
const UNREACHABLE =
  /Connection refused|Unable to contact slurm controller|slurm_persist_conn_open|Problem talking to the database|Socket timed out|Zero Bytes were transmitted|Connection timed out|No route to host/i;

/** Answers that mean "already so": adding what exists, removing what is gone, changing nothing. */
const ALREADY = /Nothing new added|Nothing deleted|Nothing modified|Nothing to modify|already exists/i;

export function commandRunner(connection: SlurmConnection): SlurmRunner {
  return (command, args) =>
    new Promise((resolve, reject) => {
      const file = connection.binDir ? join(connection.binDir, command) : command;
      execFile(
        file,
        [...args],
        {
          // times go in and come out as UTC, whatever the hub's machine is set to
          env: { ...process.env, SLURM_CONF: connection.slurmConf, TZ: 'UTC' },
          timeout: connection.timeoutMs,
          maxBuffer: 512 * 1024 * 1024,
          encoding: 'utf8',
        },
        (error, stdout, stderr) => {
          if (error && typeof (error as { code?: unknown }).code !== 'number') {
            const e = error as NodeJS.ErrnoException & { killed?: boolean };
            if (e.code === 'ENOENT')
              return reject(
                new SchedulerError(
                  'slurm',
                  `Slurm 명령을 찾을 수 없습니다 / ${command} is not installed on the hub's machine (${file})`,
                  true,
                ),
              );
            if (e.killed)
              return reject(
                new SchedulerError(
                  'slurm',
                  `Slurm이 응답하지 않습니다 / ${command} did not answer within ${connection.timeoutMs} ms`,
                  true,
                ),
              );
            return reject(new SchedulerError('slurm', `${command}: ${e.message}`, true));
          }
          resolve({ code: error ? Number((error as { code: number }).code) : 0, stdout, stderr });
        },
      );
    });
}

/** The first line of what a client said, for a message. */
const firstLine = (text: string) =>
  text
    .split('\n')
    .map((l) => l.replace(/^\S+: error: /, '').trim())
    .find((l) => l !== '') ?? '';

/**
 * Runs a client and returns its stdout; a failure is a SchedulerError that says whether the cluster
 * was unreachable (nothing happened) or refused (`okIfAlready`: "Nothing new added" and the like count
 * as success, so every step can be repeated).
 */
export async function run(
  runner: SlurmRunner,
  command: string,
  args: readonly string[],
  okIfAlready = false,
): Promise<string> {
  const r = await runner(command, args);
  if (r.code === 0) return r.stdout;
  const said = `${r.stdout}\n${r.stderr}`;
  if (okIfAlready && ALREADY.test(said)) return r.stdout;
  if (UNREACHABLE.test(said))
    throw new SchedulerError(
      'slurm',
      `Slurm에 연결할 수 없습니다 / Slurm is unreachable: ${command}: ${firstLine(r.stderr || r.stdout)}`,
      true,
    );
  throw new SchedulerError(
    'slurm',
    `Slurm이 거부했습니다 / Slurm refused: ${command} ${args.slice(0, 3).join(' ')}: ${firstLine(r.stderr || r.stdout) || `exit ${r.code}`}`,
    false,
  );
}
