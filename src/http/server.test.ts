import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { internalError, storageBusy } from '../calls/errors.ts';
import { fileDescriptorsNeeded, openFileLimit, sendFailure, serverTimeouts } from './server.ts';

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

test('a failure is answered in the shape of its surface: OpenAI’s on /v1, the admin API’s elsewhere', async () => {
  const server = createServer((req, res) => {
    sendFailure(res, req.url!, req.url!.endsWith('/busy') ? storageBusy() : internalError());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const v1 = await fetch(`${base}/v1/chat/completions/busy`);
    assert.equal(v1.status, 503);
    assert.equal(v1.headers.get('retry-after'), '1');
    assert.deepEqual(await v1.json(), {
      error: { message: storageBusy().message, type: 'server_error', param: null, code: 'storage_busy' },
    });
    const admin = await fetch(`${base}/admin/v1/organizations/busy`);
    assert.equal(admin.status, 503);
    assert.equal(admin.headers.get('retry-after'), '1');
    assert.deepEqual(await admin.json(), { error: { code: 'storage_busy', message: storageBusy().message } });
    const internal = await fetch(`${base}/readyz`);
    assert.equal(internal.status, 500);
    assert.equal(internal.headers.get('retry-after'), null);
    assert.deepEqual(await internal.json(), {
      error: { code: 'internal_error', message: '내부 오류입니다. / Internal server error.' },
    });
  } finally {
    server.close();
  }
});
