import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_TOKEN_COUNT, usageProblem } from './usage-check.ts';

const chat = { contextWindow: 8192, promptContexts: 1, choices: 1, maxCompletionTokens: null };

test('plausible counts pass without a note', () => {
  assert.equal(usageProblem({ promptTokens: 100, completionTokens: 50 }, chat), null);
  assert.equal(usageProblem({ promptTokens: 8192, completionTokens: 0 }, chat), null);
  assert.equal(usageProblem({ promptTokens: 0, completionTokens: 0 }, chat), null);
});

test('counts that are not counts are refused: huge, negative, fractional, infinite', () => {
  for (const [p, c] of [
    [1e300, 5],
    [3e9, 1],
    [-3, 2],
    [2.5, 1],
    [Number.POSITIVE_INFINITY, 1],
    [10, -1],
    [MAX_TOKEN_COUNT + 1, 0],
  ]) {
    assert.match(
      usageProblem({ promptTokens: p!, completionTokens: c! }, chat) ?? '',
      /not a token count/,
      `${p}, ${c}`,
    );
  }
});

test('a prompt beyond the context window, or an answer beyond max_tokens × n, is implausible', () => {
  assert.match(usageProblem({ promptTokens: 8193, completionTokens: 1 }, chat)!, /context window/);
  const asked = { ...chat, choices: 2, maxCompletionTokens: 100 };
  assert.equal(usageProblem({ promptTokens: 10, completionTokens: 200 }, asked), null);
  assert.match(
    usageProblem({ promptTokens: 10, completionTokens: 201 }, asked)!,
    /exceed what the request allows/,
  );
});

test('an embeddings batch may fill one window per input, and generates nothing', () => {
  const batch = { contextWindow: 512, promptContexts: 3, choices: 0, maxCompletionTokens: 0 };
  assert.equal(usageProblem({ promptTokens: 1536, completionTokens: 0 }, batch), null);
  assert.match(usageProblem({ promptTokens: 1537, completionTokens: 0 }, batch)!, /context window/);
  assert.match(usageProblem({ promptTokens: 10, completionTokens: 1 }, batch)!, /exceed/);
});
