import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  audioTokens,
  Base64Bytes,
  base64Payload,
  highDetailImageTokens,
  imageSize,
  imageTokens,
  MAX_IMAGE_TOKENS,
} from './media-tokens.ts';

const dataUrl = (mime: string, bytes: Buffer) => `data:${mime};base64,${bytes.toString('base64')}`;
/** Image headers followed by kilobytes of pixel data the estimate must not need to read. */
const withBody = (head: Buffer) => Buffer.concat([head, Buffer.alloc(50_000, 0x5a)]);

function png(width: number, height: number): Buffer {
  const head = Buffer.alloc(33);
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(head, 0);
  head.writeUInt32BE(13, 8);
  head.write('IHDR', 12, 'latin1');
  head.writeUInt32BE(width, 16);
  head.writeUInt32BE(height, 20);
  return withBody(head);
}

function gif(width: number, height: number): Buffer {
  const head = Buffer.alloc(32);
  head.write('GIF89a', 0, 'latin1');
  head.writeUInt16LE(width, 6);
  head.writeUInt16LE(height, 8);
  return withBody(head);
}

/** A JPEG whose frame header comes after an APP1 (EXIF) segment of 20 KB and a quantisation table. */
function jpeg(width: number, height: number): Buffer {
  const exif = Buffer.alloc(4 + 20_000);
  exif.writeUInt16BE(0xffe1, 0);
  exif.writeUInt16BE(20_002, 2);
  const dqt = Buffer.from([0xff, 0xdb, 0x00, 0x04, 0x00, 0x01]);
  const sof = Buffer.alloc(19);
  sof.writeUInt16BE(0xffc2, 0); // progressive
  sof.writeUInt16BE(17, 2);
  sof[4] = 8;
  sof.writeUInt16BE(height, 5);
  sof.writeUInt16BE(width, 7);
  return withBody(Buffer.concat([Buffer.from([0xff, 0xd8]), exif, dqt, sof]));
}

function webp(chunk: 'VP8X' | 'VP8L', width: number, height: number): Buffer {
  const head = Buffer.alloc(32);
  head.write('RIFF', 0, 'latin1');
  head.write('WEBP', 8, 'latin1');
  head.write(chunk, 12, 'latin1');
  if (chunk === 'VP8X') {
    head.writeUIntLE(width - 1, 24, 3);
    head.writeUIntLE(height - 1, 27, 3);
  } else {
    head[20] = 0x2f;
    const bits = (width - 1) | ((height - 1) << 14);
    head.writeUInt32LE(bits >>> 0, 21);
  }
  return withBody(head);
}

test("OpenAI's worked examples of high-detail image costs", () => {
  assert.equal(highDetailImageTokens(1024, 1024), 765, '→ 768 × 768, 4 tiles');
  assert.equal(highDetailImageTokens(2048, 4096), 1105, '→ 1024 × 2048 → 768 × 1536, 6 tiles');
  assert.equal(highDetailImageTokens(512, 512), 255, 'small images are not scaled up: 1 tile');
  assert.equal(highDetailImageTokens(4000, 3000), 765, '→ 2048 × 1536 → 1024 × 768, 4 tiles');
  assert.equal(highDetailImageTokens(3000, 1000), 1445, '→ 2048 × 682, 4 × 2 tiles');
  assert.equal(MAX_IMAGE_TOKENS, 1445, '768 × 2048: 8 tiles, the most one image can cost');
});

test('the size of a data: image is read from its header, whatever its format', () => {
  const cases: [string, Buffer, { width: number; height: number }, number][] = [
    ['image/png', png(1024, 1024), { width: 1024, height: 1024 }, 765],
    ['image/gif', gif(2048, 4096), { width: 2048, height: 4096 }, 1105],
    ['image/jpeg', jpeg(1000, 500), { width: 1000, height: 500 }, 425],
    ['image/webp', webp('VP8X', 3000, 1000), { width: 3000, height: 1000 }, 1445],
    ['image/webp', webp('VP8L', 100, 50), { width: 100, height: 50 }, 255],
  ];
  for (const [mime, bytes, size, tokens] of cases) {
    const url = dataUrl(mime, bytes);
    assert.deepEqual(imageSize(base64Payload(url)!), size, mime);
    assert.equal(imageTokens(url, 'high'), tokens, mime);
    assert.equal(imageTokens(url, 'auto'), tokens, `${mime}: auto counts as high`);
    assert.equal(imageTokens(url, undefined), tokens, `${mime}: no detail is auto`);
    assert.equal(imageTokens(url, 'low'), 85, `${mime}: low is 85 whatever the size`);
  }
});

test('an image whose size cannot be known costs the most one image can', () => {
  assert.equal(
    imageTokens('https://example.com/cat.png', 'high'),
    1445,
    'the hub does not fetch remote images',
  );
  assert.equal(imageTokens(dataUrl('image/bmp', Buffer.alloc(100, 1)), 'auto'), 1445, 'unknown format');
  assert.equal(imageTokens('data:image/png;base64,AAAA', 'high'), 1445, 'truncated');
  assert.equal(imageTokens('https://example.com/cat.png', 'low'), 85);
  assert.equal(imageTokens(42, undefined), 1445);
});

test('base64 bytes are read where they are, without decoding the rest', () => {
  const bytes = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));
  const payload = new Base64Bytes(`xx${bytes.toString('base64')}`, 2);
  assert.equal(payload.length, 1000);
  for (const [offset, count] of [
    [0, 4],
    [1, 5],
    [2, 7],
    [500, 3],
    [997, 3],
    [998, 10],
  ] as const) {
    assert.deepEqual(
      payload.read(offset, count),
      bytes.subarray(offset, offset + count),
      `${offset}+${count}`,
    );
  }
});

function wav(seconds: number, byteRate: number): string {
  const data = Math.round(seconds * byteRate);
  const head = Buffer.alloc(44);
  head.write('RIFF', 0, 'latin1');
  head.writeUInt32LE(36 + data, 4);
  head.write('WAVE', 8, 'latin1');
  head.write('fmt ', 12, 'latin1');
  head.writeUInt32LE(16, 16);
  head.writeUInt16LE(1, 20);
  head.writeUInt16LE(1, 22);
  head.writeUInt32LE(byteRate / 2, 24);
  head.writeUInt32LE(byteRate, 28);
  head.writeUInt16LE(2, 32);
  head.writeUInt16LE(16, 34);
  head.write('data', 36, 'latin1');
  head.writeUInt32LE(data, 40);
  return Buffer.concat([head, Buffer.alloc(data)]).toString('base64');
}

test('audio costs about 10 tokens a second, its duration read from the WAV or MP3 header', () => {
  assert.equal(audioTokens(wav(3.2, 32_000), 'wav'), 32, '16 kHz mono 16-bit, 3.2 s');
  // MPEG-1 Layer III at 128 kbit/s after a 100-byte ID3v2 tag: 160,000 bytes of frames are 10 s
  const id3 = Buffer.alloc(110);
  id3.write('ID3', 0, 'latin1');
  id3[9] = 100;
  const frames = Buffer.alloc(160_000);
  frames.set([0xff, 0xfb, 0x90, 0x00]);
  assert.equal(audioTokens(Buffer.concat([id3, frames]).toString('base64'), 'mp3'), 100);
  // unreadable: as if it were 8 kbit/s, erring high
  assert.equal(audioTokens(Buffer.alloc(5_000, 1).toString('base64'), 'mp3'), 50);
  assert.equal(audioTokens('', 'wav'), 0);
  assert.equal(audioTokens(undefined, 'wav'), 0);
});
