import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runKaihub } from '../helpers/cli.ts';
import { spawnHub } from '../helpers/hub-process.ts';

/**
 * A newcomer's first `npm start` when the port is taken (llama-server also defaults to 8080): the
 * start fails, and the operator must still be able to get in afterwards.
 */

function occupyPort(): Promise<{ server: Server; port: number }> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (!address || typeof address === 'string') return reject(new Error('no port'));
      resolve({ server, port: address.port });
    });
  });
}

const TOKEN_LINE = /\n {2}(kaihub-admin-\S+)\n/;

test('first start on a taken port stores no token and says how to recover; the next start prints one that works', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kaihub-first-run-'));
  const { server, port } = await occupyPort();
  const env = {
    ...process.env,
    KAIHUB_DATABASE: join(dir, 'hub.sqlite'),
    KAIHUB_ADMIN_TOKEN: '',
    KAIHUB_SECRET_KEY: '',
    KAIHUB_CATALOG_SEED: 'none',
    KAIHUB_LOG_LEVEL: 'warn',
    HOST: '127.0.0.1',
  };
  try {
    const first = await runKaihub(['start'], { ...env, PORT: String(port) });
    assert.equal(first.code, 1, first.stderr);
    assert.match(first.stderr, new RegExp(`${port}`), 'the error names the port');
    assert.match(first.stderr, /이미 사용 중|already in use/);
    assert.ok(!TOKEN_LINE.test(first.stderr), 'no token is printed by a start that cannot serve');
    assert.match(first.stderr, /kaihub admin-token reset/, 'the error names the offline recovery');

    const second = await spawnHub(env);
    try {
      const token = TOKEN_LINE.exec(second.output())?.[1];
      assert.ok(token, `the second start prints the operator token:\n${second.output()}`);
      const res = await fetch(`${second.url}/admin/v1/suppliers`, {
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(res.status, 200, 'the operator gets in with it');
    } finally {
      await second.stop();
    }
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
