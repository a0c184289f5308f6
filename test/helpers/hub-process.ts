import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { ADMIN_TOKEN, type AdminAnswer, callAdmin } from './hub.ts';

const BIN = fileURLToPath(new URL('../../bin/kaihub.mjs', import.meta.url));

export interface HubProcess {
  child: ChildProcess;
  url: string;
  output(): string;
  admin<T = any>(method: string, path: string, body?: unknown): Promise<AdminAnswer<T>>;
  /** SIGKILL: no shutdown hook runs, nothing is flushed. */
  kill9(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The hub as a user runs it: `kaihub start` in its own process, so a test can kill it with SIGKILL.
 * Resolves once it prints its URL.
 */
export async function spawnHub(
  env: Record<string, string>,
  secretKey = randomBytes(32).toString('hex'),
): Promise<HubProcess> {
  const child = spawn(process.execPath, [BIN, 'start'], {
    env: {
      ...process.env,
      PORT: '0',
      HOST: '127.0.0.1',
      KAIHUB_ADMIN_TOKEN: ADMIN_TOKEN,
      KAIHUB_SECRET_KEY: secretKey,
      // Tests build their own catalogues; the shipped one is tested on its own (catalog-file.test.ts).
      KAIHUB_CATALOG_SEED: 'none',
      KAIHUB_LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const m = /K-AI Hub: (http:\/\/\S+)/.exec(output);
      if (m) resolve(m[1]!);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`hub exited with ${code} before listening:\n${output}`)));
    setTimeout(() => reject(new Error(`hub did not start in 30 s:\n${output}`)), 30_000).unref();
  });
  return {
    child,
    url,
    output: () => output,
    admin: (method, path, body) => callAdmin(url, method, path, body),
    async kill9() {
      child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
