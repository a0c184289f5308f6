import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UpstreamError } from './adapter.ts';
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

const MiB = 1024 * 1024;

/**
 * A lazy source of `total` bytes in `chunkBytes` pieces, each a fresh buffer (as undici hands them
 * out), made by `piece(i)`. Counts what the parser pulled, and gives up with an error past `deadline`
 * so a parser that stalls (quadratic rescans) fails the test in bounded time instead of hanging it.
 */
function source(total: number, chunkBytes: number, piece: (i: number) => Buffer, deadlineMs: number) {
  const stats = { pulledBytes: 0 };
  const deadline = performance.now() + deadlineMs;
  async function* chunks() {
    for (let i = 0; stats.pulledBytes < total; i++) {
      if (performance.now() > deadline)
        throw new Error(`parser too slow: only ${stats.pulledBytes} bytes pulled in ${deadlineMs} ms`);
      const chunk = piece(i).subarray(0, Math.min(chunkBytes, total - stats.pulledBytes));
      stats.pulledBytes += chunk.length;
      yield chunk;
    }
  }
  return { stats, chunks: chunks() };
}

const isOverLong = (kind: 'line' | 'event') => (error: unknown) =>
  UpstreamError.isInstance(error) &&
  error.kind === 'protocol' &&
  new RegExp(`over-long SSE ${kind}`).test(error.message);

test('a 10 MB line without a line end ends at the cap, quickly, without growing memory', async () => {
  const { stats, chunks } = source(10 * 1024 * 1024, 4096, () => Buffer.alloc(4096, 0x61), 5000);
  const before = process.memoryUsage();
  const started = performance.now();
  await assert.rejects(async () => {
    for await (const _ of parseSse(chunks)) assert.fail('no event can come out of one endless line');
  }, isOverLong('line'));
  const elapsedMs = performance.now() - started;
  const after = process.memoryUsage();
  // stopped right after the 1 MiB default cap: the rest of the 10 MB was never read
  assert.ok(stats.pulledBytes <= MiB + 4096, `pulled ${stats.pulledBytes} bytes`);
  assert.ok(elapsedMs < 1000, `took ${elapsedMs.toFixed(0)} ms`);
  const grownBytes = after.heapUsed + after.arrayBuffers - (before.heapUsed + before.arrayBuffers);
  assert.ok(grownBytes < 16 * MiB, `memory grew by ${(grownBytes / MiB).toFixed(1)} MiB`);
});

test('data lines without a blank line end the stream once the event passes the cap', async () => {
  const line = Buffer.from(`data: ${'x'.repeat(1017)}\n`); // 1 KiB a line
  const { stats, chunks } = source(10 * 1024 * 1024, line.length, () => Buffer.from(line), 5000);
  await assert.rejects(async () => {
    for await (const _ of parseSse(chunks)) assert.fail('the event never ends');
  }, isOverLong('event'));
  // the cap counts data values (1,017 of each 1,024 bytes here)
  assert.ok(stats.pulledBytes <= (MiB * line.length) / 1017 + 2 * line.length, `pulled ${stats.pulledBytes}`);
});

test('the cap is settable, and events under it pass untouched', async () => {
  const small = `data: ${'a'.repeat(50)}\n\n`;
  async function* twoEvents() {
    yield small;
    yield `data: ${'b'.repeat(40)}\ndata: ${'c'.repeat(40)}\n\n`;
  }
  const events = [];
  for await (const e of parseSse(twoEvents(), { maxEventBytes: 100 })) events.push(e.data);
  assert.deepEqual(events, ['a'.repeat(50), `${'b'.repeat(40)}\n${'c'.repeat(40)}`]);

  async function* tooLong() {
    yield `data: ${'b'.repeat(60)}\ndata: ${'c'.repeat(60)}\n\n`;
  }
  await assert.rejects(async () => {
    for await (const _ of parseSse(tooLong(), { maxEventBytes: 100 })) assert.fail('over the cap');
  }, isOverLong('event'));
});

test('parse time is linear: a long line in many small reads costs what short events cost', async () => {
  const total = 2 * MiB;
  const chunkBytes = 512;
  const options = { maxEventBytes: 64 * MiB };
  // the same bytes and the same reads: one line of 2 MiB, or 2,048 events of 1 KiB
  const longLine = Buffer.alloc(total, 0x61);
  longLine.write('data: ');
  longLine.write('\n\n', total - 2);
  const shortEvents = Buffer.alloc(total);
  const event = Buffer.from(`data: ${'a'.repeat(1016)}\n\n`);
  for (let at = 0; at < total; at += event.length) event.copy(shortEvents, at);
  const run = async (bytes: Buffer) => {
    const { chunks } = source(
      total,
      chunkBytes,
      (i) => Buffer.from(bytes.subarray(i * chunkBytes, (i + 1) * chunkBytes)),
      5000,
    );
    const started = performance.now();
    let count = 0;
    for await (const _ of parseSse(chunks, options)) count++;
    return { ms: performance.now() - started, count };
  };
  const best = async (bytes: Buffer) => {
    let ms = Number.POSITIVE_INFINITY;
    let count = 0;
    for (let i = 0; i < 5; i++) {
      const r = await run(bytes);
      ms = Math.min(ms, r.ms);
      count = r.count;
    }
    return { ms, count };
  };
  const events = await best(shortEvents);
  const line = await best(longLine);
  assert.equal(events.count, total / event.length);
  assert.equal(line.count, 1);
  // quadratic rescanning makes this ratio grow with the line (hundreds at 2 MiB); linear stays near 1
  const ratio = line.ms / events.ms;
  assert.ok(ratio < 5, `long line ${line.ms.toFixed(1)} ms vs short events ${events.ms.toFixed(1)} ms`);
});
