import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { UpstreamTarget } from './adapter.ts';
import { ClovaStudioAdapter } from './clova-studio/adapter.ts';
import { ALL_FEATURES, chatRequestFeatures, FEATURE_INFO, Feature, featureNames } from './features.ts';
import { LocalAdapter } from './local/adapter.ts';
import { OpenAICompatibleAdapter } from './openai-compatible/adapter.ts';

const messages = [{ role: 'user', content: '안녕' }];
const tool = { type: 'function', function: { name: 'now', parameters: { type: 'object' } } };

test('a plain text chat needs nothing', () => {
  assert.equal(chatRequestFeatures({ model: 'm', messages }), 0);
  assert.equal(chatRequestFeatures({ model: 'm', messages, n: 1, temperature: 0.2, stream: true }), 0);
  assert.equal(
    chatRequestFeatures({ messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }] }),
    0,
  );
});

test('each feature is read from the field that asks for it', () => {
  const cases: [Record<string, unknown>, number][] = [
    [{ messages, n: 2 }, Feature.multipleChoices],
    [{ messages, tools: [tool] }, Feature.tools],
    [{ messages, functions: [tool.function] }, Feature.tools],
    [{ messages, response_format: { type: 'json_object' } }, Feature.jsonObject],
    [{ messages, response_format: { type: 'json_schema', json_schema: { name: 'x' } } }, Feature.jsonSchema],
    [{ messages, logprobs: true }, Feature.logprobs],
    [{ messages, top_logprobs: 3 }, Feature.logprobs],
    [
      {
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: '이게 뭐야?' },
              { type: 'image_url', image_url: { url: 'data:x' } },
            ],
          },
        ],
      },
      Feature.vision,
    ],
    [
      {
        messages: [
          { role: 'user', content: [{ type: 'input_audio', input_audio: { data: '', format: 'wav' } }] },
        ],
      },
      Feature.audioInput,
    ],
  ];
  for (const [body, bits] of cases) assert.equal(chatRequestFeatures(body), bits, JSON.stringify(body));
});

test('fields that ask for nothing: empty tools, text format, logprobs off, a tool choice alone', () => {
  assert.equal(chatRequestFeatures({ messages, tools: [], functions: [] }), 0);
  assert.equal(chatRequestFeatures({ messages, response_format: { type: 'text' } }), 0);
  assert.equal(chatRequestFeatures({ messages, logprobs: false, top_logprobs: 0 }), 0);
  assert.equal(chatRequestFeatures({ messages, tool_choice: 'none', parallel_tool_calls: false }), 0);
});

test('several features add up, over every message and part', () => {
  const body = {
    n: 3,
    tools: [tool],
    response_format: { type: 'json_schema' },
    messages: [
      { role: 'system', content: 'be brief' },
      { role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://x/a.png' } }] },
      { role: 'assistant', content: null, tool_calls: [] },
      { role: 'user', content: [{ type: 'input_audio', input_audio: {} }] },
    ],
  };
  const bits = chatRequestFeatures(body);
  assert.deepEqual(featureNames(bits), ['multipleChoices', 'tools', 'jsonSchema', 'vision', 'audioInput']);
});

test('malformed shapes (validated elsewhere) never throw here', () => {
  const odd = [
    { messages: null },
    { messages: [null, 5, 'x', { content: [null, 7, { type: 1 }] }] },
    { response_format: 'json_object', tools: 'all', n: '2', logprobs: 'true' },
    {},
  ];
  for (const body of odd) assert.equal(chatRequestFeatures(body as Record<string, unknown>), 0);
});

test('every feature has its own bit, its info, and ALL_FEATURES holds them all', () => {
  const bits = Object.values(Feature);
  assert.equal(new Set(bits).size, bits.length);
  for (const bit of bits) assert.equal(bit & (bit - 1), 0, 'one bit each');
  assert.equal(
    ALL_FEATURES,
    bits.reduce((all, bit) => all | bit, 0),
  );
  assert.deepEqual(Object.keys(FEATURE_INFO).sort(), Object.keys(Feature).sort());
  assert.deepEqual(featureNames(0), []);
  assert.deepEqual(featureNames(ALL_FEATURES), Object.keys(Feature));
});

const target = (upstreamModel: string): UpstreamTarget => ({
  deploymentId: 'd',
  baseUrl: 'https://clovastudio.stream.ntruss.com',
  apiKey: null,
  upstreamModel,
});

test('adapters declare what their protocol and model can express', () => {
  const clova = new ClovaStudioAdapter({} as never);
  // CLOVA Studio v3: tools everywhere, structured outputs on HCX-007 only, images on HCX-005 only
  assert.deepEqual(featureNames(clova.features(target('HCX-005'))), ['tools', 'vision']);
  assert.deepEqual(featureNames(clova.features(target('HCX-007'))), ['tools', 'jsonSchema']);
  assert.deepEqual(featureNames(clova.features(target('HCX-DASH-002'))), ['tools']);
  assert.equal(new OpenAICompatibleAdapter({} as never).features(), ALL_FEATURES);
  assert.equal(new LocalAdapter({ modelsDir: '.', threads: 1, parallel: 1 }).features(), 0);
});
