import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseSse } from './sse.ts';

async function collect(chunks: (string | Uint8Array)[]) {
  const out = [];
  async function* source() {
    for (const c of chunks) yield c;
  }
  for await (const e of parseSse(source())) out.push(e);
  return out;
}

test('events split at any point, with CRLF, comments and multi-line data', async () => {
  const text =
    ': keep-alive\r\ndata: {"a":1}\r\n\r\nevent: token\ndata: line1\ndata: line2\n\ndata: [DONE]\n\n';
  for (let cut = 0; cut < text.length; cut++) {
    const events = await collect([text.slice(0, cut), text.slice(cut)]);
    assert.deepEqual(events, [
      { event: 'message', data: '{"a":1}' },
      { event: 'token', data: 'line1\nline2' },
      { event: 'message', data: '[DONE]' },
    ]);
  }
});

test('a multi-byte character split across reads survives', async () => {
  const bytes = new TextEncoder().encode('data: 안녕\n\n');
  const events = await collect([bytes.slice(0, 8), bytes.slice(8)]);
  assert.deepEqual(events, [{ event: 'message', data: '안녕' }]);
});

test('CR-only line ends and a last event without its blank line', async () => {
  assert.deepEqual(await collect(['data: a\r\rdata: b']), [
    { event: 'message', data: 'a' },
    { event: 'message', data: 'b' },
  ]);
});
