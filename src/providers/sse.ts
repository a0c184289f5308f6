import { UpstreamError } from './adapter.ts';

/** One server-sent event (https://html.spec.whatwg.org/multipage/server-sent-events.html). */
export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

export interface SseLimits {
  /**
   * The most bytes held for one line, and for the data of one event; past it the stream ends with an
   * `UpstreamError('protocol')`. Default `DEFAULT_MAX_EVENT_BYTES`.
   */
  maxEventBytes?: number;
}

/** 1 MiB: chat chunks are well under 1 KB; a whole tool call or reasoning block sent at once still fits. */
export const DEFAULT_MAX_EVENT_BYTES = 1024 * 1024;

const LF = 0x0a;
const CR = 0x0d;
const COLON = 0x3a;
const SPACE = 0x20;
const EMPTY = Buffer.alloc(0);

/**
 * Parses a byte stream into events as soon as each is complete: a partial event is held only until
 * its terminating blank line arrives, never longer. Handles CRLF, CR and LF line ends, comments,
 * multi-line data, and events split across chunks at any byte (UTF-8 included). What an upstream can
 * make the hub hold is bounded: a line, or the data of one event, longer than `maxEventBytes` ends the
 * stream. (`SseParser` is the same without a generator of its own.)
 */
export async function* parseSse(
  body: AsyncIterable<Uint8Array | string>,
  limits: SseLimits = {},
): AsyncGenerator<SseEvent> {
  const parser = new SseParser(limits);
  const events = parser.events;
  for await (const piece of body) {
    parser.push(piece);
    for (let i = 0; i < events.length; i++) yield events[i]!;
    events.length = 0;
    parser.rethrow();
  }
  parser.end();
  for (let i = 0; i < events.length; i++) yield events[i]!;
  events.length = 0;
  parser.rethrow();
}

/**
 * `parseSse` for a reader that has its own loop over the body: `push` each chunk, then take the events
 * it completed from `events` (and empty it), then `rethrow()`; `end()` when the body ends. A reader of
 * chunk after chunk need not stack a generator of its own under its own for every open stream (each
 * suspended generator holds its frame, promise and closures: ≈ 1 KB a stream, measured).
 *
 * Works on bytes, so every byte is looked at once: a line end is found with `indexOf` over the bytes
 * that arrived, the unfinished rest of a line is kept as the chunks it came in (never rescanned nor
 * copied until the line ends), and only a finished line's value is decoded. UTF-8 never uses the bytes
 * of CR or LF inside a character, so cutting lines on bytes is safe.
 */
export class SseParser {
  /** The events completed by the last `push` or `end`, in order; the reader empties it. */
  readonly events: SseEvent[] = [];
  private readonly maxBytes: number;
  private readonly fields: SseFields;
  // the unfinished line: pieces of earlier chunks, in order
  private readonly partial: Buffer[] = [];
  private partialBytes = 0;
  // the last line ended with CR at the end of a chunk: a LF starting the next one belongs to it
  private pendingCr = false;
  private first = true;
  /**
   * An over-long line or event: kept until the events completed before it in the same chunk are
   * taken, as a generator would have yielded them before it threw.
   */
  private failure: UpstreamError | null = null;

  constructor(limits: SseLimits = {}) {
    this.maxBytes = limits.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES;
    this.fields = new SseFields(this.maxBytes);
  }

  /** Throws the failure of the last `push` or `end`, if any. */
  rethrow(): void {
    if (this.failure !== null) throw this.failure;
  }

  push(piece: Uint8Array | string): void {
    if (this.failure !== null) return;
    try {
      this.scan(piece);
    } catch (error) {
      this.failure = error as UpstreamError;
    }
  }

  /** The body ended without the last line end or blank line: takes what came. */
  end(): void {
    if (this.failure !== null) return;
    try {
      if (this.partialBytes > 0) this.fields.take(Buffer.concat(this.partial, this.partialBytes));
      const last = this.fields.take(EMPTY);
      if (last) this.events.push(last);
    } catch (error) {
      this.failure = error as UpstreamError;
    }
  }

  private scan(piece: Uint8Array | string): void {
    const maxBytes = this.maxBytes;
    const partial = this.partial;
    let chunk = typeof piece === 'string' ? Buffer.from(piece, 'utf8') : toBuffer(piece);
    if (this.first && chunk.length > 0) {
      this.first = false;
      // a UTF-8 byte order mark at the very start is not part of the first field (the spec strips it)
      if (chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) chunk = chunk.subarray(3);
    }
    let start = 0;
    if (this.pendingCr) {
      this.pendingCr = false;
      if (chunk[0] === LF) start = 1;
    }
    // each searched once per chunk and again only once passed: a chunk with no CR costs one scan
    let nextLf = chunk.indexOf(LF, start);
    let nextCr = chunk.indexOf(CR, start);
    while (nextLf !== -1 || nextCr !== -1) {
      const end = nextCr === -1 || (nextLf !== -1 && nextLf < nextCr) ? nextLf : nextCr;
      let line: Buffer;
      if (this.partialBytes === 0) {
        line = chunk.subarray(start, end);
      } else {
        partial.push(chunk.subarray(start, end));
        line = Buffer.concat(partial, this.partialBytes + end - start);
        partial.length = 0;
        this.partialBytes = 0;
      }
      if (line.length > maxBytes) throw overLong('line', maxBytes);
      start = end + 1;
      if (end === nextCr) {
        if (start === chunk.length) this.pendingCr = true;
        else if (chunk[start] === LF) start++;
      }
      const out = this.fields.take(line);
      if (out) this.events.push(out);
      if (nextLf !== -1 && nextLf < start) nextLf = chunk.indexOf(LF, start);
      if (nextCr !== -1 && nextCr < start) nextCr = chunk.indexOf(CR, start);
    }
    if (start < chunk.length) {
      this.partialBytes += chunk.length - start;
      if (this.partialBytes > maxBytes) throw overLong('line', maxBytes);
      partial.push(start === 0 ? chunk : chunk.subarray(start));
    }
  }
}

/** The fields of the event being read, filled line by line. */
class SseFields {
  private event = '';
  private readonly data: string[] = [];
  private dataBytes = 0;
  // the spec keeps the last event id for the events after it
  private id: string | undefined = undefined;

  constructor(private readonly maxBytes: number) {}

  /** Takes one line (without its end); returns the event when the line is the blank one ending it. */
  take(line: Buffer): SseEvent | null {
    if (line.length === 0) return this.dispatch();
    if (line[0] === COLON) return null; // comment / keep-alive
    let colon = line.indexOf(COLON);
    if (colon === -1) colon = line.length;
    let valueStart = colon + 1;
    if (line[valueStart] === SPACE) valueStart++;
    const valueBytes = line.length > valueStart ? line.length - valueStart : 0;
    if (colon === 4 && line[0] === 0x64 && line[1] === 0x61 && line[2] === 0x74 && line[3] === 0x61) {
      // "data" is what an event accumulates, so what is capped
      this.dataBytes += valueBytes + (this.data.length > 0 ? 1 : 0);
      if (this.dataBytes > this.maxBytes) throw overLong('event', this.maxBytes);
      this.data.push(valueBytes === 0 ? '' : line.toString('utf8', valueStart));
      return null;
    }
    const field = line.toString('latin1', 0, colon);
    if (field === 'event') this.event = valueBytes === 0 ? '' : line.toString('utf8', valueStart);
    else if (field === 'id') this.id = valueBytes === 0 ? '' : line.toString('utf8', valueStart);
    return null;
  }

  private dispatch(): SseEvent | null {
    const data = this.data;
    const event = this.event || 'message';
    this.event = '';
    if (data.length === 0) return null;
    const text = data.length === 1 ? data[0]! : data.join('\n');
    data.length = 0;
    this.dataBytes = 0;
    return this.id === undefined ? { event, data: text } : { event, data: text, id: this.id };
  }
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function overLong(what: 'line' | 'event', maxBytes: number): UpstreamError {
  return new UpstreamError(
    'protocol',
    `upstream sent an over-long SSE ${what} (more than ${maxBytes} bytes; KAIHUB_UPSTREAM_MAX_EVENT_BYTES)`,
  );
}
