import assert from 'node:assert/strict';
import { test } from 'node:test';
import { estimateEmbeddingInputTokens, estimatePromptTokens, estimateTextTokens } from './token-estimate.ts';

test('Korean counts about a token a syllable, English about one per four characters', () => {
  assert.equal(estimateTextTokens('안녕하세요'), 5);
  assert.equal(estimateTextTokens('hello world!'), 3);
  assert.equal(estimateTextTokens(''), 0);
  assert.equal(estimateTextTokens('😀'), 1, 'a surrogate pair counts once');
});

test('prompts and embedding inputs of every accepted shape', () => {
  assert.equal(estimatePromptTokens([{ role: 'user', content: '안녕' }]), 3 + 4 + 2);
  assert.equal(
    estimatePromptTokens([{ role: 'user', content: [{ type: 'text', text: 'abcd' }] }]),
    3 + 4 + 1,
  );
  assert.equal(estimatePromptTokens('not an array'), 0);
  assert.equal(estimateEmbeddingInputTokens(['ab', 'cd']), 2);
  assert.equal(estimateEmbeddingInputTokens([[1, 2, 3]]), 3);
});
