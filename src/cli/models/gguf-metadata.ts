/**
 * Just enough of a GGUF header to read the training context length (`<arch>.context_length`) for a
 * product's `contextWindow`, without loading the model: the metadata sits at the start of the file,
 * so only its first few MB are read. Layout: "GGUF", version (u32), tensor count (u64), KV count
 * (u64), then each KV as key (u64 length + UTF-8), value type (u32), value.
 */
import { open } from 'node:fs/promises';

/** The metadata of large vocabularies runs to several MB; past this the reader gives up. */
const MAX_HEADER_BYTES = 64 * 1024 * 1024;

const FIXED_SIZES: Record<number, number> = {
  0: 1,
  1: 1,
  2: 2,
  3: 2,
  4: 4,
  5: 4,
  6: 4,
  7: 1,
  10: 8,
  11: 8,
  12: 8,
};
const STRING = 8;
const ARRAY = 9;

class Reader {
  offset = 0;
  constructor(private readonly buf: Buffer) {}
  private need(n: number): void {
    if (this.offset + n > this.buf.length) throw new RangeError('GGUF header truncated');
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32LE(this.offset);
    this.offset += 4;
    return v;
  }
  u64(): number {
    this.need(8);
    const v = this.buf.readBigUInt64LE(this.offset);
    this.offset += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError('GGUF value too large');
    return Number(v);
  }
  str(): string {
    const n = this.u64();
    this.need(n);
    const s = this.buf.toString('utf8', this.offset, this.offset + n);
    this.offset += n;
    return s;
  }
  /** A scalar as a number (integers and floats), or undefined for other types (which are skipped). */
  value(type: number): number | string | undefined {
    if (type === STRING) return this.str();
    if (type === ARRAY) {
      const itemType = this.u32();
      const count = this.u64();
      if (itemType === STRING) for (let i = 0; i < count; i++) this.str();
      else {
        const size = FIXED_SIZES[itemType];
        if (size === undefined) throw new RangeError(`GGUF array of type ${itemType}`);
        this.need(size * count);
        this.offset += size * count;
      }
      return undefined;
    }
    const size = FIXED_SIZES[type];
    if (size === undefined) throw new RangeError(`GGUF value type ${type}`);
    this.need(size);
    const at = this.offset;
    this.offset += size;
    switch (type) {
      case 4:
        return this.buf.readUInt32LE(at);
      case 5:
        return this.buf.readInt32LE(at);
      case 10:
        return Number(this.buf.readBigUInt64LE(at));
      case 11:
        return Number(this.buf.readBigInt64LE(at));
      default:
        return undefined;
    }
  }
}

/** Reads the KVs from `buf` until the context length is known; RangeError when `buf` ends first. */
function contextLengthIn(buf: Buffer): number | undefined {
  if (buf.toString('ascii', 0, 4) !== 'GGUF') return undefined;
  const r = new Reader(buf);
  r.offset = 4;
  if (r.u32() < 2) return undefined;
  r.u64(); // tensor count
  const kvCount = r.u64();
  const values = new Map<string, number | string>();
  for (let i = 0; i < kvCount; i++) {
    const key = r.str();
    const value = r.value(r.u32());
    if (value !== undefined) values.set(key, value);
    const arch = values.get('general.architecture');
    const ctx = typeof arch === 'string' ? values.get(`${arch}.context_length`) : undefined;
    if (ctx !== undefined)
      return typeof ctx === 'number' && Number.isInteger(ctx) && ctx > 0 ? ctx : undefined;
  }
  return undefined;
}

/**
 * The model's training context length, or undefined when the file does not say (or is not GGUF v2+).
 * The key usually comes before the vocabulary, so the first MB is tried before a larger read.
 */
export async function readGgufContextLength(path: string): Promise<number | undefined> {
  const handle = await open(path, 'r');
  try {
    const fileSize = (await handle.stat()).size;
    for (const limit of [1024 * 1024, MAX_HEADER_BYTES]) {
      const size = Math.min(fileSize, limit);
      const buf = Buffer.alloc(size);
      await handle.read(buf, 0, size, 0);
      try {
        return contextLengthIn(buf);
      } catch (error) {
        if (!(error instanceof RangeError)) throw error;
        if (size === fileSize) return undefined;
      }
    }
    return undefined;
  } finally {
    await handle.close();
  }
}
