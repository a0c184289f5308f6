import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CHAT_PARAMS, CLOVA_PARAMS, toClovaChatRequest } from './clova-studio/params.ts';
import { generationOptions, LOCAL_PARAMS, toChatHistory } from './local/adapter.ts';
import { KEPT_BACK, OPENAI_COMPATIBLE_PARAMS } from './openai-compatible/params.ts';
import { allowedFields } from './params.ts';

/** `request` behind a proxy that notes every top-level field read. */
function watched(request: Record<string, unknown>) {
  const read = new Set<string>();
  const proxy = new Proxy(request, {
    get(target, field, receiver) {
      if (typeof field === 'string') read.add(field);
      return Reflect.get(target, field, receiver);
    },
    has(target, field) {
      if (typeof field === 'string') read.add(field);
      return Reflect.has(target, field);
    },
  });
  return { proxy, read };
}

const everyField = {
  model: 'm',
  messages: [{ role: 'user', content: 'hi' }],
  temperature: 0.5,
  top_p: 0.9,
  top_k: 4,
  min_p: 0.1,
  repetition_penalty: 1.1,
  max_tokens: 5,
  max_completion_tokens: 4,
  stop: 'x',
  seed: 1,
  n: 1,
  tools: [{ type: 'function', function: { name: 'f' } }],
  tool_choice: 'auto',
  reasoning_effort: 'low',
  response_format: { type: 'json_schema', json_schema: { schema: {} } },
  service_tier: 'priority',
  store: true,
  metadata: {},
  user: 'u',
};

test('openai-compatible: the documented fields pass, every field kept back is not allowed', () => {
  const documented = [
    'messages',
    'model',
    'stream',
    'stream_options',
    'temperature',
    'top_p',
    'n',
    'stop',
    'max_tokens',
    'max_completion_tokens',
    'presence_penalty',
    'frequency_penalty',
    'logit_bias',
    'logprobs',
    'top_logprobs',
    'user',
    'seed',
    'tools',
    'tool_choice',
    'parallel_tool_calls',
    'functions',
    'function_call',
    'response_format',
    'reasoning_effort',
    'top_k',
    'min_p',
    'repetition_penalty',
    'chat_template_kwargs',
  ];
  for (const field of documented) assert.ok(OPENAI_COMPATIBLE_PARAMS.chat.has(field), field);
  for (const field of Object.keys(KEPT_BACK)) {
    assert.ok(!OPENAI_COMPATIBLE_PARAMS.chat.has(field), `chat passes ${field}`);
    assert.ok(!OPENAI_COMPATIBLE_PARAMS.embeddings.has(field), `embeddings pass ${field}`);
  }
  assert.deepEqual([...OPENAI_COMPATIBLE_PARAMS.embeddings].sort(), [
    'dimensions',
    'encoding_format',
    'input',
    'model',
    'user',
  ]);
});

test('allowedFields keeps only the allowed fields, in order, and never a prototype', () => {
  const request = JSON.parse('{"b":1,"__proto__":{"polluted":true},"a":2,"store":true}');
  const body = allowedFields(request, new Set(['a', 'b']));
  assert.deepEqual(Object.keys(body), ['b', 'a']);
  assert.equal(Object.getPrototypeOf(body), Object.prototype);
  assert.equal(({} as { polluted?: boolean }).polluted, undefined);
});

test('clova-studio: params are the translation map plus model, stream and stream_options', () => {
  assert.deepEqual(
    [...CLOVA_PARAMS.chat].sort(),
    [...Object.keys(CHAT_PARAMS), 'model', 'stream', 'stream_options'].sort(),
  );
  const { proxy, read } = watched(everyField);
  toClovaChatRequest(proxy, 'HCX-005');
  for (const field of read) assert.ok(CLOVA_PARAMS.chat.has(field), `the translation reads ${field}`);
});

test('local: the translation reads only the declared fields', () => {
  const { proxy, read } = watched({ ...everyField, tools: undefined, response_format: undefined });
  toChatHistory(proxy.messages);
  generationOptions(proxy, 10, 100);
  for (const field of read) assert.ok(LOCAL_PARAMS.chat.has(field), `the local adapter reads ${field}`);
  assert.ok(read.has('temperature') && read.has('stop') && read.has('tools'));
});
