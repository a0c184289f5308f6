import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileDescriptorsNeeded, openFileLimit, serverTimeouts } from './server.ts';

test('the open-file limit is read from /proc/self/limits', () => {
  const text = [
    'Limit                     Soft Limit           Hard Limit           Units',
    'Max processes             95441                95441                processes',
    'Max open files            20000                20000                files',
  ].join('\n');
  assert.equal(openFileLimit(text), 20_000);
  assert.equal(
    openFileLimit('Max open files            unlimited            unlimited            files'),
    Infinity,
  );
  assert.equal(openFileLimit(''), undefined, 'not Linux: unknown, no warning');
  if (process.platform === 'linux') assert.ok((openFileLimit() ?? 0) > 0, 'this process has a limit');
});

test('a connection may need two descriptors (client and upstream) plus the hub’s own', () => {
  assert.equal(fileDescriptorsNeeded(10_000), 20_100);
});

test('headers must arrive within the request timeout, and node checks often enough', () => {
  assert.deepEqual(serverTimeouts(60_000), {
    keepAliveTimeout: 65_000,
    requestTimeout: 60_000,
    headersTimeout: 60_000,
    connectionsCheckingInterval: 1_000,
  });
  const short = serverTimeouts(1_000);
  assert.equal(short.headersTimeout, 1_000);
  assert.equal(short.connectionsCheckingInterval, 250);
  assert.equal(serverTimeouts(300_000).headersTimeout, 60_000);
  assert.equal(serverTimeouts(100).connectionsCheckingInterval, 25);
});
