import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { type FakeOpenAI, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import { type Catalog, seedCatalog, startTestHub, type TestHub } from '../helpers/hub.ts';

// An upstream whose connections never complete, on loopback: a listener with a backlog of 1 whose
// process never accepts. Once its accept queue is full the kernel drops new SYNs, so a connect hangs
// until the client gives up, as it would against a dead host.
let stuck: ChildProcess;
let stuckPort: number;
const fillers: Socket[] = [];
let fake: FakeOpenAI;
let t: TestHub;
let catalog: Catalog;

before(async () => {
  stuck = spawn(
    process.execPath,
    [
      '-e',
      `const s = require('net').createServer();
       s.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
         process.stdout.write(s.address().port + '\\n');
         Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60000);
       });`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  stuckPort = await new Promise((resolve) =>
    stuck.stdout!.once('data', (d) => resolve(Number(String(d).trim()))),
  );
  for (let i = 0; i < 4; i++) fillers.push(connect(stuckPort, '127.0.0.1').on('error', () => {}));
  await new Promise((r) => setTimeout(r, 200));
  fake = await startFakeOpenAI({ apiKey: 'upstream-secret' });
  t = await startTestHub({
    KAIHUB_UPSTREAM_CONNECT_TIMEOUT_MS: '300',
    KAIHUB_UPSTREAM_RETRIES: '0',
    KAIHUB_UPSTREAM_COOLDOWN_FAILURES: '0',
  });
  catalog = await seedCatalog(t, fake.url);
  const moved = await t.admin('PATCH', `/deployments/${catalog.deploymentId}`, {
    baseUrl: `http://127.0.0.1:${stuckPort}/v1`,
  });
  assert.equal(moved.status, 200);
});

after(async () => {
  await t?.close();
  await fake?.close();
  for (const f of fillers) f.destroy();
  stuck?.kill('SIGKILL');
});

test('an upstream that never completes the connection: 502 after the connect timeout, nothing charged', async () => {
  const started = Date.now();
  const res = await fetch(`${t.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${catalog.key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'hcx-test', messages: [{ role: 'user', content: '안녕' }] }),
  });
  const took = Date.now() - started;
  assert.equal(res.status, 502);
  const body = (await res.json()) as { error: { code: string } };
  assert.equal(body.error.code, 'upstream_unreachable');
  assert.ok(took >= 250 && took < 5_000, `answered after ${took} ms`);
  const events = await t.admin('GET', `/usage/events?requestId=${res.headers.get('x-request-id')}`);
  assert.equal(events.body.data[0].status, 'upstream_error');
  assert.equal(events.body.data[0].costMicroKrw, '0');
});
