import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RoutableDeployment, RoutableProduct } from '../catalog/catalog-snapshot.ts';
import { type AttributeValue, hostOf, providerNameOf, setRequestAttributes } from './gen-ai-attributes.ts';
import { inputMessagesJson, MAX_MESSAGES_CHARS, MAX_PART_CHARS, MAX_PARTS } from './gen-ai-content.ts';

function deployment(adapter: string, baseUrl: string): RoutableDeployment {
  return {
    id: 'd',
    adapter,
    baseUrl,
    apiKey: null,
    upstreamModel: 'm',
    weight: 1,
    priority: 0,
    features: 0,
    maxConcurrent: 100,
    target: { deploymentId: 'd', baseUrl, apiKey: null, upstreamModel: 'm' },
  };
}

function product(supplierName: string): RoutableProduct {
  return {
    id: 'p',
    model: 'm',
    displayName: 'M',
    supplierId: 's',
    supplierName,
    modality: 'chat',
    residency: 'kr',
    contextWindow: 8192,
    createdAtSeconds: 0,
    prices: { inputMicroPer1M: 0n, outputMicroPer1M: 0n },
    fallbackModels: [],
    routingStrategy: 'weighted',
    deployments: [],
  };
}

test('gen_ai.provider.name: well-known hosts, then the supplier, per adapter', () => {
  const name = (adapter: string, baseUrl: string, supplier = 'Upstage') =>
    providerNameOf(deployment(adapter, baseUrl), product(supplier));
  assert.equal(name('openai-compatible', 'https://api.openai.com/v1'), 'openai');
  assert.equal(name('openai-compatible', 'https://api.deepseek.com'), 'deepseek');
  assert.equal(name('openai-compatible', 'https://kaihub.openai.azure.com/openai'), 'azure.ai.openai');
  assert.equal(name('openai-compatible', 'https://api.upstage.ai/v1'), 'upstage');
  assert.equal(name('openai-compatible', 'http://10.0.0.5:8000/v1', 'LG AI Research'), 'lg_ai_research');
  assert.equal(name('openai-compatible', 'http://10.0.0.5:8000/v1', '네이버 클라우드'), '네이버_클라우드');
  assert.equal(name('openai-compatible', 'http://10.0.0.5:8000/v1', '  (주) '), '주');
  assert.equal(name('openai-compatible', 'http://10.0.0.5:8000/v1', '---'), 'openai');
  assert.equal(name('clova-studio', 'https://clovastudio.stream.ntruss.com'), 'naver.clova_studio');
  assert.equal(name('local', 'local:'), 'llama.cpp');
  assert.equal(name('something-new', 'http://x'), 'something-new');
});

test('server.address and server.port from a base URL; none for an in-process model', () => {
  assert.deepEqual(hostOf('https://api.upstage.ai/v1'), { address: 'api.upstage.ai', port: 443 });
  assert.deepEqual(hostOf('http://10.0.0.5/v1'), { address: '10.0.0.5', port: 80 });
  assert.deepEqual(hostOf('http://[::1]:8000/v1'), { address: '::1', port: 8000 });
  assert.equal(hostOf('local:'), null);
  assert.equal(hostOf(''), null);
});

test('request attributes: the conventions names, only values of the expected type', () => {
  const got: Record<string, AttributeValue> = {};
  const sink = { setAttribute: (k: string, v: AttributeValue) => (got[k] = v) };
  setRequestAttributes(
    'chat',
    {
      max_tokens: 100,
      max_completion_tokens: 50,
      temperature: 0,
      top_p: '0.9',
      seed: 7,
      n: 2,
      stop: ['\n\n', 'END'],
      frequency_penalty: 0.5,
      presence_penalty: -0.5,
      response_format: { type: 'json_schema', json_schema: {} },
    },
    sink,
  );
  assert.deepEqual(got, {
    'gen_ai.request.max_tokens': 50,
    'gen_ai.request.temperature': 0,
    'gen_ai.request.seed': 7,
    'gen_ai.request.choice.count': 2,
    'gen_ai.request.stop_sequences': ['\n\n', 'END'],
    'gen_ai.request.frequency_penalty': 0.5,
    'gen_ai.request.presence_penalty': -0.5,
    'gen_ai.output.type': 'json',
  });
  const embeddings: Record<string, AttributeValue> = {};
  setRequestAttributes(
    'embeddings',
    { input: 'x', encoding_format: 'base64', dimensions: 512, temperature: 1 },
    { setAttribute: (k: string, v: AttributeValue) => (embeddings[k] = v) },
  );
  assert.deepEqual(embeddings, {
    'gen_ai.request.encoding_formats': ['base64'],
    'gen_ai.embeddings.dimension.count': 512,
  });
});

test('gen_ai.input.messages: role and typed parts, tool calls and their results, inline media left out', () => {
  const result = inputMessagesJson([
    { role: 'system', content: 'Be brief.' },
    {
      role: 'user',
      name: 'kim',
      content: [
        { type: 'text', text: '이 사진은?' },
        { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
        { type: 'image_url', image_url: { url: 'https://example.kr/a.png' } },
      ],
    },
    {
      role: 'assistant',
      content: null,
      tool_calls: [
        { id: 'call_1', type: 'function', function: { name: 'lookup', arguments: '{"q":"서울"}' } },
      ],
    },
    { role: 'tool', tool_call_id: 'call_1', content: '9.4 million' },
  ]);
  assert.ok(result);
  assert.equal(result.leftOut, 0);
  assert.deepEqual(JSON.parse(result.json), [
    { role: 'system', parts: [{ type: 'text', content: 'Be brief.' }] },
    {
      role: 'user',
      name: 'kim',
      parts: [
        { type: 'text', content: '이 사진은?' },
        { type: 'image', omitted: 'inline data' },
        { type: 'uri', modality: 'image', uri: 'https://example.kr/a.png' },
      ],
    },
    {
      role: 'assistant',
      parts: [{ type: 'tool_call', id: 'call_1', name: 'lookup', arguments: { q: '서울' } }],
    },
    { role: 'tool', parts: [{ type: 'tool_call_response', id: 'call_1', response: '9.4 million' }] },
  ]);
  assert.equal(inputMessagesJson([]), null);
  assert.equal(inputMessagesJson(undefined), null);
});

test('gen_ai.input.messages is bounded: long texts cut, many parts folded, the latest messages kept', () => {
  const long = '가'.repeat(MAX_PART_CHARS + 100);
  const one = inputMessagesJson([{ role: 'user', content: long }]);
  assert.ok(one);
  const [message] = JSON.parse(one.json);
  assert.equal(message.parts[0].content, `${'가'.repeat(MAX_PART_CHARS)}… [100 chars cut]`);

  const manyParts = inputMessagesJson([
    { role: 'user', content: Array.from({ length: 50 }, () => ({ type: 'text', text: long })) },
  ]);
  assert.ok(manyParts);
  const parts = JSON.parse(manyParts.json)[0].parts;
  assert.equal(parts.length, MAX_PARTS);
  assert.deepEqual(parts.at(-1), { type: 'omitted', parts: 50 - (MAX_PARTS - 1) });
  assert.ok(manyParts.json.length < MAX_MESSAGES_CHARS * 1.1, `${manyParts.json.length} chars`);

  const history = Array.from({ length: 200 }, (_, i) => ({
    role: 'user',
    content: `${i} ${'x'.repeat(1000)}`,
  }));
  const bounded = inputMessagesJson(history);
  assert.ok(bounded);
  assert.ok(bounded.json.length <= MAX_MESSAGES_CHARS, `${bounded.json.length} chars`);
  const kept = JSON.parse(bounded.json) as { parts: { content: string }[] }[];
  assert.equal(kept.length + bounded.leftOut, 200);
  assert.ok(bounded.leftOut > 0);
  assert.match(kept.at(-1)!.parts[0]!.content, /^199 /, 'the latest message is kept');
});
