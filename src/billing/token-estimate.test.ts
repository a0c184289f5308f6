import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  chunkQuarterTokens,
  estimateCompletionTokens,
  estimateEmbeddingInputTokens,
  estimatePromptTokens,
  estimateTextTokens,
  textQuarterTokens,
  tokensFromQuarters,
} from './token-estimate.ts';

test('Korean counts about a token a syllable, English about one per four characters', () => {
  assert.equal(estimateTextTokens('안녕하세요'), 5);
  assert.equal(estimateTextTokens('hello world!'), 3);
  assert.equal(estimateTextTokens(''), 0);
  assert.equal(estimateTextTokens('😀'), 1, 'a surrogate pair counts once');
  assert.equal(textQuarterTokens('ab안'), 6);
});

test('long ASCII text takes the fast path and counts the same', () => {
  assert.equal(estimateTextTokens('a'.repeat(1000)), 250);
  assert.equal(estimateTextTokens(`${'a'.repeat(999)}한`), 251, '(999 + 4) / 4, rounded up');
  assert.equal(
    estimateTextTokens(`${'a'.repeat(999)}\ud800`),
    250,
    'a lone high surrogate counts 0 either way',
  );
  assert.equal(
    estimateTextTokens(`${'a'.repeat(100)}한${'a'.repeat(500)}`),
    151,
    'first, middle and last characters ASCII, one Korean inside: (600 + 4) / 4',
  );
});

test('a prompt: message framing, names, every kind of content part', () => {
  assert.equal(estimatePromptTokens({ messages: [{ role: 'user', content: '안녕' }] }), 3 + 4 + 2);
  assert.equal(
    estimatePromptTokens({
      messages: [{ role: 'user', name: 'kim', content: [{ type: 'text', text: 'abcd' }] }],
    }),
    3 + 4 + 1 + (1 + 1),
    'a name: its text plus 1',
  );
  const image = (url: string, detail?: string) => ({ type: 'image_url', image_url: { url, detail } });
  assert.equal(
    estimatePromptTokens({
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'abcd' },
            image('https://example.com/a.png', 'low'),
            image('https://example.com/b.png'),
          ],
        },
      ],
    }),
    3 + 4 + 1 + 85 + 1445,
    'low detail 85; a remote image of unknown size the most an image can cost',
  );
  assert.equal(
    estimatePromptTokens({
      messages: [
        {
          role: 'user',
          content: [{ type: 'input_audio', input_audio: { data: 'A'.repeat(40_000), format: 'mp3' } }],
        },
        { role: 'assistant', content: [{ type: 'refusal', refusal: 'no' }] },
        {
          role: 'user',
          content: [{ type: 'file', file: { filename: 'a.pdf', file_data: 'A'.repeat(4000) } }],
        },
        { role: 'user', content: [{ type: 'future_part', x: 'abcdefgh' }] },
      ],
    }),
    3 + (4 + 300) + (4 + 1) + (4 + 750 + 2) + (4 + 10),
    'audio: 30,000 bytes as 8 kbit/s is 30 s; a file: 3,000 bytes as text; an unknown part: its 37 characters of JSON',
  );
  assert.equal(estimatePromptTokens('not a request'), 0);
  assert.equal(estimatePromptTokens({ messages: 'no' }), 3);
});

test('tool calls, tool results and the definitions the upstream puts in its prompt', () => {
  const tools = [
    {
      type: 'function',
      function: {
        name: 'get_weather',
        description: '오늘 날씨',
        parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
      },
    },
  ];
  const responseFormat = {
    type: 'json_schema',
    json_schema: { name: 'answer', schema: { type: 'object', properties: { ok: { type: 'boolean' } } } },
  };
  const body = {
    messages: [
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"서울"}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'call_1', content: '맑음' },
    ],
    tools,
    response_format: responseFormat,
  };
  // assistant: 4 + 3 framing + get_weather (11 → 3) + {"city":"서울"} (11 + 2 × 4 = 19 quarters → 5) = 15
  // tool: 4 + 맑음 (2) + call_1 (6 → 2) = 8
  // tools as JSON text: 164 ASCII + 4 Korean characters = 180 quarters → 45
  // response_format as JSON text: 120 ASCII characters → 30
  assert.equal(estimatePromptTokens(body), 3 + 15 + 8 + 45 + 30);
  assert.equal(
    estimatePromptTokens({
      messages: [{ role: 'assistant', function_call: { name: 'f', arguments: '{}' } }],
      functions: [{ name: 'f' }],
    }),
    3 + (4 + 1 + 1) + 4,
    'legacy function_call and functions ([{"name":"f"}] is 14 characters)',
  );
});

test('a completed answer counts every choice and everything generated', () => {
  const completion = {
    choices: [
      {
        message: {
          content: 'abcd',
          reasoning_content: '생각',
          refusal: null,
          tool_calls: [{ function: { name: 'f', arguments: '{}' } }],
        },
      },
      { message: { content: null, refusal: '거절', reasoning: 'ab' } },
      { message: { function_call: { name: 'g', arguments: '{"a":1}' }, audio: { transcript: 'hi' } } },
    ],
  };
  // quarters: 4 + 8 + (1 + 2) | 8 + 2 | (1 + 7) + 2 = 35 → 9
  assert.equal(estimateCompletionTokens(completion), 9);
  assert.equal(estimateCompletionTokens({ choices: [] }), 0);
  assert.equal(estimateCompletionTokens(null), 0);
});

test('streamed chunks summed in quarters equal the completed answer', () => {
  const chunks = [
    { choices: [{ index: 0, delta: { role: 'assistant', content: '' } }] },
    {
      choices: [
        { index: 0, delta: { reasoning_content: '생' } },
        { index: 1, delta: { content: 'ab' } },
      ],
    },
    {
      choices: [
        { index: 0, delta: { reasoning_content: '각' } },
        { index: 1, delta: { content: 'cd' } },
      ],
    },
    {
      choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { name: 'f', arguments: '' } }] } }],
    },
    { choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '{}' } }] } }] },
    { choices: [{ index: 1, delta: { refusal: '거' } }] },
    { choices: [], usage: { prompt_tokens: 1 } },
  ];
  let quarters = 0;
  for (const chunk of chunks) quarters += chunkQuarterTokens(chunk);
  assert.equal(quarters, 8 + 4 + 3 + 4);
  const completed = {
    choices: [
      { message: { reasoning_content: '생각', tool_calls: [{ function: { name: 'f', arguments: '{}' } }] } },
      { message: { content: 'abcd', refusal: '거' } },
    ],
  };
  assert.equal(tokensFromQuarters(quarters), estimateCompletionTokens(completed));
  assert.equal(tokensFromQuarters(quarters), 5);
  assert.equal(chunkQuarterTokens({ choices: 'broken' }), 0);
});

test('embedding inputs of every accepted shape', () => {
  assert.equal(estimateEmbeddingInputTokens('안녕'), 2);
  assert.equal(estimateEmbeddingInputTokens(['ab', 'cd']), 2);
  assert.equal(estimateEmbeddingInputTokens([[1, 2, 3]]), 3);
  assert.equal(estimateEmbeddingInputTokens([1, 2]), 2);
  assert.equal(estimateEmbeddingInputTokens(undefined), 0);
});
