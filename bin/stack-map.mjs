// Stack traces of the bundled hub name the TypeScript lines, without holding a parsed source map.
// Node's own source-map support (`--enable-source-maps`, `process.setSourceMapsEnabled`) parses the whole
// map when the bundle loads and keeps it: one array per mapping segment, ≈ 37 MiB of the idle hub's
// RSS for its whole life (docs/decisions/0033-stack-traces-mapped-when-read.md). Here the map's `mappings`
// text (≈ 0.75 MB) is all that is kept; a stack is mapped when it is read (`error.stack`, which V8
// formats lazily), by decoding only the generated lines its frames are on.

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const DIGIT = new Int8Array(128).fill(-1);
for (let i = 0; i < BASE64.length; i++) DIGIT[BASE64.charCodeAt(i)] = i;

/**
 * Node marks its own errors (by a symbol on their prototypes); its stack header names their code,
 * `TypeError [ERR_INVALID_ARG_TYPE]: …`, and so does ours.
 */
const kIsNodeError = (() => {
  try {
    Buffer.alloc(-1);
  } catch (error) {
    for (let p = error; p; p = Object.getPrototypeOf(p)) {
      const symbol = Object.getOwnPropertySymbols(p).find((s) => s.description === 'kIsNodeError');
      if (symbol !== undefined) return symbol;
    }
  }
  return undefined;
})();

/** Mapped frames remembered: a stack repeats the same few places; bounded, so never a leak. */
const CACHE_LIMIT = 4096;

/** Generated lines kept decoded: a stack's frames fall on a few lines, and the same ones again. */
const DECODED_LINES = 64;

/**
 * A position lookup over a source map's `mappings` (version 3). The first lookup indexes where each
 * generated line starts and the decoder's state there (one pass, a few numbers a line); a lookup then
 * decodes its line (kept for the next lookups on it) and searches it.
 */
export class LineMap {
  /**
   * @param {string} mappings the map's `mappings` field
   * @param {readonly string[]} sources each source as it is to be shown (an absolute path)
   */
  constructor(mappings, sources) {
    this.mappings = mappings;
    this.sources = sources;
    /** @type {{ offset: Int32Array, state: Int32Array } | undefined} */
    this.index = undefined;
    /** @type {Map<number, Int32Array>} */
    this.decoded = new Map();
  }

  /**
   * The original place of a generated one, or undefined where the map says nothing. As Node's own
   * reader does, a place before a line's first segment takes the last segment of the lines before.
   * @param {number} line 1-based, as in a stack trace
   * @param {number} column 1-based, as in a stack trace
   * @returns {{ source: string, line: number, column: number } | undefined}
   */
  lookup(line, column) {
    if (this.index === undefined) {
      try {
        this.index = this.buildIndex();
      } catch {
        // a map that cannot be read maps nothing, and is not read again at every frame
        this.index = { offset: new Int32Array(0), state: new Int32Array(0) };
      }
    }
    const i = line - 1;
    if (i < 0 || i >= this.index.offset.length) return undefined;
    const segments = this.line(i);
    // the last segment at or before the column: 4 numbers each (column, source, line, column)
    let low = 0;
    let high = segments.length / 4 - 1;
    while (low <= high) {
      const mid = (low + high) >> 1;
      if (segments[mid * 4] <= column - 1) low = mid + 1;
      else high = mid - 1;
    }
    const at = high * 4;
    // a segment of one field (source -1) marks generated text that comes from no source
    const source = this.sources[segments[at + 1]];
    if (source === undefined) return undefined;
    return { source, line: segments[at + 2] + 1, column: segments[at + 3] + 1 };
  }

  /**
   * Line `i`'s segments, after one standing for the segment before it (column -1): each is its
   * generated column and its source, line and column (source -1: from no source).
   * @private
   */
  line(i) {
    let segments = this.decoded.get(i);
    if (segments !== undefined) return segments;
    const { offset, state: start } = this.index;
    const text = this.mappings;
    const end = i + 1 < offset.length ? offset[i + 1] - 1 : text.length;
    const out = [-1, start[i * 4], start[i * 4 + 1], start[i * 4 + 2]];
    const state = [0, start[i * 4 + 3], start[i * 4 + 1], start[i * 4 + 2], 0];
    let pos = offset[i];
    while (pos < end) {
      pos = decodeSegment(text, pos, end, state);
      out.push(state[0], fieldsDecoded >= 4 ? state[1] : -1, state[2], state[3]);
      if (text.charCodeAt(pos) === 44 /* , */) pos++;
    }
    segments = Int32Array.from(out);
    if (this.decoded.size >= DECODED_LINES) this.decoded.delete(this.decoded.keys().next().value);
    this.decoded.set(i, segments);
    return segments;
  }

  /**
   * Where each line starts in `mappings`, and the decoder's state there: the last segment's source
   * (-1 if it had none), line and column, and the source index to continue from.
   * @private
   */
  buildIndex() {
    const text = this.mappings;
    const lines = 1 + countOf(text, 59 /* ; */);
    const offset = new Int32Array(lines);
    const start = new Int32Array(lines * 4);
    start[0] = -1;
    const state = [0, 0, 0, 0, 0];
    let mapped = false;
    let line = 0;
    let pos = 0;
    while (pos < text.length) {
      const c = text.charCodeAt(pos);
      if (c === 59 /* ; */) {
        line++;
        pos++;
        offset[line] = pos;
        start[line * 4] = mapped ? state[1] : -1;
        start[line * 4 + 1] = state[2];
        start[line * 4 + 2] = state[3];
        start[line * 4 + 3] = state[1];
        state[0] = 0;
      } else if (c === 44 /* , */) {
        pos++;
      } else {
        pos = decodeSegment(text, pos, text.length, state);
        mapped = fieldsDecoded >= 4;
      }
    }
    return { offset, state: start };
  }
}

function countOf(text, code) {
  let n = 0;
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === code) n++;
  return n;
}

/** How many fields the last `decodeSegment` read. */
let fieldsDecoded = 0;

/**
 * Decodes one segment at `pos` into `state` (each field is relative to its previous value) and
 * returns where it ends.
 */
function decodeSegment(text, pos, end, state) {
  let count = 0;
  while (pos < end) {
    const c = text.charCodeAt(pos);
    if (c === 44 || c === 59) break;
    let value = 0;
    let shift = 0;
    let digit;
    do {
      digit = DIGIT[text.charCodeAt(pos++)];
      if (digit === undefined || digit < 0) throw new Error('source map: bad mappings');
      value += (digit & 31) * 2 ** shift;
      shift += 5;
    } while (digit & 32);
    state[count] += value & 1 ? -(value >>> 1) : value >>> 1;
    count++;
  }
  fieldsDecoded = count;
  return pos;
}

/**
 * Makes `error.stack` name original places for frames in `bundleUrl`. Other frames, and a frame the
 * map says nothing about, stay as V8 writes them.
 * @param {string} bundleUrl the bundle's file URL, as frames name it
 * @param {LineMap} map
 */
export function mapStackTraces(bundleUrl, map) {
  const cache = new Map();
  const place = (line, column) => {
    const key = line * 2 ** 32 + column;
    let text = cache.get(key);
    if (text === undefined) {
      const original = map.lookup(line, column);
      text = original ? `${original.source}:${original.line}:${original.column}` : null;
      if (cache.size >= CACHE_LIMIT) cache.clear();
      cache.set(key, text);
    }
    return text;
  };
  const generated = `${bundleUrl}:`;
  const frame = (site) => {
    const written = String(site);
    if (site.getFileName() !== bundleUrl) return written;
    const line = site.getLineNumber();
    const column = site.getColumnNumber();
    const at = `${generated}${line}:${column}`;
    const i = written.lastIndexOf(at);
    const original = i < 0 ? null : place(line, column);
    return original === null ? written : written.slice(0, i) + original + written.slice(i + at.length);
  };
  Error.prepareStackTrace = (error, sites) => {
    let header;
    try {
      header =
        kIsNodeError !== undefined && typeof error === 'object' && error !== null && kIsNodeError in error
          ? `${error.name} [${error.code}]: ${error.message}`
          : Error.prototype.toString.call(error);
    } catch {
      header = '<error>';
    }
    let stack = header;
    for (const site of sites) {
      let line;
      try {
        line = frame(site);
      } catch {
        line = String(site);
      }
      stack += `\n    at ${line}`;
    }
    return stack;
  };
}
