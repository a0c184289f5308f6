import assert from 'node:assert/strict';
import { test } from 'node:test';
import { findJsonLimitViolation, MAX_JSON_DEPTH } from './json-limits.mjs';

const nestedArrays = (depth: number) => JSON.parse(`${'['.repeat(depth)}${']'.repeat(depth)}`);

test('depth counts the body itself as level 1: 128 levels pass, 129 do not', () => {
  assert.equal(MAX_JSON_DEPTH, 128);
  assert.equal(findJsonLimitViolation(nestedArrays(128)), null);
  const deeper = findJsonLimitViolation(nestedArrays(129));
  assert.equal(deeper?.code, 'nesting_too_deep');
  // 128 segments of `[0]` are 384 characters: the path is cut after 200
  assert.equal(deeper?.path, `${'[0]'.repeat(128).slice(0, 200)}…`);
  assert.equal(findJsonLimitViolation({ a: { b: {} } }, 3), null);
  assert.deepEqual(findJsonLimitViolation({ a: { b: { c: {} } } }, 3), {
    code: 'nesting_too_deep',
    path: 'a.b.c',
  });
  assert.deepEqual(findJsonLimitViolation({ a: [1, [2]] }, 2), { code: 'nesting_too_deep', path: 'a[1]' });
});

test('100,000 nested arrays are refused without recursion, with a shortened path', () => {
  const body = JSON.parse(`{"messages":[{"content":${'['.repeat(100_000)}${']'.repeat(100_000)}}]}`);
  const violation = findJsonLimitViolation(body);
  assert.equal(violation?.code, 'nesting_too_deep');
  assert.ok(violation?.path.startsWith('messages[0].content[0][0][0]'), violation?.path);
  assert.ok(violation!.path.length <= 201 && violation!.path.endsWith('…'));
});

test('numbers that JSON.stringify would write as null are named by their path', () => {
  const cases: [string, string][] = [
    ['{"temperature":1e400}', 'temperature'],
    [
      '{"messages":[{"content":[{"text":"a"},{"text":"b","weight":-1e400}]}]}',
      'messages[0].content[1].weight',
    ],
    ['{"logit_bias":{"50256":1e999}}', 'logit_bias["50256"]'],
    ['{"a b":{"c-d":[0,1e309]}}', '["a b"]["c-d"][1]'],
  ];
  for (const [json, path] of cases) {
    assert.deepEqual(findJsonLimitViolation(JSON.parse(json)), { code: 'invalid_number', path }, json);
  }
  assert.deepEqual(findJsonLimitViolation(Number.POSITIVE_INFINITY), { code: 'invalid_number', path: '' });
});

test('the first violation in document order is the one reported', () => {
  const body = JSON.parse(`{"a":[1,2,1e400],"b":${'['.repeat(200)}${']'.repeat(200)},"c":-1e400}`);
  assert.deepEqual(findJsonLimitViolation(body), { code: 'invalid_number', path: 'a[2]' });
});

test('ordinary values pass: finite extremes, -0, strings, null, empty containers', () => {
  const body = JSON.parse(
    '{"max":1.7976931348623157e308,"min":5e-324,"tiny":1e-400,"neg":-0,"s":"1e400","n":null,"o":{},"l":[]}',
  );
  assert.equal(findJsonLimitViolation(body), null);
  assert.equal(findJsonLimitViolation('text'), null);
  assert.equal(findJsonLimitViolation(null), null);
});
