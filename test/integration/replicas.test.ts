import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { type FakeOpenAI, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import { type Catalog, seedCatalog, startTestHub, type TestHub } from '../helpers/hub.ts';

// Two replicas on one database: what one is told, the other must learn within a second, with no
// message between them.
let fake: FakeOpenAI;
let a: TestHub;
let b: TestHub;
let catalog: Catalog;

before(async () => {
  fake = await startFakeOpenAI({ apiKey: 'upstream-secret' });
  a = await startTestHub();
  b = await startTestHub({}, { replicaOf: a });
  catalog = await seedCatalog(a, fake.url);
});
after(async () => {
  await b?.close();
  await a?.close();
  await fake?.close();
});

async function within(ms: number, what: string, check: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < ms) {
    if (await check()) return Date.now() - started;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`${what} did not happen within ${ms} ms`);
}

test('a product created on one replica is served by the other within a second', async () => {
  const client = new OpenAI({ apiKey: catalog.key, baseURL: `${b.url}/v1`, maxRetries: 0 });
  await within(1500, 'replica b lists hcx-test', async () =>
    (await client.models.list()).data.some((m) => m.id === 'hcx-test'),
  );
  const reply = await client.chat.completions.create({
    model: 'hcx-test',
    messages: [{ role: 'user', content: '안녕' }],
  });
  assert.equal(reply.model, 'hcx-test');

  const patched = await a.admin('PATCH', `/products/${catalog.productId}`, { status: 'inactive' });
  assert.equal(patched.status, 200);
  await within(1500, 'replica b drops the inactive product', async () =>
    (await client.models.list()).data.every((m) => m.id !== 'hcx-test'),
  );
});

test('a key revoked on one replica stops working on the other within one second', async () => {
  const key = (await a.admin('POST', `/organizations/${catalog.organizationId}/keys`, { name: 'replica' }))
    .body;
  const onB = new OpenAI({ apiKey: key.key, baseURL: `${b.url}/v1`, maxRetries: 0 });
  await onB.models.list(); // now cached on b
  const revoked = await a.admin('DELETE', `/keys/${key.id}`);
  assert.equal(revoked.status, 200);
  const tookMs = await within(1000, 'replica b refuses the revoked key', async () => {
    try {
      await onB.models.list();
      return false;
    } catch (error) {
      return error instanceof OpenAI.AuthenticationError;
    }
  });
  assert.ok(tookMs <= 1000, `took ${tookMs} ms`);
});
