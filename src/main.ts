import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, startFlags } from './config.ts';

const USAGE = `kaihub — K-AI Hub (케이에이아이 허브)

사용법 / Usage:
  kaihub start [flags]          허브 실행 / run the hub
  kaihub <resource> <verb> ...  관리 명령 / admin commands against a running hub (kaihub help admin)
  kaihub models pull|list|rm    로컬 GGUF 모델 / local GGUF models (kaihub help models)
  kaihub eval run|worker|runs   평가 스위트 실행 / evaluation runs (kaihub help eval)
  kaihub eval pull <benchmark>  공식 벤치마크 데이터 / official benchmark data (kaihub eval pull --help)
  kaihub eval rounds|arenas|battles|ratings ...  평가 차수와 아레나 / rounds and arenas (kaihub help admin)
  kaihub admin-token reset      운영자 토큰 재발급(허브 중지 상태 가능) / new operator token, offline

start flags (each also an environment variable):
${startFlags.map((f) => `  --${f.flag.padEnd(30)} ${f.env}`).join('\n')}
`;

async function start(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: Object.fromEntries(startFlags.map((f) => [f.flag, { type: 'string' as const }])),
    strict: true,
  });
  const config = loadConfig(process.env, values as Record<string, string | undefined>);
  // Loaded here, not at the top: admin commands never need the whole hub, and start twice as fast without it.
  const { startHub } = await import('./app.ts');
  const hub = await startHub(config);
  if (hub.generatedAdminToken) {
    // Printed once, to the terminal only: the hub keeps nothing but its hash.
    process.stderr.write(
      `\n운영자 토큰이 생성되었습니다. 지금 저장하세요 — 다시 표시되지 않습니다.\n` +
        `Operator token generated. Save it now — it will not be shown again:\n\n  ${hub.generatedAdminToken}\n\n`,
    );
  }
  process.stderr.write(`K-AI Hub: ${hub.url}  (database: ${hub.db.dialect})\n`);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    hub.logger.info({ signal }, 'shutting down');
    hub.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    if (rest[0] === 'models') {
      const { modelsUsage } = await import('./cli/models/commands.ts');
      process.stdout.write(modelsUsage());
    } else if (rest[0] === 'eval') {
      const { EVAL_USAGE } = await import('./cli/eval-commands.ts');
      process.stdout.write(EVAL_USAGE);
    } else if (rest[0] === 'admin') {
      const { adminUsage } = await import('./cli/admin-commands.ts');
      process.stdout.write(adminUsage());
    } else {
      process.stdout.write(USAGE);
    }
    return;
  }
  if (command === 'start') return start(rest);
  if (command === 'admin-token') {
    const { runAdminTokenCommand } = await import('./cli/admin-token.ts');
    process.exitCode = await runAdminTokenCommand(rest, process.env, process.stdout, process.stderr);
    return;
  }
  // `kaihub eval pull` downloads here; rounds, arenas, battles and ratings are admin commands
  if (command === 'eval' && rest[0] === 'pull') {
    const { runEvalPull } = await import('./cli/eval-pull-command.ts');
    process.exitCode = await runEvalPull(rest.slice(1), process.env, process.stdout, process.stderr);
    return;
  }
  if (
    command === 'eval' &&
    ['rounds', 'round', 'arenas', 'arena', 'battles', 'ratings'].includes(rest[0] ?? '')
  ) {
    const { runAdminCommand } = await import('./cli/admin-commands.ts');
    process.exitCode = await runAdminCommand(command, rest, process.env, process.stdout);
    return;
  }
  if (command === 'eval') {
    const { runEvalCommand } = await import('./cli/eval-commands.ts');
    process.exitCode = await runEvalCommand(rest, process.env);
    return;
  }
  if (command === 'models' || command === 'model') {
    const { runModelsCommand } = await import('./cli/models/commands.ts');
    process.exitCode = await runModelsCommand(rest, process.env);
    return;
  }
  const { runAdminCommand } = await import('./cli/admin-commands.ts');
  process.exitCode = await runAdminCommand(command, rest, process.env, process.stdout);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  // Bad configuration or usage: one line, exit 1. Anything else is a bug and keeps its stack.
  if (error instanceof ConfigError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
    process.stderr.write(`kaihub: ${(error as Error).message}\n`);
  } else if ((error as { code?: string }).code === 'EADDRINUSE') {
    process.stderr.write(
      `kaihub: PORT: ${(error as Error).message} (이미 사용 중인 포트 / port already in use)\n` +
        '  다른 포트로 실행하세요(예: PORT=8081 npm start). 운영자 토큰이 아직 없었다면 이번에도 저장되지 않았으며, 처음으로 실행에 성공할 때 출력됩니다. ' +
        '토큰을 잃었다면: kaihub admin-token reset\n' +
        '  Start on another port (e.g. PORT=8081 npm start). If there was no operator token yet, none was stored: the first start that listens prints it. ' +
        'Lost a token? kaihub admin-token reset\n',
    );
  } else {
    process.stderr.write(`kaihub: ${(error as Error)?.stack ?? String(error)}\n`);
  }
  process.exit(1);
});
