import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createIdGenerator, newSpanId, newTraceId } from './trace-ids.mjs';

test('trace and span ids: lowercase hex of 16 and 8 bytes, not all zeros, not repeated', () => {
  const traces = new Set<string>();
  const spans = new Set<string>();
  // several pools' worth, so that refills are crossed
  for (let i = 0; i < 2000; i++) {
    const t = newTraceId();
    const s = newSpanId();
    assert.match(t, /^[0-9a-f]{32}$/);
    assert.match(s, /^[0-9a-f]{16}$/);
    assert.notEqual(t, '0'.repeat(32));
    assert.notEqual(s, '0'.repeat(16));
    traces.add(t);
    spans.add(s);
  }
  assert.equal(traces.size, 2000);
  assert.equal(spans.size, 2000);
});

test('an all-zero draw is invalid (W3C Trace Context) and drawn again', () => {
  let fills = 0;
  // the first pool is all zeros, the next ones count up: the generator must skip to them
  const ids = createIdGenerator((buffer) => {
    fills++;
    buffer.fill(fills === 1 ? 0 : fills);
  });
  const traceId = ids.traceId();
  assert.equal(traceId, '02'.repeat(16));
  assert.equal(fills, 2);
  const zeros = createIdGenerator((buffer) => buffer.fill(0).writeUInt8(7, buffer.length - 1));
  // every draw from this pool is zeros until the last byte: the last span id of the pool is the first valid
  assert.equal(zeros.spanId(), '0000000000000007');
});
