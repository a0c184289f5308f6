/**
 * What images and audio in a chat request cost in tokens, by OpenAI's published rules, for the
 * estimate used where an upstream reports no usage (and for admission's worst case). Only the
 * headers of a base64 `data:` payload are decoded, never the whole of it.
 */

/** detail "low": a fixed 85 tokens whatever the size. */
export const LOW_DETAIL_IMAGE_TOKENS = 85;
const TILE_TOKENS = 170;
const BASE_IMAGE_TOKENS = 85;

/**
 * detail "high" (and "auto", counted as high since the upstream may choose it): the image is scaled
 * to fit in 2048 × 2048, then down so that its shortest side is 768 px; each 512 px tile costs 170
 * tokens, plus 85 (OpenAI, "Calculating costs" in the vision guide: 1024 × 1024 → 765 tokens).
 */
export function highDetailImageTokens(width: number, height: number): number {
  let w = width;
  let h = height;
  if (w > 2048 || h > 2048) {
    const scale = 2048 / Math.max(w, h);
    w *= scale;
    h *= scale;
  }
  if (Math.min(w, h) > 768) {
    const scale = 768 / Math.min(w, h);
    w *= scale;
    h *= scale;
  }
  return TILE_TOKENS * Math.ceil(Math.floor(w) / 512) * Math.ceil(Math.floor(h) / 512) + BASE_IMAGE_TOKENS;
}

/**
 * The most one image can cost under those rules: 768 × 2048 after scaling is 2 × 4 tiles. Used when
 * the size cannot be known: a remote URL (the hub does not fetch it) or a payload it cannot read.
 */
export const MAX_IMAGE_TOKENS = TILE_TOKENS * 8 + BASE_IMAGE_TOKENS;

/** An `image_url` part's cost: its detail, and its size when it is a readable `data:` URL. */
export function imageTokens(url: unknown, detail: unknown): number {
  if (detail === 'low') return LOW_DETAIL_IMAGE_TOKENS;
  const payload = typeof url === 'string' ? base64Payload(url) : undefined;
  const size = payload ? imageSize(payload) : undefined;
  return size ? highDetailImageTokens(size.width, size.height) : MAX_IMAGE_TOKENS;
}

/**
 * Audio input: about 10 tokens a second, from OpenAI's published prices (≈ $0.06 a minute at
 * $100 per million audio input tokens: 600 tokens a minute).
 */
export const AUDIO_TOKENS_PER_SECOND = 10;
/**
 * When an MP3's bitrate cannot be read: 8 kbit/s, the lowest MPEG-2 Layer III rate, so that the
 * duration (and the estimate) errs high.
 */
const LOWEST_AUDIO_BYTES_PER_SECOND = 1000;

/** An `input_audio` part's cost from its base64 `data` and `format` (OpenAI accepts wav and mp3). */
export function audioTokens(data: unknown, format: unknown): number {
  if (typeof data !== 'string' || data.length === 0) return 0;
  const bytes = new Base64Bytes(data, 0);
  const seconds =
    (format === 'wav' ? wavSeconds(bytes) : undefined) ??
    (format === 'mp3' ? mp3Seconds(bytes) : undefined) ??
    bytes.length / LOWEST_AUDIO_BYTES_PER_SECOND;
  return Math.ceil(seconds * AUDIO_TOKENS_PER_SECOND);
}

/** Reads a few bytes anywhere in a base64 payload by decoding only the 4-character groups around them. */
export class Base64Bytes {
  /** Decoded length in bytes. */
  readonly length: number;

  constructor(
    private readonly text: string,
    private readonly start: number,
  ) {
    const chars = text.length - start;
    const padding = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
    this.length = Math.max(0, Math.floor((chars * 3) / 4) - padding);
  }

  /** `count` bytes from `offset` (fewer at the end of the payload). */
  read(offset: number, count: number): Buffer {
    const first = Math.floor(offset / 3);
    const last = Math.ceil((offset + count) / 3);
    const decoded = Buffer.from(this.text.slice(this.start + first * 4, this.start + last * 4), 'base64');
    return decoded.subarray(offset - first * 3, offset - first * 3 + count);
  }
}

/** The payload of a `data:…;base64,` URL, or undefined for anything else (remote URLs). */
export function base64Payload(url: string): Base64Bytes | undefined {
  if (!url.startsWith('data:')) return undefined;
  const comma = url.indexOf(',');
  // the header is short; a comma far away means this is not a data URL we can read
  if (comma === -1 || comma > 256 || !url.slice(0, comma).endsWith(';base64')) return undefined;
  return new Base64Bytes(url, comma + 1);
}

export interface ImageSize {
  width: number;
  height: number;
}

/** Width and height from a PNG, JPEG, GIF or WebP header; undefined when none of them is readable. */
export function imageSize(bytes: Base64Bytes): ImageSize | undefined {
  const head = bytes.read(0, 32);
  if (head.length < 24) return undefined;
  let size: ImageSize | undefined;
  if (head.readUInt32BE(0) === 0x89504e47 && head.toString('latin1', 12, 16) === 'IHDR') {
    size = { width: head.readUInt32BE(16), height: head.readUInt32BE(20) };
  } else if (head.toString('latin1', 0, 4) === 'GIF8') {
    size = { width: head.readUInt16LE(6), height: head.readUInt16LE(8) };
  } else if (head.toString('latin1', 0, 4) === 'RIFF' && head.toString('latin1', 8, 12) === 'WEBP') {
    size = webpSize(head);
  } else if (head[0] === 0xff && head[1] === 0xd8) {
    size = jpegSize(bytes);
  }
  return size && size.width > 0 && size.height > 0 ? size : undefined;
}

function webpSize(head: Buffer): ImageSize | undefined {
  const chunk = head.toString('latin1', 12, 16);
  if (chunk === 'VP8 ')
    return { width: head.readUInt16LE(26) & 0x3fff, height: head.readUInt16LE(28) & 0x3fff };
  if (chunk === 'VP8L') {
    const b0 = head[21] as number;
    const b1 = head[22] as number;
    const b2 = head[23] as number;
    const b3 = head[24] as number;
    return {
      width: 1 + (((b1 & 0x3f) << 8) | b0),
      height: 1 + (((b3 & 0x0f) << 10) | (b2 << 2) | ((b1 & 0xc0) >> 6)),
    };
  }
  if (chunk === 'VP8X') return { width: 1 + head.readUIntLE(24, 3), height: 1 + head.readUIntLE(27, 3) };
  return undefined;
}

/** Start-of-frame markers carry the size; C4 (DHT), C8 (JPG) and CC (DAC) do not. */
const isStartOfFrame = (m: number) => m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;

/** Walks the JPEG's segments (EXIF and other metadata first) to its frame header, a few hops. */
function jpegSize(bytes: Base64Bytes): ImageSize | undefined {
  let offset = 2;
  for (let hops = 0; hops < 256 && offset + 9 <= bytes.length; hops++) {
    const segment = bytes.read(offset, 9);
    if (segment[0] !== 0xff) return undefined;
    const marker = segment[1] as number;
    if (marker === 0xff) {
      offset += 1; // fill byte
      continue;
    }
    if (isStartOfFrame(marker)) return { width: segment.readUInt16BE(7), height: segment.readUInt16BE(5) };
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) {
      offset += 2; // markers without a length
      continue;
    }
    offset += 2 + segment.readUInt16BE(2);
  }
  return undefined;
}

/** A WAV's duration from its header: the data chunk's size over the format's byte rate. */
function wavSeconds(bytes: Base64Bytes): number | undefined {
  const head = bytes.read(0, 12);
  if (
    head.length < 12 ||
    head.toString('latin1', 0, 4) !== 'RIFF' ||
    head.toString('latin1', 8, 12) !== 'WAVE'
  ) {
    return undefined;
  }
  let byteRate = 0;
  let offset = 12;
  for (let hops = 0; hops < 64 && offset + 8 <= bytes.length; hops++) {
    // id, size, then for "fmt ": format, channels, sample rate, byte rate
    const chunk = bytes.read(offset, 20);
    const id = chunk.toString('latin1', 0, 4);
    const size = chunk.readUInt32LE(4);
    if (id === 'fmt ' && chunk.length >= 20) byteRate = chunk.readUInt32LE(16);
    if (id === 'data') {
      if (byteRate === 0) return undefined;
      // a streamed WAV may leave the size unset: what is there is what counts
      return Math.min(size, bytes.length - offset - 8) / byteRate;
    }
    offset += 8 + size + (size % 2);
  }
  return undefined;
}

const MPEG1_LAYER3_KBPS = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];
const MPEG2_LAYER3_KBPS = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];

/** An MP3's duration from its size and the bitrate of its first frame (after an ID3v2 tag). */
function mp3Seconds(bytes: Base64Bytes): number | undefined {
  let offset = 0;
  const id3 = bytes.read(0, 10);
  if (id3.length === 10 && id3.toString('latin1', 0, 3) === 'ID3') {
    // a syncsafe integer: 7 bits a byte
    offset =
      10 +
      (((id3[6] as number) << 21) |
        ((id3[7] as number) << 14) |
        ((id3[8] as number) << 7) |
        (id3[9] as number));
  }
  const frame = bytes.read(offset, 4);
  if (frame.length < 4 || frame[0] !== 0xff || ((frame[1] as number) & 0xe0) !== 0xe0) return undefined;
  const version = ((frame[1] as number) >> 3) & 0x03; // 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5
  const layer = ((frame[1] as number) >> 1) & 0x03; // 1: Layer III
  if (layer !== 1 || version === 1) return undefined;
  const kbps = (version === 3 ? MPEG1_LAYER3_KBPS : MPEG2_LAYER3_KBPS)[(frame[2] as number) >> 4];
  if (!kbps) return undefined;
  return ((bytes.length - offset) * 8) / (kbps * 1000);
}
