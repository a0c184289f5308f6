import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { storageBusy } from '../calls/errors.ts';
import { INTERNAL_FAILURE, sendFailure } from './respond.ts';

test('a failure is answered in the shape of its surface: OpenAI’s on /v1, the admin API’s elsewhere', async () => {
  const server = createServer((req, res) => {
    sendFailure(res, req.url!, req.url!.endsWith('/busy') ? storageBusy() : INTERNAL_FAILURE);
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
