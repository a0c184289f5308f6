import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, test } from 'node:test';
import { type FakeOpenAI, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import { type Catalog, seedCatalog, startTestHub, type TestHub } from '../helpers/hub.ts';

let fake: FakeOpenAI;
let t: TestHub;
let catalog: Catalog;
before(async () => {
  fake = await startFakeOpenAI({ apiKey: 'upstream-secret' });
  t = await startTestHub();
  catalog = await seedCatalog(t, fake.url);
});
after(async () => {
  await t?.close();
  await fake?.close();
});

/** Sends a 40 MB body as fast as it can, never waiting for an answer first, as careless clients do. */
function sendLargeBody(
  url: string,
  key: string,
  chunked: boolean,
): Promise<{ status: number; body: string }> {
  const total = 40 * 1024 * 1024;
  const chunk = Buffer.alloc(1024 * 1024, 'a');
  return new Promise((resolve, reject) => {
    const req = request(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${key}`,
        'content-type': 'application/json',
        ...(!chunked && { 'content-length': String(total) }),
      },
    });
    req.on('response', (res) => {
      let body = '';
      res.on('data', (d: Buffer) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        sent += chunk.length;
        if (!req.write(chunk)) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
}

test('a client still sending a 40 MB body reads the 413 instead of a connection reset', async () => {
  for (let i = 0; i < 10; i++) {
    const r = await sendLargeBody(t.url, catalog.key, i % 2 === 1);
    assert.equal(r.status, 413, `attempt ${i}`);
    assert.equal(JSON.parse(r.body).error.code, 'request_too_large');
  }
  const ok = await fetch(`${t.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${catalog.key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'hcx-test', messages: [{ role: 'user', content: '안녕' }] }),
  });
  assert.equal(ok.status, 200, 'the hub still serves');
});

test('a bad key with a large body gets its 401, not a reset', async () => {
  const r = await sendLargeBody(t.url, 'sk-kai-wrong', false);
  assert.equal(r.status, 401);
});
