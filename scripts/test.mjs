#!/usr/bin/env node
// `npm test`: lint and type-check, then every test: unit tests beside the code, then the integration
// suites once per database engine. A suite whose service is missing is skipped with the reason, except
// in CI (CI=true), where .ci/run provides every service and a missing one is a failure.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const inCi = process.env.CI === 'true';
const results = { passed: 0, failed: 0, skipped: 0 };
const skippedSuites = [];
const failedSteps = [];

function run(title, command, args, env = {}) {
  process.stdout.write(`\n=== ${title}\n`);
  const r = spawnSync(command, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
  if (r.status !== 0) failedSteps.push(title);
  return r.status === 0;
}

function files(dir, suffix) {
  return readdirSync(join(root, dir), { recursive: true })
    .map(String)
    .filter((f) => f.endsWith(suffix) && !f.includes('node_modules'))
    .map((f) => join(dir, f))
    .sort();
}

function runTests(title, testFiles, env = {}) {
  const tap = join(tmpdir(), `kaihub-tap-${process.pid}-${Date.now()}.txt`);
  const ok = run(
    title,
    process.execPath,
    [
      '--import',
      'tsx',
      '--test',
      '--test-concurrency=2',
      '--test-reporter=spec',
      '--test-reporter-destination=stdout',
      '--test-reporter=tap',
      `--test-reporter-destination=${tap}`,
      ...testFiles,
    ],
    env,
  );
  try {
    const text = readFileSync(tap, 'utf8');
    const count = (name) => Number(text.match(new RegExp(`^# ${name} (\\d+)$`, 'm'))?.[1] ?? 0);
    results.passed += count('pass');
    results.failed += count('fail') + count('cancelled');
    results.skipped += count('skipped');
    rmSync(tap, { force: true });
  } catch {
    if (!ok) results.failed += 1;
  }
}

function reachable(port) {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.setTimeout(1000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

const npx = (bin) => join(root, 'node_modules', '.bin', bin);

if (!process.argv.includes('--no-lint')) {
  run('lint and format (biome)', npx('biome'), ['check', '.']);
  run('types (tsc --noEmit)', npx('tsc'), ['--noEmit']);
}

const unit = [
  ...files('src', '.test.ts'),
  ...files('test/fakes', '.test.ts'),
  ...files('test/helpers', '.test.ts'),
];
runTests('unit tests', unit);

const integration = files('test/integration', '.test.ts');
runTests('integration tests on SQLite', integration, { KAIHUB_TEST_DATABASE: 'sqlite' });

const pgUrl = process.env.KAIHUB_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const pgPort = Number(new URL(pgUrl).port || 5432);
const pgUp = await reachable(pgPort);
if (pgUp) {
  runTests('integration tests on PostgreSQL', integration, { KAIHUB_TEST_DATABASE: 'postgres' });
} else {
  skippedSuites.push(`integration tests on PostgreSQL: nothing listens on 127.0.0.1:${pgPort} (${pgUrl})`);
  if (inCi) failedSteps.push('PostgreSQL is required in CI');
}

// Limits, holds and revocation shared by replicas: PostgreSQL and Redis together, as in production.
const redisUrl = process.env.KAIHUB_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const redisPort = Number(new URL(redisUrl).port || 6379);
const redisUp = await reachable(redisPort);
if (pgUp && redisUp) {
  // test/redis, and the suites of limits and holds again, their hubs sharing through Redis (hub.ts)
  const again = ['vouchers', 'rate-limits', 'replicas', 'programme-close', 'alerts'].map(
    (f) => `test/integration/${f}.test.ts`,
  );
  runTests('shared limits on PostgreSQL + Redis', [...files('test/redis', '.test.ts'), ...again], {
    KAIHUB_TEST_DATABASE: 'postgres',
    KAIHUB_TEST_REDIS_URL: redisUrl,
  });
}
// One hub on SQLite may use Redis too (its evaluation queue brings it): its limits and holds then go
// through Redis as well. Replicas sharing limits need PostgreSQL (README), so replicas.test is not here.
if (redisUp) {
  runTests(
    'Redis with one hub on SQLite',
    files('test/redis', '.test.ts').filter((f) => !f.endsWith('replicas.test.ts')),
    { KAIHUB_TEST_DATABASE: 'sqlite', KAIHUB_TEST_REDIS_URL: redisUrl },
  );
} else {
  skippedSuites.push(`Redis with one hub on SQLite: nothing listens on 127.0.0.1:${redisPort} (${redisUrl})`);
}
if (!(pgUp && redisUp)) {
  const missing = [
    ...(pgUp ? [] : [`PostgreSQL (nothing listens on 127.0.0.1:${pgPort})`]),
    ...(redisUp ? [] : [`Redis (nothing listens on 127.0.0.1:${redisPort}, ${redisUrl})`]),
  ];
  skippedSuites.push(`shared limits on PostgreSQL + Redis: ${missing.join(' and ')}`);
  if (inCi) failedSteps.push('Redis and PostgreSQL are required in CI');
}

// GPU allocations pushed into a real single-node Slurm cluster the suite starts and stops itself
// (test/slurm/cluster.ts): needs slurm-wlm, slurmdbd and munge (.ci/run installs them), MariaDB on
// 127.0.0.1:3306 and root (slurmd runs the test jobs).
const slurmBinaries = [
  'slurmctld',
  'slurmd',
  'slurmdbd',
  'munged',
  'sacctmgr',
  'scontrol',
  'sacct',
  'sbatch',
];
const slurmMissing = slurmBinaries.filter(
  (b) => !['/usr/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin'].some((d) => existsSync(join(d, b))),
);
const mariadbUp = await reachable(3306);
if (slurmMissing.length === 0 && mariadbUp && process.getuid?.() === 0) {
  runTests('Slurm (a real single-node cluster)', files('test/slurm', '.test.ts'), {
    KAIHUB_TEST_DATABASE: pgUp ? 'postgres' : 'sqlite',
  });
} else {
  const why = [
    ...(slurmMissing.length > 0
      ? [`Slurm is not installed (${slurmMissing.join(', ')}): apt-get install -y slurm-wlm slurmdbd munge`]
      : []),
    ...(mariadbUp ? [] : ['MariaDB for slurmdbd (nothing listens on 127.0.0.1:3306)']),
    ...(process.getuid?.() === 0 ? [] : ['root (slurmd runs the test jobs as root)']),
  ];
  skippedSuites.push(`Slurm: ${why.join('; ')}`);
  if (inCi) failedSteps.push('Slurm is required in CI');
}

process.stdout.write('\n=== summary\n');
for (const s of skippedSuites) process.stdout.write(`skipped suite: ${s}\n`);
for (const s of failedSteps) process.stdout.write(`failed step: ${s}\n`);
process.stdout.write(
  `tests: ${results.passed} passed, ${results.failed} failed, ${results.skipped} skipped\n`,
);
process.exit(failedSteps.length > 0 || results.failed > 0 ? 1 : 0);
