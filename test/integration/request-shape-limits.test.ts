import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import OpenAI from 'openai';
import { type FakeOpenAI, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import { type Catalog, seedCatalog, startTestHub, type TestHub } from '../helpers/hub.ts';
import { assertMatchesSchema, ERROR_RESPONSE } from '../helpers/openapi.ts';

/**
 * Bodies that are valid JSON but that the hub cannot carry: nesting deeper than it walks, numbers
 * JSON.stringify would turn into `null`. Each is a 400 naming the problem, nothing reaches the
 * upstream, and the hub keeps serving.
 */
describe('/v1 refuses JSON it cannot carry', () => {
  let fake: FakeOpenAI;
  let t: TestHub;
  let catalog: Catalog;
  let client: OpenAI;

  before(async () => {
    fake = await startFakeOpenAI({ apiKey: 'upstream-secret' });
    t = await startTestHub();
    catalog = await seedCatalog(t, fake.url);
    client = new OpenAI({ apiKey: catalog.key, baseURL: `${t.url}/v1`, maxRetries: 0 });
  });
  after(async () => {
    await t?.close();
    await fake?.close();
  });
  beforeEach(() => fake.reset());

  async function post(path: string, body: string): Promise<{ status: number; body: any }> {
    const res = await fetch(`${t.url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${catalog.key}`, 'content-type': 'application/json' },
      body,
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  }

  async function assertHubServes(): Promise<void> {
    const completion = await client.chat.completions.create({
      model: 'hcx-test',
      messages: [{ role: 'user', content: '아직 살아 있나요' }],
    });
    assert.equal(completion.choices[0]?.message.content, 'Echo: 아직 살아 있나요');
  }

  test('100,000 nested arrays in a message are a 400 nesting_too_deep, not a 502', async () => {
    const depth = 100_000;
    const body = `{"model":"hcx-test","messages":[{"role":"user","content":${'['.repeat(depth)}${']'.repeat(depth)}}]}`;
    const answer = await post('/v1/chat/completions', body);
    assert.equal(answer.status, 400, JSON.stringify(answer.body).slice(0, 500));
    assertMatchesSchema(ERROR_RESPONSE, answer.body);
    assert.equal(answer.body.error.type, 'invalid_request_error');
    assert.equal(answer.body.error.code, 'nesting_too_deep');
    assert.match(answer.body.error.message, /128/, 'the message names the limit');
    assert.match(answer.body.error.param, /^messages\[0\]\.content\[0\]\[0\]/);
    assert.equal(fake.requests.length, 0, 'nothing reaches the upstream');
    await assertHubServes();
  });

  test('the same checks hold for a body large enough to be parsed off the event loop', async () => {
    const depth = 300_000; // 600 KB: past the 256 KiB above which bodies go to a parse worker
    const deep = `{"model":"hcx-test","messages":[{"role":"user","content":${'['.repeat(depth)}${']'.repeat(depth)}}]}`;
    const deepAnswer = await post('/v1/chat/completions', deep);
    assert.equal(deepAnswer.status, 400);
    assert.equal(deepAnswer.body.error.code, 'nesting_too_deep');
    assert.match(deepAnswer.body.error.param, /^messages\[0\]\.content\[0\]/);

    const padding = 'x'.repeat(400_000);
    const huge = `{"model":"hcx-test","messages":[{"role":"user","content":"${padding}"}],"top_p":-1e400}`;
    const hugeAnswer = await post('/v1/chat/completions', huge);
    assert.equal(hugeAnswer.status, 400);
    assert.equal(hugeAnswer.body.error.code, 'invalid_number');
    assert.equal(hugeAnswer.body.error.param, 'top_p');

    const broken = await post(
      '/v1/chat/completions',
      `{"model":"hcx-test","messages":[{"content":"${padding}"}`,
    );
    assert.equal(broken.status, 400);
    assert.equal(broken.body.error.code, 'invalid_json');
    assert.equal(fake.requests.length, 0);
    await assertHubServes();
  });

  test('deep nesting under an object key is refused on embeddings too', async () => {
    const depth = 5_000;
    const body = `{"model":"embed-test","input":"x","extra":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`;
    const answer = await post('/v1/embeddings', body);
    assert.equal(answer.status, 400);
    assert.equal(answer.body.error.code, 'nesting_too_deep');
    assert.match(answer.body.error.param, /^extra\.a\.a\.a/);
    assert.equal(fake.requests.length, 0);
  });

  test('a deeply nested but real JSON schema (40 object levels) passes through untouched', async () => {
    // 40 levels of {type: object, properties: {child: …}}: 83 JSON levels with the request around it,
    // several times what OpenAI accepts for structured outputs (10 levels)
    let schema: Record<string, unknown> = { type: 'string' };
    for (let i = 0; i < 40; i++)
      schema = { type: 'object', properties: { child: schema }, required: ['child'] };
    const request = {
      model: 'hcx-test',
      messages: [{ role: 'user', content: '깊은 스키마' }],
      response_format: { type: 'json_schema', json_schema: { name: 'deep', schema } },
    };
    const answer = await post('/v1/chat/completions', JSON.stringify(request));
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.deepEqual((fake.requests[0]?.body as any)?.response_format, request.response_format);
  });

  test('1e400 (Infinity once parsed) is a 400 naming the field, wherever it is', async () => {
    const cases: [string, string, string][] = [
      [
        '/v1/chat/completions',
        '{"model":"hcx-test","messages":[{"role":"user","content":"x"}],"temperature":1e400}',
        'temperature',
      ],
      [
        '/v1/chat/completions',
        '{"model":"hcx-test","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b","weight":-1e400}]}]}',
        'messages[0].content[1].weight',
      ],
      [
        '/v1/chat/completions',
        '{"model":"hcx-test","messages":[{"role":"user","content":"x"}],"logit_bias":{"50256":1e999}}',
        'logit_bias["50256"]',
      ],
      ['/v1/embeddings', '{"model":"embed-test","input":"x","dimensions":8,"extra":[0,1e400]}', 'extra[1]'],
    ];
    for (const [path, body, param] of cases) {
      const answer = await post(path, body);
      assert.equal(answer.status, 400, `${body}: ${JSON.stringify(answer.body)}`);
      assertMatchesSchema(ERROR_RESPONSE, answer.body);
      assert.equal(answer.body.error.code, 'invalid_number', body);
      assert.equal(answer.body.error.param, param, body);
    }
    assert.equal(fake.requests.length, 0, 'no request with a number turned into null reaches the upstream');
    await assertHubServes();
  });

  test('large but finite numbers pass as they are', async () => {
    const answer = await post(
      '/v1/chat/completions',
      '{"model":"hcx-test","messages":[{"role":"user","content":"x"}],"temperature":1e-400,"seed":1.7976931348623157e308}',
    );
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal((fake.requests[0]?.body as any)?.seed, 1.7976931348623157e308);
  });
});
