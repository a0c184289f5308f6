import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { ConfigError, loadConfig } from './config.ts';

test('defaults: 127.0.0.1:8080 on ./data/kaihub.sqlite', () => {
  const c = loadConfig({});
  assert.equal(c.port, 8080);
  assert.equal(c.host, '127.0.0.1');
  assert.equal(c.database, resolve('data/kaihub.sqlite'));
  assert.equal(c.dataDir, resolve('data'));
  assert.equal(c.adminToken, undefined);
  assert.equal(c.secretKey, undefined);
  assert.equal(c.logLevel, 'info');
  assert.equal(c.logContent, false);
  assert.equal(c.upstreamMaxEventBytes, 1024 * 1024);
  assert.equal(c.upstreamMaxBodyBytes, 64 * 1024 * 1024);
  assert.equal(c.requestTimeoutMs, 60_000);
  // unset: http/server.ts takes what the open-file limit holds, at most 10,000
  assert.equal(c.maxConnections, undefined);
  assert.equal(c.databaseLockWaitMs, 5_000);
});

test('the database lock wait from the environment or a flag', () => {
  assert.equal(loadConfig({ KAIHUB_DATABASE_LOCK_WAIT_MS: '30000' }).databaseLockWaitMs, 30_000);
  assert.equal(loadConfig({}, { 'database-lock-wait-ms': '250' }).databaseLockWaitMs, 250);
});

test('receive timeout and connection cap from the environment or flags', () => {
  const c = loadConfig({ KAIHUB_REQUEST_TIMEOUT_MS: '5000', KAIHUB_MAX_CONNECTIONS: '200' });
  assert.equal(c.requestTimeoutMs, 5000);
  assert.equal(c.maxConnections, 200);
  assert.equal(loadConfig({}, { 'request-timeout-ms': '750', 'max-connections': '3' }).requestTimeoutMs, 750);
});

test('a hold lease defaults to the queue wait, the total timeout and the drain in force, plus a minute', () => {
  assert.equal(loadConfig({}).holdLeaseMs, 5_000 + 600_000 + 2_000 + 60_000);
  // a longer upstream total timeout moves the default lease with it
  const longer = loadConfig({ KAIHUB_UPSTREAM_TIMEOUT_MS: '1800000' });
  assert.equal(longer.upstreamTotalTimeoutMs, 1_800_000);
  assert.equal(longer.holdLeaseMs, 5_000 + 1_800_000 + 2_000 + 60_000);
  const flagged = loadConfig(
    {},
    { 'queue-timeout-ms': '0', 'stream-drain-ms': '500', 'upstream-timeout-ms': '30000' },
  );
  assert.equal(flagged.holdLeaseMs, 0 + 30_000 + 500 + 60_000);
  // set, it is what it says, whatever the timeouts
  assert.equal(
    loadConfig({ KAIHUB_HOLD_LEASE_MS: '1000', KAIHUB_UPSTREAM_TIMEOUT_MS: '1800000' }).holdLeaseMs,
    1000,
  );
});

test('flags win over the environment', () => {
  const c = loadConfig({ PORT: '9000', KAIHUB_DATABASE: 'postgres://u@h/db' }, { port: '9100' });
  assert.equal(c.port, 9100);
  assert.equal(c.database, 'postgres://u@h/db');
  assert.equal(c.dataDir, resolve('data'));
  assert.equal(loadConfig({ KAIHUB_SECRET_KEY: 'ab'.repeat(32) }).secretKey?.length, 32);
  assert.equal(
    loadConfig({ KAIHUB_SECRET_KEY: Buffer.alloc(32, 7).toString('base64') }).secretKey?.length,
    32,
  );
});

test('each bad value is one message naming the variable', () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ PORT: 'eighty' }, /^PORT: expected an integer/],
    [{ PORT: '70000' }, /^PORT: must be between 0 and 65535/],
    [
      { KAIHUB_DATABASE: 'mysql://x/y' },
      /^KAIHUB_DATABASE: expected a SQLite file path or a postgres:\/\/ URL/,
    ],
    [{ KAIHUB_ADMIN_TOKEN: 'short' }, /^KAIHUB_ADMIN_TOKEN: must be at least 16 characters/],
    [{ KAIHUB_SECRET_KEY: 'not-a-key' }, /^KAIHUB_SECRET_KEY: must be 32 bytes/],
    [{ REDIS_URL: 'localhost:6379' }, /^REDIS_URL: expected a redis:\/\/ URL/],
    [{ KAIHUB_LOG_LEVEL: 'loud' }, /^KAIHUB_LOG_LEVEL: expected one of/],
    [{ KAIHUB_LOG_CONTENT: 'maybe' }, /^KAIHUB_LOG_CONTENT: expected true or false/],
    [{ KAIHUB_MAX_BODY_BYTES: '10' }, /^KAIHUB_MAX_BODY_BYTES: must be between/],
    [{ KAIHUB_UPSTREAM_CONNECT_TIMEOUT_MS: '0' }, /^KAIHUB_UPSTREAM_CONNECT_TIMEOUT_MS: must be between/],
    [{ KAIHUB_UPSTREAM_MAX_EVENT_BYTES: '100' }, /^KAIHUB_UPSTREAM_MAX_EVENT_BYTES: must be between 1024/],
    [{ KAIHUB_UPSTREAM_MAX_BODY_BYTES: '1gb' }, /^KAIHUB_UPSTREAM_MAX_BODY_BYTES: expected an integer/],
    [{ KAIHUB_UPSTREAM_MAX_BODY_BYTES: '1073741824' }, /^KAIHUB_UPSTREAM_MAX_BODY_BYTES: must be between/],
    [{ KAIHUB_REQUEST_TIMEOUT_MS: '0' }, /^KAIHUB_REQUEST_TIMEOUT_MS: must be between 100 and 3600000/],
    [{ KAIHUB_MAX_CONNECTIONS: '0' }, /^KAIHUB_MAX_CONNECTIONS: must be between 1 and 1000000/],
    [{ KAIHUB_MAX_CONNECTIONS: 'many' }, /^KAIHUB_MAX_CONNECTIONS: expected an integer/],
    [{ KAIHUB_DATABASE_LOCK_WAIT_MS: '50' }, /^KAIHUB_DATABASE_LOCK_WAIT_MS: must be between 100 and 600000/],
    [{ KAIHUB_DATABASE_LOCK_WAIT_MS: '5s' }, /^KAIHUB_DATABASE_LOCK_WAIT_MS: expected an integer/],
    [
      { KAIHUB_SUPPLIER_NETWORKS: '10.0.0.0/8, intranet' },
      /^KAIHUB_SUPPLIER_NETWORKS: "intranet" is not an address or a network/,
    ],
  ];
  for (const [env, message] of cases) {
    assert.throws(
      () => loadConfig(env),
      (e: unknown) => e instanceof ConfigError && message.test(e.message),
    );
  }
  assert.throws(() => loadConfig({}, { port: 'x' }), /^ConfigError: --port: expected an integer/);
});
