import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { type FakeOpenAI, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import { runAdminInProcess } from '../helpers/cli.ts';
import { ADMIN_TOKEN, seedCatalog, startTestHub, type TestHub } from '../helpers/hub.ts';

describe('rate limits per key and per organisation, with the x-ratelimit-* headers OpenAI clients read', () => {
  let fake: FakeOpenAI;
  let t: TestHub;
  let n = 0;

  async function organization(rateLimits: unknown, keyLimits?: unknown) {
    n++;
    const org = await t.admin('POST', '/organizations', { name: `한도기업 ${n}`, class: 'sme', rateLimits });
    assert.equal(org.status, 201, JSON.stringify(org.body));
    const key = await t.admin('POST', `/organizations/${org.body.id}/keys`, {
      name: 'k',
      ...(keyLimits !== undefined && { rateLimits: keyLimits }),
    });
    assert.equal(key.status, 201, JSON.stringify(key.body));
    return {
      id: org.body.id as string,
      client: new OpenAI({ apiKey: key.body.key, baseURL: `${t.url}/v1`, maxRetries: 0 }),
    };
  }

  const ask = (client: OpenAI, max_tokens = 10) =>
    client.chat.completions
      .create({ model: 'hcx-test', messages: [{ role: 'user', content: '안녕' }], max_tokens })
      .withResponse();

  before(async () => {
    fake = await startFakeOpenAI({ apiKey: 'upstream-secret' });
    t = await startTestHub();
    await seedCatalog(t, fake.url);
  });
  after(async () => {
    await t?.close();
    await fake?.close();
  });

  test('an organisation over its requests per minute gets 429 rate_limit_exceeded with retry-after, before any upstream call', async () => {
    const org = await organization({ requestsPerMinute: 3 });
    const remaining: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { response } = await ask(org.client);
      assert.equal(response.headers.get('x-ratelimit-limit-requests'), '3');
      remaining.push(response.headers.get('x-ratelimit-remaining-requests')!);
      assert.match(response.headers.get('x-ratelimit-reset-requests')!, /^\d+(\.\d)?(ms|s)$|^\d+m\d+s$/);
    }
    assert.deepEqual(remaining, ['2', '1', '0']);
    const before = fake.requests.length;
    const error = await ask(org.client).then(
      () => assert.fail('admitted over the limit'),
      (e: unknown) => e as InstanceType<typeof OpenAI.APIError>,
    );
    assert.equal(error.status, 429);
    assert.equal(error.code, 'rate_limit_exceeded');
    assert.equal(error.type, 'requests');
    assert.match(error.message, /RPM 3/);
    assert.match(error.message, /조직|organization/);
    assert.ok(Number(error.headers?.get('retry-after')) >= 1);
    assert.equal(error.headers?.get('x-ratelimit-remaining-requests'), '0');
    assert.equal(fake.requests.length, before, 'the upstream saw nothing');
  });

  test('a key’s tokens per minute count prompt + max_tokens, and what a call did not use comes back', async () => {
    const org = await organization(null, { tokensPerMinute: 200 });
    fake.setReply('하나 둘');
    const first = await ask(org.client, 100);
    const left = Number(first.response.headers.get('x-ratelimit-remaining-tokens'));
    assert.ok(left < 100, `the reservation counted max_tokens (${left} left)`);
    // the first call used a few tokens of its ≈ 105: the rest is back by the next call
    const second = await ask(org.client, 100);
    assert.ok(Number(second.response.headers.get('x-ratelimit-remaining-tokens')) > left - 100 + 50);
    const tooBig = await ask(org.client, 500).then(
      () => assert.fail('admitted a request larger than the limit'),
      (e: unknown) => e as InstanceType<typeof OpenAI.APIError>,
    );
    assert.equal(tooBig.status, 429);
    assert.equal(tooBig.type, 'tokens');
    assert.match(tooBig.message, /max_tokens/);
  });

  test('a stream carries the headers too; only the operator sets limits; a raised limit applies at once', async () => {
    const org = await organization({ requestsPerMinute: 1 });
    const { response, data } = await org.client.chat.completions
      .create({ model: 'hcx-test', messages: [{ role: 'user', content: '안녕' }], stream: true })
      .withResponse();
    for await (const _ of data) {
      // drain
    }
    assert.equal(response.headers.get('x-ratelimit-remaining-requests'), '0');
    await ask(org.client).then(
      () => assert.fail('admitted over the limit'),
      (e: unknown) => assert.equal((e as InstanceType<typeof OpenAI.APIError>).status, 429),
    );
    const raised = await t.admin('PATCH', `/organizations/${org.id}`, {
      rateLimits: { requestsPerMinute: 100 },
    });
    assert.equal(raised.status, 200, JSON.stringify(raised.body));
    assert.deepEqual(raised.body.rateLimits, { requestsPerMinute: 100, tokensPerMinute: null });
    const { response: after } = await ask(org.client);
    assert.equal(after.headers.get('x-ratelimit-limit-requests'), '100');

    // an organisation admin may create keys, but not give them limits
    const user = await t.admin('POST', '/users', { name: '조직 관리자', email: `admin-${n}@example.kr` });
    await t.admin('POST', `/users/${user.body.id}/memberships`, {
      role: 'org_admin',
      organizationId: org.id,
    });
    const pat = await t.admin('POST', `/users/${user.body.id}/tokens`, { name: 't' });
    const res = await fetch(`${t.url}/admin/v1/organizations/${org.id}/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${pat.body.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'mine', rateLimits: { requestsPerMinute: 1000000 } }),
    });
    assert.equal(res.status, 403);
    const bad = await t.admin('PATCH', `/organizations/${org.id}`, { rateLimits: { requestsPerMinute: 0 } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.fields[0].field, 'rateLimits.requestsPerMinute');
    // the largest value the columns hold is taken on both databases; one beyond is a 400, not a 500
    const largest = await t.admin('PATCH', `/organizations/${org.id}`, {
      rateLimits: { requestsPerMinute: 2_147_483_647, tokensPerMinute: 2_147_483_647 },
    });
    assert.equal(largest.status, 200, JSON.stringify(largest.body));
    const beyond = await t.admin('PATCH', `/organizations/${org.id}`, {
      rateLimits: { tokensPerMinute: 3_000_000_000 },
    });
    assert.equal(beyond.status, 400);
    assert.equal(beyond.body.error.fields[0].field, 'rateLimits.tokensPerMinute');
  });

  test("the operator sets an organisation's limits from the CLI; the next calls are held to them", async () => {
    const org = await organization(null);
    const env = { KAIHUB_URL: t.url, KAIHUB_ADMIN_TOKEN: ADMIN_TOKEN };
    const set = await runAdminInProcess(
      ['orgs', 'update', org.id, '--data', '{"rateLimits": {"requestsPerMinute": 2}}', '--json'],
      env,
    );
    assert.equal(set.code, 0, set.stderr);
    assert.deepEqual(JSON.parse(set.stdout).rateLimits, { requestsPerMinute: 2, tokensPerMinute: null });
    await ask(org.client);
    const { response } = await ask(org.client);
    assert.equal(response.headers.get('x-ratelimit-limit-requests'), '2');
    const refused = await ask(org.client).then(
      () => assert.fail('a third call in the minute was admitted'),
      (e: InstanceType<typeof OpenAI.APIError>) => e,
    );
    assert.equal(refused.status, 429);
    assert.equal(refused.code, 'rate_limit_exceeded');
    const bad = await runAdminInProcess(
      ['orgs', 'update', org.id, '--data', '{"rateLimits": {"requestsPerMinute": -1}}'],
      env,
    );
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /rateLimits/);
  });

  test('no limits set: no x-ratelimit headers', async () => {
    const org = await organization(null);
    const { response } = await ask(org.client);
    assert.equal(response.headers.get('x-ratelimit-limit-requests'), null);
  });
});
