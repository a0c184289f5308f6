import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { type FakeOpenAI, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import { type FakeOtlpCollector, startFakeOtlpCollector } from '../fakes/otlp-collector.ts';
import { runAdminInProcess } from '../helpers/cli.ts';
import { ADMIN_TOKEN, type Catalog, seedCatalog, startTestHub, type TestHub } from '../helpers/hub.ts';
import { captureLogs } from '../helpers/logs.ts';
import { addProduct, postV1, usageEvent } from '../helpers/v1.ts';

// A resident registration number with a valid date, gender digit and check digit; a mobile number;
// an e-mail address. None of them (nor their digits alone) may appear anywhere the hub writes.
const RRN = '900101-1234568';
const PHONE = '010-1234-5678';
const EMAIL = 'hong.gildong@example.co.kr';
const SECRETS = [RRN, RRN.replace('-', ''), PHONE, PHONE.replaceAll('-', ''), EMAIL];

function lastUpstreamText(fake: FakeOpenAI): string {
  const body = fake.requests.at(-1)!.body as { messages?: { content: string }[]; input?: unknown };
  return JSON.stringify(body.messages ?? body.input);
}

describe('Korean PII guardrail and data policies', () => {
  let fake: FakeOpenAI;
  let collector: FakeOtlpCollector;
  let t: TestHub;
  let catalog: Catalog;
  const logs = captureLogs();

  /** A new organisation of `cls` with a key, and (optionally) its own data policy. */
  async function organization(cls: string, policy?: Record<string, unknown>) {
    const org = await t.admin('POST', '/organizations', { name: `가드 ${cls} ${Math.random()}`, class: cls });
    assert.equal(org.status, 201, JSON.stringify(org.body));
    const key = await t.admin('POST', `/organizations/${org.body.id}/keys`, { name: 'guard' });
    if (policy) {
      const created = await t.admin('POST', '/data-policies', {
        scope: 'organization',
        scopeId: org.body.id,
        ...policy,
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
    }
    return {
      id: org.body.id as string,
      client: new OpenAI({ apiKey: key.body.key, baseURL: `${t.url}/v1`, maxRetries: 0 }),
      key: key.body.key as string,
    };
  }

  before(async () => {
    fake = await startFakeOpenAI({ apiKey: 'upstream-secret' });
    collector = await startFakeOtlpCollector();
    t = await startTestHub(
      {
        KAIHUB_LOG_CONTENT: 'true',
        OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_BSP_SCHEDULE_DELAY: '20',
        KAIHUB_TRACE_CONTENT: 'true',
      },
      { logger: logs.logger },
    );
    catalog = await seedCatalog(t, fake.url);
  });
  after(async () => {
    await t?.close();
    await fake?.close();
    await collector?.close();
  });

  test('POST /v1/guardrails/check: findings in UTF-16 offsets, and the masked text', async () => {
    const input = `😀 제 주민번호는 ${RRN}이고 연락처는 ${PHONE}, 메일은 ${EMAIL}입니다.`;
    const r = await postV1(t, catalog.key, '/guardrails/check', { input });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const at = (value: string) => ({ start: input.indexOf(value), end: input.indexOf(value) + value.length });
    assert.deepEqual(r.body.findings, [
      { type: 'rrn', ...at(RRN) },
      { type: 'phone', ...at(PHONE) },
      { type: 'email', ...at(EMAIL) },
    ]);
    assert.equal(
      r.body.masked,
      '😀 제 주민번호는 [주민등록번호]이고 연락처는 [전화번호], 메일은 [이메일]입니다.',
    );

    const bad = await postV1(t, catalog.key, '/guardrails/check', { input: 42 });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.param, 'input');
    const anonymous = await fetch(`${t.url}/v1/guardrails/check`, {
      method: 'POST',
      body: JSON.stringify({ input }),
    });
    assert.equal(anonymous.status, 401);
  });

  test('mask: the upstream never sees the values, the client reads the labels', async () => {
    const org = await organization('sme', { piiMode: 'mask' });
    const answer = await org.client.chat.completions.create({
      model: 'hcx-test',
      messages: [{ role: 'user', content: `주민번호 ${RRN} 전화 ${PHONE}` }],
    });
    const sent = lastUpstreamText(fake);
    assert.ok(!sent.includes(RRN) && !sent.includes(PHONE), sent);
    assert.match(sent, /\[주민등록번호\].*\[전화번호\]/);
    assert.equal(answer.choices[0]!.message.content, 'Echo: 주민번호 [주민등록번호] 전화 [전화번호]');

    // embeddings too
    await org.client.embeddings.create({ model: 'embed-test', input: [`메일 ${EMAIL}`, '개인정보 없음'] });
    assert.deepEqual((fake.requests.at(-1)!.body as { input: unknown }).input, [
      '메일 [이메일]',
      '개인정보 없음',
    ]);
  });

  test('pseudonymize: stable placeholders upstream, the values back to the client, plain and streamed', async () => {
    const org = await organization('sme', { piiMode: 'pseudonymize' });
    const content = `${RRN} 고객님, ${RRN} 번호로 조회한 결과를 ${EMAIL}로 보냅니다.`;
    const answer = await org.client.chat.completions.create({
      model: 'hcx-test',
      messages: [{ role: 'user', content }],
    });
    const sent = (fake.requests.at(-1)!.body as { messages: { content: string }[] }).messages[0]!.content;
    assert.equal(
      sent,
      '[주민등록번호_1] 고객님, [주민등록번호_1] 번호로 조회한 결과를 [이메일_1]로 보냅니다.',
    );
    assert.equal(answer.choices[0]!.message.content, `Echo: ${content}`);

    const stream = await org.client.chat.completions.create({
      model: 'hcx-test',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content }],
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    assert.equal(text, `Echo: ${content}`);
    assert.ok(!lastUpstreamText(fake).includes(RRN));
  });

  test('block: 400 naming the types, never the values; nothing sent, nothing charged', async () => {
    const org = await organization('sme', { piiMode: 'block', piiTypes: ['rrn', 'email'] });
    const before = fake.requests.length;
    const r = await postV1(t, org.key, '/chat/completions', {
      model: 'hcx-test',
      messages: [{ role: 'user', content: `주민번호 ${RRN}, 메일 ${EMAIL}, 전화 ${PHONE}` }],
    });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'pii_blocked');
    assert.equal(r.body.error.type, 'invalid_request_error');
    assert.match(r.body.error.message, /주민등록번호, 이메일/);
    assert.match(r.body.error.message, /\(rrn, email\)/);
    for (const s of SECRETS) assert.ok(!r.body.error.message.includes(s));
    assert.equal(fake.requests.length, before, 'nothing reached the upstream');
    const usage = await t.admin('GET', `/usage/events?organizationId=${org.id}`);
    assert.deepEqual(usage.body.data, [], 'nothing metered');

    // a type the policy does not name passes
    const phoneOnly = await org.client.chat.completions.create({
      model: 'hcx-test',
      messages: [{ role: 'user', content: `전화 ${PHONE}` }],
    });
    assert.equal(phoneOnly.choices[0]!.message.content, `Echo: 전화 ${PHONE}`);
  });

  test('detect: the upstream gets the text, the log gets the types and never the values', async () => {
    const org = await organization('sme', { piiMode: 'detect' });
    const { response } = await org.client.chat.completions
      .create({ model: 'hcx-test', messages: [{ role: 'user', content: `연락처 ${PHONE}, ${PHONE}` }] })
      .withResponse();
    assert.ok(lastUpstreamText(fake).includes(PHONE));
    const requestId = response.headers.get('x-request-id');
    const found = logs.records().find((r) => r.msg === 'personal data found' && r.requestId === requestId);
    assert.ok(found, 'the finding is logged');
    assert.deepEqual(found.pii, { phone: 2 });
    assert.equal(found.action, 'detect');
  });

  test('the strictest policy wins: class, organisation, programme and product policies add up', async () => {
    const org = await organization('research', { piiMode: 'mask', piiTypes: ['phone'] });
    const product = await t.admin('POST', '/data-policies', {
      scope: 'product',
      scopeId: catalog.productId,
      piiMode: 'block',
      piiTypes: ['email'],
    });
    assert.equal(product.status, 201);
    try {
      const effective = await t.admin('GET', `/organizations/${org.id}/data-policy?model=hcx-test`);
      assert.equal(effective.status, 200);
      assert.equal(effective.body.pii.phone, 'mask');
      assert.equal(effective.body.pii.email, 'block');
      assert.equal(effective.body.pii.rrn, 'off');
      assert.equal(effective.body.residency, 'any');
      assert.equal(effective.body.policies.length, 2);
      const refused = await postV1(t, org.key, '/chat/completions', {
        model: 'hcx-test',
        messages: [{ role: 'user', content: `${EMAIL} ${PHONE}` }],
      });
      assert.equal(refused.status, 400);
      assert.equal(refused.body.error.code, 'pii_blocked');
      // other products do not carry the product's policy
      await org.client.embeddings.create({ model: 'embed-test', input: `${EMAIL} ${PHONE}` });
      assert.equal((fake.requests.at(-1)!.body as { input: string }).input, `${EMAIL} [전화번호]`);
    } finally {
      await t.admin('DELETE', `/data-policies/${product.body.id}`);
    }
  });

  test('a programme policy reaches every organisation holding one of its vouchers', async () => {
    const org = await organization('sme');
    const programme = await t.admin('POST', '/programmes', {
      name: `개인정보 보호 사업 ${Math.random()}`,
      startsOn: '2026-01-01',
      endsOn: '2030-12-31',
      budgetKrw: '1000000',
      copayPercent: { sme: 20 },
      onExhausted: 'block',
    });
    assert.equal(programme.status, 201, JSON.stringify(programme.body));
    const policy = await t.admin('POST', '/data-policies', {
      scope: 'programme',
      scopeId: programme.body.id,
      piiMode: 'block',
      piiTypes: ['rrn'],
    });
    assert.equal(policy.status, 201, JSON.stringify(policy.body));
    const ask = () =>
      postV1(t, org.key, '/chat/completions', {
        model: 'hcx-test',
        messages: [{ role: 'user', content: `주민번호 ${RRN}` }],
      });
    assert.equal((await ask()).status, 200, 'not in the programme yet');
    const voucher = await t.admin('POST', `/programmes/${programme.body.id}/vouchers`, {
      organizationId: org.id,
      amountKrw: '1000',
    });
    assert.equal(voucher.status, 201, JSON.stringify(voucher.body));
    // the snapshot sees the new voucher at its next poll (1 s)
    const deadline = Date.now() + 5_000;
    let status = 200;
    while (status === 200 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      status = (await ask()).status;
    }
    assert.equal(status, 400, 'blocked once it holds a voucher of the programme');
  });

  test('policies: field-named validation, one per target, every change audited', async () => {
    const bad = await t.admin('POST', '/data-policies', {
      scope: 'organization',
      scopeId: catalog.organizationId,
      piiMode: 'shred',
    });
    assert.equal(bad.status, 400);
    assert.ok(JSON.stringify(bad.body).includes('piiMode'));
    const nobody = await t.admin('POST', '/data-policies', { scope: 'organization', scopeId: 'org_nope' });
    assert.equal(nobody.status, 400);
    assert.ok(JSON.stringify(nobody.body).includes('scopeId'));
    const badType = await t.admin('POST', '/data-policies', {
      scope: 'organization',
      scopeId: catalog.organizationId,
      piiTypes: ['ssn'],
    });
    assert.equal(badType.status, 400);

    const created = await t.admin('POST', '/data-policies', {
      scope: 'organization',
      scopeId: catalog.organizationId,
      piiMode: 'detect',
    });
    assert.equal(created.status, 201);
    const twice = await t.admin('POST', '/data-policies', {
      scope: 'organization',
      scopeId: catalog.organizationId,
    });
    assert.equal(twice.status, 409);
    const updated = await t.admin('PATCH', `/data-policies/${created.body.id}`, { piiMode: 'mask' });
    assert.equal(updated.body.piiMode, 'mask');
    assert.equal((await t.admin('DELETE', `/data-policies/${created.body.id}`)).status, 204);

    const audit = await t.admin('GET', `/audit?entityType=data_policy&entityId=${created.body.id}`);
    const actions = (audit.body.data as any[]).map((e) => e.action).sort();
    assert.deepEqual(actions, ['create', 'delete', 'update']);
    const update = (audit.body.data as any[]).find((e) => e.action === 'update');
    assert.equal(update.before.piiMode, 'detect');
    assert.equal(update.after.piiMode, 'mask');
  });

  test('a policy set on one replica reaches another within its poll', async () => {
    const replica = await startTestHub({}, { replicaOf: t });
    try {
      const org = await organization('sme');
      const client = new OpenAI({ apiKey: org.key, baseURL: `${replica.url}/v1`, maxRetries: 0 });
      const ask = () =>
        client.chat.completions.create({ model: 'hcx-test', messages: [{ role: 'user', content: PHONE }] });
      assert.equal((await ask()).choices[0]!.message.content, `Echo: ${PHONE}`);
      const created = await t.admin('POST', '/data-policies', {
        scope: 'organization',
        scopeId: org.id,
        piiMode: 'mask',
      });
      assert.equal(created.status, 201);
      const deadline = Date.now() + 5_000;
      let content = '';
      while (Date.now() < deadline) {
        content = (await ask()).choices[0]!.message.content ?? '';
        if (content !== `Echo: ${PHONE}`) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.equal(content, 'Echo: [전화번호]');
    } finally {
      await replica.close();
    }
  });

  test('kaihub policies: create, list, effective, update, delete from the command line', async () => {
    const org = await organization('university');
    const env = { KAIHUB_URL: t.url, KAIHUB_ADMIN_TOKEN: ADMIN_TOKEN };
    const created = await runAdminInProcess(
      [
        'policies',
        'create',
        '--scope',
        'organization',
        '--scope-id',
        org.id,
        '--pii-mode',
        'pseudonymize',
        '--pii-types',
        'rrn,phone',
        '--residency',
        'domestic',
        '--certified-only',
        'false',
        '--json',
      ],
      env,
    );
    assert.equal(created.code, 0, created.stderr);
    const policy = JSON.parse(created.stdout);
    assert.deepEqual(policy.piiTypes, ['rrn', 'phone']);
    assert.equal(policy.certifiedOnly, false);

    const listed = await runAdminInProcess(['policies', 'list', '--scope', 'organization'], env);
    assert.equal(listed.code, 0, listed.stderr);
    assert.ok(listed.stdout.includes(policy.id));
    assert.ok(listed.stdout.includes('pseudonymize'));

    const effective = await runAdminInProcess(['policies', 'effective', org.id, '--model', 'hcx-test'], env);
    assert.equal(effective.code, 0, effective.stderr);
    assert.match(effective.stdout, /residency: domestic/);
    assert.match(effective.stdout, /rrn=pseudonymize, phone=pseudonymize/);

    const wrong = await runAdminInProcess(['policies', 'update', policy.id, '--pii-mode', 'shred'], env);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /piiMode \(--pii-mode\)/);

    const removed = await runAdminInProcess(['policies', 'delete', policy.id], env);
    assert.equal(removed.code, 0, removed.stderr);
  });

  test('no unmasked value in logs, usage records, traces or the audit log', async () => {
    // everything above ran with the body log and trace content on
    await collector.waitForSpans(1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const usage = await t.admin('GET', '/usage/events?limit=1000');
    const audit = await t.admin('GET', '/audit?limit=1000');
    const places = {
      logs: logs.text(),
      usage: JSON.stringify(usage.body),
      traces: JSON.stringify(collector.spans, (_k, v) => (typeof v === 'bigint' ? String(v) : v)),
      audit: JSON.stringify(audit.body),
    };
    assert.ok(
      logs.records().some((r) => r.msg === 'content'),
      'the body log was on',
    );
    assert.ok(places.traces.includes('gen_ai.input.messages'), 'trace content was on');
    assert.ok(places.logs.includes('[주민등록번호]'), 'what the body log keeps is masked');
    for (const [place, text] of Object.entries(places))
      for (const secret of SECRETS) assert.ok(!text.includes(secret), `${secret} found in ${place}`);
  });
});

describe('residency: data that must stay in Korea does', () => {
  let fake: FakeOpenAI;
  let t: TestHub;
  let catalog: Catalog;

  before(async () => {
    fake = await startFakeOpenAI({ apiKey: 'upstream-secret' });
    t = await startTestHub({ KAIHUB_UPSTREAM_RETRIES: '0' });
    catalog = await seedCatalog(t, fake.url);
    await addProduct(t, catalog, 'gpt-abroad', [{ baseUrl: fake.url, upstreamModel: 'abroad' }], {
      residency: 'foreign',
    });
    // served at home, falling back abroad when home fails
    await addProduct(t, catalog, 'home-first', [{ baseUrl: fake.url, upstreamModel: 'home-broken' }], {
      fallbackModels: ['gpt-abroad'],
    });
    fake.setBehavior('error:500', { model: 'home-broken' });
  });
  after(async () => {
    await t?.close();
    await fake?.close();
  });

  async function keyOf(cls: string): Promise<string> {
    const org = await t.admin('POST', '/organizations', { name: `소재 ${cls} ${Math.random()}`, class: cls });
    const key = await t.admin('POST', `/organizations/${org.body.id}/keys`, { name: 'r' });
    return key.body.key;
  }

  test('a public organisation is kept at home by default: a product served only abroad is refused', async () => {
    const publicKey = await keyOf('public');
    const before = fake.requests.length;
    const r = await postV1(t, publicKey, '/chat/completions', {
      model: 'gpt-abroad',
      messages: [{ role: 'user', content: '안녕하세요' }],
    });
    assert.equal(r.status, 403);
    assert.equal(r.body.error.code, 'residency_restricted');
    assert.match(r.body.error.message, /국내 배포/);
    assert.equal(fake.requests.length, before, 'nothing left the country');
    // and it is not offered: /v1/models lists what the organisation's data may reach
    const models = await fetch(`${t.url}/v1/models`, { headers: { authorization: `Bearer ${publicKey}` } });
    const ids = ((await models.json()) as { data: { id: string }[] }).data.map((m) => m.id);
    assert.ok(ids.includes('hcx-test') && !ids.includes('gpt-abroad'), ids.join(','));
    const one = await fetch(`${t.url}/v1/models/gpt-abroad`, {
      headers: { authorization: `Bearer ${publicKey}` },
    });
    assert.equal(one.status, 404);
    // an SME has no such policy
    const sme = await postV1(t, await keyOf('sme'), '/chat/completions', {
      model: 'gpt-abroad',
      messages: [{ role: 'user', content: '안녕하세요' }],
    });
    assert.equal(sme.status, 200);
  });

  test('a fallback never crosses the line', async () => {
    const smeAnswer = await postV1(t, await keyOf('sme'), '/chat/completions', {
      model: 'home-first',
      messages: [{ role: 'user', content: '대체 경로' }],
    });
    assert.equal(smeAnswer.status, 200, 'an SME is served by the fallback abroad');
    assert.equal(smeAnswer.body.model, 'gpt-abroad');

    const before = fake.requests.length;
    const publicAnswer = await postV1(t, await keyOf('public'), '/chat/completions', {
      model: 'home-first',
      messages: [{ role: 'user', content: '대체 경로' }],
    });
    assert.notEqual(publicAnswer.status, 200);
    const sent = fake.requests.slice(before).map((r) => (r.body as { model: string }).model);
    assert.deepEqual(sent, ['home-broken'], 'only the domestic deployment was tried');
    const event = await usageEvent(t, publicAnswer.headers.get('x-request-id')!);
    assert.equal(event.status, 'upstream_error');
  });

  test('a deployment abroad of a domestic product is left out; CSAP certification is the operator’s word', async () => {
    const { productId, deploymentIds } = await addProduct(t, catalog, 'mixed-home', [
      { baseUrl: fake.url, upstreamModel: 'mixed-abroad', priority: 0 },
      { baseUrl: fake.url, upstreamModel: 'mixed-home', priority: 1 },
    ]);
    const [abroad, home] = deploymentIds as [string, string];
    const moved = await t.admin('PATCH', `/deployments/${abroad}`, { residency: 'foreign' });
    assert.equal(moved.status, 200, JSON.stringify(moved.body));
    assert.equal(moved.body.residency, 'foreign');
    const publicKey = await keyOf('public');
    const before = fake.requests.length;
    for (let i = 0; i < 3; i++) {
      const r = await postV1(t, publicKey, '/chat/completions', {
        model: 'mixed-home',
        messages: [{ role: 'user', content: '국내만' }],
      });
      assert.equal(r.status, 200);
    }
    const sent = fake.requests.slice(before).map((r) => (r.body as { model: string }).model);
    assert.deepEqual(sent, ['mixed-home', 'mixed-home', 'mixed-home']);

    // certified deployments only, for this organisation
    const org = await t.admin('POST', '/organizations', { name: `CSAP ${Math.random()}`, class: 'public' });
    const key = await t.admin('POST', `/organizations/${org.body.id}/keys`, { name: 'c' });
    const policy = await t.admin('POST', '/data-policies', {
      scope: 'organization',
      scopeId: org.body.id,
      residency: 'domestic',
      certifiedOnly: true,
    });
    assert.equal(policy.status, 201);
    const refused = await postV1(t, key.body.key, '/chat/completions', {
      model: 'mixed-home',
      messages: [{ role: 'user', content: '인증된 곳만' }],
    });
    assert.equal(refused.status, 403);
    assert.match(refused.body.error.message, /CSAP/);

    // a supplier admin cannot vouch for their own deployment
    const user = await t.admin('POST', '/users', {
      name: '공급 관리자',
      email: `sa${Math.random()}@example.kr`,
    });
    await t.admin('POST', `/users/${user.body.id}/memberships`, {
      role: 'supplier_admin',
      supplierId: catalog.supplierId,
    });
    const token = await t.admin('POST', `/users/${user.body.id}/tokens`, { name: 'sa' });
    const claim = await fetch(`${t.url}/admin/v1/deployments/${home}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${token.body.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ csapCertified: true }),
    });
    assert.equal(claim.status, 403);

    const vouched = await t.admin('PATCH', `/deployments/${home}`, { csapCertified: true });
    assert.equal(vouched.body.csapCertified, true);
    const served = await postV1(t, key.body.key, '/chat/completions', {
      model: 'mixed-home',
      messages: [{ role: 'user', content: '인증된 곳만' }],
    });
    assert.equal(served.status, 200);
    assert.ok(productId);
  });
});
