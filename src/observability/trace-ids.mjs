// W3C trace and span ids (random, never all zeros), for the call tracer on the event loop and the span
// exporter's thread alike. Plain JavaScript, so the exporter's thread loads it without the TypeScript
// loader. Random bytes come from the operating system a few kilobytes at a time: one system call per
// couple of hundred calls instead of one per id, and no `Math.random` (which is predictable).
import { randomFillSync } from 'node:crypto';

const POOL_BYTES = 4096;
const ZERO_TRACE_ID = '0'.repeat(32);
const ZERO_SPAN_ID = '0'.repeat(16);

/**
 * An id generator reading from `fill` (which fills the buffer it is given with random bytes); tests
 * give their own, the hub the default below.
 */
export function createIdGenerator(fill = randomFillSync) {
  const pool = Buffer.allocUnsafe(POOL_BYTES);
  let offset = POOL_BYTES;
  function take(bytes) {
    if (offset + bytes > POOL_BYTES) {
      fill(pool);
      offset = 0;
    }
    const id = pool.toString('hex', offset, offset + bytes);
    offset += bytes;
    return id;
  }
  return {
    // an all-zero id is invalid (W3C Trace Context): drawn again, as improbable as that is
    traceId() {
      let id = take(16);
      while (id === ZERO_TRACE_ID) id = take(16);
      return id;
    },
    spanId() {
      let id = take(8);
      while (id === ZERO_SPAN_ID) id = take(8);
      return id;
    },
  };
}

const ids = createIdGenerator();

/** 32 lowercase hex characters, not all zeros. */
export const newTraceId = ids.traceId;
/** 16 lowercase hex characters, not all zeros. */
export const newSpanId = ids.spanId;
