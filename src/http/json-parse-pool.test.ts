import assert from 'node:assert/strict';
import { test } from 'node:test';
import { JsonBodyFailure } from './json-limits.mjs';
import { JsonParsePool } from './json-parse-pool.ts';

/** A body as the socket hands it over: 64 KB chunks, each owning its memory. */
function socketChunks(text: string): Buffer[] {
  const bytes = Buffer.from(text);
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 65_536) chunks.push(Buffer.from(bytes.subarray(i, i + 65_536)));
  return chunks;
}

function conversation(messages: number, tag: string): string {
  const list = Array.from({ length: messages }, (_, i) => ({
    role: i % 2 ? 'assistant' : 'user',
    content: `${tag} ${i}번째 메시지: 대한민국의 초거대 AI 생태계`,
  }));
  return JSON.stringify({ model: tag, messages: list, temperature: 0.2 });
}

test('a large body comes back equal, in pieces, with event-loop turns between them', async () => {
  const pool = new JsonParsePool(1, 16 * 1024);
  const text = conversation(20_000, 'm');
  let turns = 0;
  let counting = true;
  const count = () => {
    turns++;
    if (counting) setImmediate(count);
  };
  setImmediate(count);
  const result = await pool.parse(socketChunks(text), 128);
  counting = false;
  assert.equal(JSON.stringify(result), text);
  // 20,000 messages of ≈ 300 weight in pieces of 16 K: ≈ 370 pieces, one a turn
  assert.ok(turns > 100, `${turns} event-loop turns while the body came back`);
});

test('bodies parsed at once come back to their own callers', async () => {
  const pool = new JsonParsePool(2, 8 * 1024);
  const texts = ['a', 'b', 'c', 'd', 'e'].map((tag, i) => conversation(2_000 + i * 500, tag));
  const results = await Promise.all(texts.map((text) => pool.parse(socketChunks(text), 128)));
  for (const [i, result] of results.entries()) assert.equal(JSON.stringify(result), texts[i]);
});

test('what is wrong with a body is reported as a JsonBodyFailure naming it', async () => {
  const pool = new JsonParsePool(1);
  const padding = 'x'.repeat(300_000);
  const cases: [string, string, string | null][] = [
    [`{"a":"${padding}","b":[1,2,1e400]}`, 'invalid_number', 'b[2]'],
    [`{"a":"${padding}","b":${'['.repeat(200)}${']'.repeat(200)}}`, 'nesting_too_deep', null],
    [`{"a":"${padding}"`, 'invalid_json', null],
    [`["${padding}"]`, 'invalid_json', null],
  ];
  for (const [text, code, path] of cases) {
    const result = await pool.parse(socketChunks(text), 128);
    assert.ok(result instanceof JsonBodyFailure, code);
    assert.equal(result.code, code);
    if (path) assert.equal(result.path, path);
  }
  const after = await pool.parse(socketChunks(`{"ok":"${padding}"}`), 128);
  assert.equal((after as { ok: string }).ok, padding, 'the worker still serves after refusing bodies');
});

test('chunks that own their memory move to the worker; a shared one is copied', async () => {
  const pool = new JsonParsePool(1);
  const owned = socketChunks(conversation(3_000, 'o'));
  await pool.parse(owned, 128);
  assert.ok(
    owned.every((c) => c.byteLength === 0),
    'detached: no copy was made',
  );
  // a view into a larger buffer (the first chunk of a request shares its read with the headers)
  const body = Buffer.from(`{"s":"${'y'.repeat(100)}"}`.padEnd(200, ' '));
  const view = Buffer.concat([Buffer.from('POST / HTTP/1.1\r\n\r\n'), body]).subarray(19);
  const result = await pool.parse([view], 128);
  assert.equal((result as { s: string }).s, 'y'.repeat(100));
  assert.equal(view.byteLength, 200, 'left attached: it was copied');
});
