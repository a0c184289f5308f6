import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type FakeClova, startFakeClova } from '../fakes/clova-studio-upstream.ts';
import { type FakeOpenAI, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import { type Catalog, seedCatalog, startTestHub, type TestHub } from '../helpers/hub.ts';
import { postV1, usageEvent } from '../helpers/v1.ts';

/**
 * Adapters declare what they can express (providers/features.ts): a request goes to a deployment that
 * can, and is refused with a 400 naming the parameter only when none can — never sent to one that
 * cannot, to fail there and count against its health.
 */
describe('requests go to deployments that can express them', () => {
  let fake: FakeOpenAI;
  let clova: FakeClova;
  let t: TestHub;
  let catalog: Catalog;
  before(async () => {
    fake = await startFakeOpenAI({ apiKey: 'upstream-secret' });
    clova = await startFakeClova({ apiKey: 'nv-test' });
    t = await startTestHub();
    catalog = await seedCatalog(t, fake.url);
  });
  after(async () => {
    await t?.close();
    await fake?.close();
    await clova?.close();
  });

  async function product(model: string, deployments: Record<string, unknown>[]) {
    const p = await t.admin('POST', '/products', {
      supplierId: catalog.supplierId,
      model,
      displayName: model,
      purposes: ['chat'],
      modality: 'multimodal',
      contextWindow: 8192,
      priceInputPer1M: '1000',
      priceOutputPer1M: '3000',
      residency: 'domestic',
    });
    assert.equal(p.status, 201, JSON.stringify(p.body));
    const ids: string[] = [];
    for (const d of deployments) {
      const created = await t.admin('POST', '/deployments', { productId: p.body.id, ...d });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      ids.push(created.body.id);
    }
    return ids;
  }

  const tool = {
    type: 'function',
    function: {
      name: 'weather',
      description: 'weather in a city',
      parameters: { type: 'object', properties: {} },
    },
  };
  const hello = [{ role: 'user', content: '안녕하세요' }];

  test('tools never go to a peer that cannot call tools, which is never tried and keeps its health', async () => {
    // a local model (no tools) and an OpenAI-compatible server, equal weight and priority
    const [local, remote] = await product('mixed-tools', [
      { adapter: 'local', baseUrl: 'local:', upstreamModel: 'not-loaded.gguf' },
      {
        adapter: 'openai-compatible',
        baseUrl: fake.url,
        apiKey: 'upstream-secret',
        upstreamModel: 'fake-chat',
      },
    ]);
    for (let i = 0; i < 12; i++) {
      const answer = await postV1(t, catalog.key, '/chat/completions', {
        model: 'mixed-tools',
        messages: hello,
        tools: [tool],
      });
      assert.equal(answer.status, 200, answer.text);
      const event = await usageEvent(t, answer.requestId);
      assert.equal(event.deploymentId, remote);
      assert.equal(event.attempts.length, 1, 'no attempt on the local deployment');
    }
    const health = (await t.admin('GET', `/deployments/${local}`)).body.health;
    assert.equal(health.consecutiveFailures, 0);
  });

  test('when no deployment can express a request: a 400 naming the parameter, no upstream call, no health verdict', async () => {
    const [clovaOnly] = await product('clova-only', [
      { adapter: 'clova-studio', baseUrl: clova.url, apiKey: 'nv-test', upstreamModel: 'HCX-DASH-002' },
    ]);
    const before = clova.requests.length;
    for (const [extra, param] of [
      [{ n: 2 }, 'n'],
      [{ response_format: { type: 'json_object' } }, 'response_format'],
      [{ logprobs: true }, 'logprobs'],
      [
        {
          messages: [
            {
              role: 'user',
              content: [{ type: 'image_url', image_url: { url: 'https://example.com/a.png' } }],
            },
          ],
        },
        'messages',
      ],
    ] as const) {
      const answer = await postV1(t, catalog.key, '/chat/completions', {
        model: 'clova-only',
        messages: hello,
        ...extra,
      });
      assert.equal(answer.status, 400, `${param}: ${answer.text}`);
      assert.equal(answer.body.error.code, 'unsupported_parameter');
      assert.equal(answer.body.error.param, param);
      assert.match(answer.body.error.message, /clova-only/);
    }
    assert.equal(clova.requests.length, before, 'nothing was sent upstream');
    assert.equal((await t.admin('GET', `/deployments/${clovaOnly}`)).body.health.consecutiveFailures, 0);
    // what CLOVA can do still goes there
    const withTools = await postV1(t, catalog.key, '/chat/completions', {
      model: 'clova-only',
      messages: hello,
      tools: [tool],
    });
    assert.equal(withTools.status, 200, withTools.text);
  });
});
