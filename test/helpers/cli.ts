import { spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { runAdminCommand } from '../../src/cli/admin-commands.ts';

const BIN = fileURLToPath(new URL('../../bin/kaihub.mjs', import.meta.url));

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * `node bin/kaihub.mjs …` in a child process, as an operator runs it. `env` is the whole
 * environment of the child (the caller decides what it inherits).
 */
export function runKaihub(args: string[], env: NodeJS.ProcessEnv): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * The same function main.ts calls for an admin command, run in this process: each child process costs
 * a Node start and the TypeScript loader, so only the end-to-end checks pay for one. `bytes` is stdout
 * as written (a statement file is binary).
 */
export async function runAdminInProcess(
  args: readonly string[],
  env: Record<string, string>,
): Promise<CliRun & { bytes: Buffer }> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const sink = (chunks: Buffer[]) =>
    new Writable({
      write(chunk, _encoding, done) {
        chunks.push(Buffer.from(chunk));
        done();
      },
    });
  const [command = '', ...rest] = args;
  const code = await runAdminCommand(command, rest, env, sink(out), sink(err));
  const bytes = Buffer.concat(out);
  return { code, stdout: bytes.toString(), stderr: Buffer.concat(err).toString(), bytes };
}
