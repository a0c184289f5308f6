/**
 * `kaihub admin-token reset`: the operator's way back in when the generated token is lost. It works
 * on the hub's database directly (no running hub, no token needed: whoever can open the database
 * already holds everything), stores a new token's hash, and prints the token once. Running replicas
 * accept the new token within a second.
 */
import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { resetAdminToken } from '../accounts/admin-token.ts';
import { AuditLog } from '../audit/audit-log.ts';
import { ConfigError, loadConfig } from '../config.ts';
import { openDatabase } from '../storage/database.ts';
import { migrate } from '../storage/migrator.ts';

export const ADMIN_TOKEN_USAGE = `kaihub admin-token reset [--database PATH|URL] [--data-dir DIR]

  운영자 토큰을 새로 만듭니다(허브 실행 불필요). 허브와 같은 KAIHUB_DATABASE로 실행하세요.
  Replaces the operator token, offline: run it with the hub's KAIHUB_DATABASE. The new token is
  printed once; the old one stops working (running hubs notice within a second).
`;

function whoRuns(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return 'cli';
  }
}

export async function runAdminTokenCommand(
  args: string[],
  env: NodeJS.ProcessEnv,
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: { database: { type: 'string' }, 'data-dir': { type: 'string' }, help: { type: 'boolean' } },
  });
  if (values.help || positionals[0] !== 'reset' || positionals.length !== 1) {
    (values.help ? out : err).write(ADMIN_TOKEN_USAGE);
    return values.help ? 0 : 1;
  }
  const config = loadConfig(env, { database: values.database, 'data-dir': values['data-dir'] });
  if (config.adminToken) {
    throw new ConfigError(
      'KAIHUB_ADMIN_TOKEN: 설정되어 있어 허브는 그 값을 운영자 토큰으로 씁니다; 재설정할 것이 없습니다 / ' +
        'is set, and the hub uses it as the operator token: there is nothing to reset (unset it to use a generated one)',
    );
  }
  const db = await openDatabase(config.database, { lockWaitMs: config.databaseLockWaitMs });
  try {
    await migrate(db);
    const token = await resetAdminToken(db);
    await new AuditLog(db).record({
      actorId: whoRuns(),
      source: 'cli',
      action: 'reset',
      entityType: 'admin_token',
      entityId: 'operator-token',
    });
    err.write(
      '새 운영자 토큰입니다. 지금 저장하세요 — 다시 표시되지 않습니다. 이전 토큰은 더 이상 쓸 수 없습니다.\n' +
        'New operator token. Save it now — it will not be shown again. The previous token no longer works.\n\n',
    );
    out.write(`${token}\n`);
    return 0;
  } finally {
    await db.close();
  }
}
