import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { secretKeyId } from '../../src/catalog/credentials.ts';
import { type FakeOpenAI, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import { type Catalog, seedCatalog, startTestHub, type TestHub } from '../helpers/hub.ts';

/**
 * KAIHUB_SECRET_KEY rotation across hubs sharing one database: credentials sealed under the old key
 * answer after the rotation, `reseal` moves them to the new key, and a hub that holds no key for a
 * credential says so in /readyz and on the deployment instead of silently dropping the product.
 */

const hex = () => randomBytes(32).toString('hex');
const idOf = (key: string) => secretKeyId(Buffer.from(key, 'hex'));

async function chat(t: TestHub, key: string) {
  const client = new OpenAI({ apiKey: key, baseURL: `${t.url}/v1`, maxRetries: 0 });
  return client.chat.completions.create({ model: 'hcx-test', messages: [{ role: 'user', content: '안녕' }] });
}

async function ready(t: TestHub) {
  const res = await fetch(`${t.url}/readyz`);
  return { status: res.status, body: (await res.json()) as any };
}

describe('secret key rotation', () => {
  const oldKey = hex();
  const newKey = hex();
  let fake: FakeOpenAI;
  let first: TestHub;
  let catalog: Catalog;
  const replicas: TestHub[] = [];
  const replica = async (env: Record<string, string>) => {
    const hub = await startTestHub(env, { replicaOf: first });
    replicas.push(hub);
    return hub;
  };

  before(async () => {
    fake = await startFakeOpenAI({ apiKey: 'upstream-secret' });
    first = await startTestHub({ KAIHUB_SECRET_KEY: oldKey });
    catalog = await seedCatalog(first, fake.url);
  });
  after(async () => {
    for (const hub of replicas) await hub.close();
    await first?.close();
    await fake?.close();
  });

  test('old key kept: sealed credentials still answer; reseal moves them; the old key can then go', async () => {
    const deployment = await first.admin('GET', `/deployments/${catalog.deploymentId}`);
    assert.deepEqual(deployment.body.credential, { state: 'current', keyId: idOf(oldKey) });
    assert.equal((await chat(first, catalog.key)).choices.length, 1);

    const rotated = await replica({ KAIHUB_SECRET_KEY: newKey, KAIHUB_SECRET_KEYS_OLD: oldKey });
    assert.equal((await chat(rotated, catalog.key)).choices.length, 1, 'answers under the old key');
    const before = await rotated.admin('GET', `/deployments/${catalog.deploymentId}`);
    assert.deepEqual(before.body.credential, { state: 'old-key', keyId: idOf(oldKey) });
    assert.equal((await ready(rotated)).body.status, 'ready');

    const reseal = await rotated.admin('POST', '/credentials/reseal');
    assert.equal(reseal.status, 200);
    assert.equal(reseal.body.keyId, idOf(newKey));
    assert.equal(reseal.body.resealed.length, 2, 'both deployments of the seeded catalog');
    assert.ok(reseal.body.resealed.every((r: any) => r.fromKeyId === idOf(oldKey)));
    assert.deepEqual(reseal.body.unreadable, []);
    const afterReseal = await rotated.admin('GET', `/deployments/${catalog.deploymentId}`);
    assert.deepEqual(afterReseal.body.credential, { state: 'current', keyId: idOf(newKey) });

    const audit = await rotated.admin('GET', '/audit?action=reseal');
    const entries = audit.body.data as any[];
    assert.deepEqual(entries.map((e) => e.entityType).sort(), ['deployment', 'deployment', 'secret_key']);
    for (const e of entries.filter((x) => x.entityType === 'deployment')) {
      assert.deepEqual(e.before, { credential: { keyId: idOf(oldKey) } });
      assert.deepEqual(e.after, { credential: { keyId: idOf(newKey) } });
    }
    assert.ok(!JSON.stringify(entries).includes('upstream-secret'));

    const again = await rotated.admin('POST', '/credentials/reseal');
    assert.deepEqual(
      [again.body.resealed, again.body.alreadyCurrent],
      [[], 2],
      'a second run has nothing to do',
    );

    const newOnly = await replica({ KAIHUB_SECRET_KEY: newKey });
    assert.equal((await chat(newOnly, catalog.key)).choices.length, 1, 'the old key is no longer needed');
    assert.equal((await ready(newOnly)).body.status, 'ready');
  });

  test('a key the hub does not hold: /readyz degraded naming the deployments, the admin API says unreadable', async () => {
    // The first hub still holds only the old key; everything is now sealed under the new one.
    for (let i = 0; i < 50 && (await ready(first)).body.status !== 'degraded'; i++)
      await new Promise((r) => setTimeout(r, 100));
    const state = await ready(first);
    assert.equal(state.status, 200, 'degraded, not unavailable: other deployments still serve');
    assert.equal(state.body.status, 'degraded');
    assert.equal(state.body.credentials.keyId, idOf(oldKey));
    const named = state.body.credentials.unreadable.map((u: any) => u.deploymentId).sort();
    const all = (await first.admin('GET', '/deployments')).body.data.map((d: any) => d.id).sort();
    assert.deepEqual(named, all);
    for (const u of state.body.credentials.unreadable) assert.equal(u.keyId, idOf(newKey));

    const deployment = await first.admin('GET', `/deployments/${catalog.deploymentId}`);
    assert.deepEqual(deployment.body.credential, { state: 'unreadable', keyId: idOf(newKey) });
    assert.equal(deployment.body.hasApiKey, true);
    await assert.rejects(chat(first, catalog.key), (e: any) => e.status === 404);

    const reseal = await first.admin('POST', '/credentials/reseal');
    assert.deepEqual(reseal.body.resealed, []);
    assert.equal(reseal.body.unreadable.length, 2, 'left as they are: nothing this hub could do');

    // Setting the key anew on that deployment brings it back.
    await first.admin('PATCH', `/deployments/${catalog.deploymentId}`, { apiKey: 'upstream-secret' });
    assert.equal((await chat(first, catalog.key)).choices.length, 1);
    assert.equal((await ready(first)).body.credentials.unreadable.length, 1);
  });
});
