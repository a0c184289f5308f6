export function adminUsage(): string {
  return 'admin commands: not yet\n';
}

export async function runAdminCommand(
  command: string,
  _args: string[],
  _env: NodeJS.ProcessEnv,
  _out: NodeJS.WritableStream,
): Promise<number> {
  process.stderr.write(`kaihub: unknown command ${command}\n`);
  return 1;
}
