import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { test } from 'node:test';
import { runKaihub } from '../helpers/cli.ts';
import { createTestDatabase } from '../helpers/databases.ts';
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
  const database = await createTestDatabase();
  const { server, port } = await occupyPort();
  const env = {
    ...process.env,
    KAIHUB_DATABASE: database.location,
    KAIHUB_DATA_DIR: database.dataDir,
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
    await database.drop();
  }
});

test('kaihub admin-token reset: offline, prints a new token once; the old one stops working, on a running hub too', async () => {
  const database = await createTestDatabase();
  const env = {
    ...process.env,
    KAIHUB_DATABASE: database.location,
    KAIHUB_DATA_DIR: database.dataDir,
    KAIHUB_ADMIN_TOKEN: '',
    KAIHUB_SECRET_KEY: '',
    KAIHUB_CATALOG_SEED: 'none',
    KAIHUB_LOG_LEVEL: 'warn',
  };
  const status = async (url: string, token: string) =>
    (await fetch(`${url}/admin/v1/suppliers`, { headers: { authorization: `Bearer ${token}` } })).status;
  try {
    const hub = await spawnHub(env);
    const first = TOKEN_LINE.exec(hub.output())?.[1];
    assert.ok(first, hub.output());
    await hub.stop();

    const reset = await runKaihub(['admin-token', 'reset'], env);
    assert.equal(reset.code, 0, reset.stderr);
    const second = reset.stdout.trim();
    assert.match(second, /^kaihub-admin-[A-Za-z0-9_-]{32}$/, 'stdout is the token alone, for scripts');
    assert.match(reset.stderr, /다시 표시되지 않습니다|will not be shown again/);

    const again = await spawnHub(env);
    try {
      assert.ok(!again.output().includes('kaihub-admin-'), 'a start after a reset prints no token');
      assert.equal(await status(again.url, second), 200);
      assert.equal(await status(again.url, first), 401);

      // On a running hub: the next reset is accepted within a second, and the previous token refused.
      const third = (await runKaihub(['admin-token', 'reset'], env)).stdout.trim();
      let accepted = false;
      for (let i = 0; i < 40 && !accepted; i++) {
        accepted = (await status(again.url, third)) === 200;
        if (!accepted) await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(accepted, 'the running hub accepts the new token within a second');
      assert.equal(await status(again.url, second), 401);

      const audit = await fetch(`${again.url}/admin/v1/audit?action=reset`, {
        headers: { authorization: `Bearer ${third}` },
      });
      const entries = ((await audit.json()) as { data: any[] }).data;
      assert.equal(entries.length, 2);
      for (const e of entries) {
        assert.match(e.actorId, /^cli/);
        assert.equal(e.source, 'cli');
        assert.equal(e.entityType, 'admin_token');
        assert.ok(!JSON.stringify(e).includes('kaihub-admin-'), 'the token is not in the audit log');
      }
    } finally {
      await again.stop();
    }

    const configured = await runKaihub(['admin-token', 'reset'], {
      ...env,
      KAIHUB_ADMIN_TOKEN: 'configured-token-0123456789',
    });
    assert.equal(configured.code, 1);
    assert.equal(configured.stdout, '');
    assert.match(configured.stderr, /^kaihub: KAIHUB_ADMIN_TOKEN: .*nothing to reset/);
    assert.equal(configured.stderr.trim().split('\n').length, 1);
  } finally {
    await database.drop();
  }
});
