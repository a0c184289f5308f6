import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { spawnHub } from '../helpers/hub-process.ts';

const BIN = fileURLToPath(new URL('../../bin/kaihub.mjs', import.meta.url));

test('bad configuration: one line naming the variable, exit code 1', () => {
  for (const [env, variable] of [
    [{ PORT: 'abc' }, 'PORT'],
    [{ KAIHUB_DATABASE: 'mysql://root@127.0.0.1/x' }, 'KAIHUB_DATABASE'],
    [{ KAIHUB_SECRET_KEY: 'too-short' }, 'KAIHUB_SECRET_KEY'],
    [
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' },
      'OTEL_EXPORTER_OTLP_PROTOCOL',
    ],
  ] as const) {
    const r = spawnSync(process.execPath, [BIN, 'start'], {
      env: { ...process.env, ...env },
      encoding: 'utf8',
    });
    assert.equal(r.status, 1, r.stderr);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, new RegExp(`^kaihub: ${variable}: `));
  }
  const flag = spawnSync(process.execPath, [BIN, 'start', '--no-such-flag'], { encoding: 'utf8' });
  assert.equal(flag.status, 1);
  assert.equal(flag.stderr.trim().split('\n').length, 1);
});

test('first start without a token or secret: prints the operator token once and stores only hashes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kaihub-start-'));
  const env = { KAIHUB_DATABASE: join(dir, 'hub.sqlite'), KAIHUB_ADMIN_TOKEN: '', KAIHUB_SECRET_KEY: '' };
  try {
    const first = await spawnHub(env);
    const token = /\n {2}(kaihub-admin-\S+)\n/.exec(first.output())?.[1];
    assert.ok(token, first.output());
    const res = await fetch(`${first.url}/admin/v1/suppliers`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(res.status, 200);
    await first.stop();
    assert.ok(!readFileSync(join(dir, 'hub.sqlite')).includes(token), 'the token itself is never stored');
    assert.match(readFileSync(join(dir, 'secret.key'), 'utf8'), /^[0-9a-f]{64}\n$/);

    const second = await spawnHub(env);
    assert.ok(!second.output().includes('kaihub-admin-'), 'the token is shown only on the first start');
    const again = await fetch(`${second.url}/admin/v1/suppliers`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(again.status, 200);
    await second.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
