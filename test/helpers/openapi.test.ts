import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  assertMatchesSchema,
  CHAT_COMPLETION_CHUNK,
  CHAT_COMPLETION_RESPONSE,
  EMBEDDING_RESPONSE,
  ERROR_RESPONSE,
  hasSchema,
  MODEL,
  MODELS_LIST_RESPONSE,
  schemaErrors,
} from './openapi.ts';

const completion = () => ({
  id: 'chatcmpl-123',
  object: 'chat.completion',
  created: 1741570283,
  model: 'gpt-4o-mini',
  choices: [
    {
      index: 0,
      message: { role: 'assistant', content: 'Hello!', refusal: null, annotations: [] },
      logprobs: null,
      finish_reason: 'stop',
    },
  ],
  usage: {
    prompt_tokens: 9,
    completion_tokens: 2,
    total_tokens: 11,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0 },
  },
  service_tier: 'default',
  system_fingerprint: 'fp_1',
});

const chunk = (extra: Record<string, unknown> = {}) => ({
  id: 'chatcmpl-123',
  object: 'chat.completion.chunk',
  created: 1694268190,
  model: 'gpt-4o-mini',
  choices: [{ index: 0, delta: { content: 'Hi' }, logprobs: null, finish_reason: null }],
  ...extra,
});

describe('openapi helper', () => {
  test('the exported schema names exist in the spec', () => {
    for (const name of [
      CHAT_COMPLETION_RESPONSE,
      CHAT_COMPLETION_CHUNK,
      EMBEDDING_RESPONSE,
      MODELS_LIST_RESPONSE,
      MODEL,
      ERROR_RESPONSE,
    ]) {
      assert.ok(hasSchema(name), name);
    }
  });

  test('valid bodies pass', () => {
    assertMatchesSchema(CHAT_COMPLETION_RESPONSE, completion());
    assertMatchesSchema(CHAT_COMPLETION_CHUNK, chunk());
    assertMatchesSchema(CHAT_COMPLETION_CHUNK, chunk({ usage: null }));
    assertMatchesSchema(
      CHAT_COMPLETION_CHUNK,
      chunk({ choices: [], usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 } }),
    );
    assertMatchesSchema(EMBEDDING_RESPONSE, {
      object: 'list',
      data: [{ object: 'embedding', index: 0, embedding: [0.1, -0.2] }],
      model: 'text-embedding-3-small',
      usage: { prompt_tokens: 2, total_tokens: 2 },
    });
    assertMatchesSchema(MODELS_LIST_RESPONSE, {
      object: 'list',
      data: [{ id: 'gpt-4o', object: 'model', created: 1686935002, owned_by: 'openai' }],
    });
    assertMatchesSchema(ERROR_RESPONSE, {
      error: { message: 'bad key', type: 'invalid_request_error', param: null, code: 'invalid_api_key' },
    });
  });

  test('a body without choices fails with a readable message', () => {
    const { choices: _, ...broken } = completion();
    assert.throws(
      () => assertMatchesSchema(CHAT_COMPLETION_RESPONSE, broken),
      (err: unknown) => {
        assert.ok(err instanceof assert.AssertionError);
        assert.match(err.message, /does not match OpenAI schema CreateChatCompletionResponse/);
        assert.match(err.message, /\(root\) must have required property 'choices'/);
        assert.match(err.message, /body: \{"id":"chatcmpl-123"/);
        return true;
      },
    );
  });

  test('nested violations name the offending path', () => {
    const body = completion();
    (body.choices[0] as Record<string, unknown>).finish_reason = 'done';
    (body.usage as Record<string, unknown>).total_tokens = '11';
    const errors = schemaErrors(CHAT_COMPLETION_RESPONSE, body);
    assert.ok(
      errors.some((e) => e.startsWith('/choices/0/finish_reason must be equal to one of the allowed values')),
    );
    assert.ok(errors.some((e) => e.startsWith('/usage/total_tokens must be integer')));
  });

  test('OpenAPI nullable on a $ref admits null but still checks the referenced schema', () => {
    assert.deepEqual(schemaErrors(CHAT_COMPLETION_CHUNK, chunk({ usage: null })), []);
    const errors = schemaErrors(CHAT_COMPLETION_CHUNK, chunk({ usage: { prompt_tokens: 1 } }));
    assert.ok(errors.some((e) => e.includes("/usage must have required property 'completion_tokens'")));
  });

  test('OpenAPI nullable on a typed schema admits null and nothing else', () => {
    const ok = chunk({ choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: null }] });
    assert.deepEqual(schemaErrors(CHAT_COMPLETION_CHUNK, ok), []);
    const bad = chunk({ choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'nope' }] });
    assert.notDeepEqual(schemaErrors(CHAT_COMPLETION_CHUNK, bad), []);
  });

  test('an unknown schema name is an error that suggests near names', () => {
    assert.throws(
      () => assertMatchesSchema('ChatCompletionStream', {}),
      /no schema 'ChatCompletionStream'.*similar: /,
    );
  });
});
