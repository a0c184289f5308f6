import { writeFile } from 'node:fs/promises';
import { seededRandom } from '../helpers/seeded-random.ts';

/**
 * A tiny but valid GGUF v3 model (llama architecture, random F32 weights, byte-level SentencePiece
 * vocabulary) so tests can run a real llama.cpp model in-process without downloading anything.
 *
 * Layout (llama.cpp `gguf-py/gguf/constants.py`, `ggml/src/gguf.cpp`): magic "GGUF", version 3,
 * tensor count (u64), KV count (u64), the metadata KVs, the tensor infos (name, dims in ggml order
 * ne0 first, type, offset relative to the data section), padding to `general.alignment` (32), then the
 * tensor data, every tensor aligned to 32 bytes.
 */
export interface TinyGgufOptions {
  layers?: number;
  embedding?: number;
  heads?: number;
  feedForward?: number;
  contextLength?: number;
  seed?: number;
  /** Jinja chat template stored as `tokenizer.chat_template`. */
  chatTemplate?: string;
}

/** A simple template of the model's own, so chat formatting comes from the file, not the hub. */
export const TINY_CHAT_TEMPLATE =
  "{% for message in messages %}{{ '<|' + message['role'] + '|>\n' + message['content'] + eos_token + '\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}";

const ALIGNMENT = 32;

/** GGUF metadata value types. */
const T = {
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
} as const;

/** llama.cpp token types. */
const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, BYTE: 6 } as const;

type Value =
  | { t: 'u32'; v: number }
  | { t: 'f32'; v: number }
  | { t: 'bool'; v: boolean }
  | { t: 'str'; v: string }
  | { t: 'str[]'; v: string[] }
  | { t: 'f32[]'; v: number[] }
  | { t: 'i32[]'; v: number[] };

class Writer {
  private chunks: Buffer[] = [];
  length = 0;

  private push(b: Buffer): void {
    this.chunks.push(b);
    this.length += b.length;
  }
  u32(n: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    this.push(b);
  }
  i32(n: number): void {
    const b = Buffer.alloc(4);
    b.writeInt32LE(n);
    this.push(b);
  }
  u64(n: number): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(n));
    this.push(b);
  }
  f32(n: number): void {
    const b = Buffer.alloc(4);
    b.writeFloatLE(n);
    this.push(b);
  }
  u8(n: number): void {
    this.push(Buffer.from([n]));
  }
  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.push(b);
  }
  raw(b: Buffer): void {
    this.push(b);
  }
  pad(): void {
    const rest = this.length % ALIGNMENT;
    if (rest !== 0) this.push(Buffer.alloc(ALIGNMENT - rest));
  }
  value(value: Value): void {
    switch (value.t) {
      case 'u32':
        this.u32(T.UINT32);
        this.u32(value.v);
        break;
      case 'f32':
        this.u32(T.FLOAT32);
        this.f32(value.v);
        break;
      case 'bool':
        this.u32(T.BOOL);
        this.u8(value.v ? 1 : 0);
        break;
      case 'str':
        this.u32(T.STRING);
        this.str(value.v);
        break;
      case 'str[]':
        this.u32(T.ARRAY);
        this.u32(T.STRING);
        this.u64(value.v.length);
        for (const s of value.v) this.str(s);
        break;
      case 'f32[]':
        this.u32(T.ARRAY);
        this.u32(T.FLOAT32);
        this.u64(value.v.length);
        for (const n of value.v) this.f32(n);
        break;
      case 'i32[]':
        this.u32(T.ARRAY);
        this.u32(T.INT32);
        this.u64(value.v.length);
        for (const n of value.v) this.i32(n);
        break;
    }
  }
  buffer(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/**
 * `<unk>`, `<s>`, `</s>`, the SentencePiece space `▁` (so spaces survive a tokenize/detokenize round
 * trip), then the 256 byte tokens `<0x00>`…`<0xFF>`: every other text falls back to bytes.
 */
export function tinyVocabulary(): { tokens: string[]; scores: number[]; types: number[] } {
  const tokens = ['<unk>', '<s>', '</s>', '\u2581'];
  const types: number[] = [TOKEN_TYPE.UNKNOWN, TOKEN_TYPE.CONTROL, TOKEN_TYPE.CONTROL, TOKEN_TYPE.NORMAL];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(TOKEN_TYPE.BYTE);
  }
  return { tokens, scores: tokens.map(() => 0), types };
}

export function tinyGguf(options: TinyGgufOptions = {}): Buffer {
  const layers = options.layers ?? 2;
  const nEmbd = options.embedding ?? 64;
  const heads = options.heads ?? 4;
  const nFf = options.feedForward ?? 4 * nEmbd;
  const ctx = options.contextLength ?? 512;
  const rand = seededRandom(options.seed ?? 42);
  const vocab = tinyVocabulary();
  const nVocab = vocab.tokens.length;

  const metadata: [string, Value][] = [
    ['general.architecture', { t: 'str', v: 'llama' }],
    ['general.name', { t: 'str', v: 'kaihub-tiny-test' }],
    ['general.alignment', { t: 'u32', v: ALIGNMENT }],
    ['general.file_type', { t: 'u32', v: 0 }],
    ['llama.context_length', { t: 'u32', v: ctx }],
    ['llama.embedding_length', { t: 'u32', v: nEmbd }],
    ['llama.block_count', { t: 'u32', v: layers }],
    ['llama.feed_forward_length', { t: 'u32', v: nFf }],
    ['llama.attention.head_count', { t: 'u32', v: heads }],
    ['llama.attention.head_count_kv', { t: 'u32', v: heads }],
    ['llama.attention.layer_norm_rms_epsilon', { t: 'f32', v: 1e-5 }],
    ['llama.rope.dimension_count', { t: 'u32', v: nEmbd / heads }],
    ['llama.vocab_size', { t: 'u32', v: nVocab }],
    ['tokenizer.ggml.model', { t: 'str', v: 'llama' }],
    ['tokenizer.ggml.tokens', { t: 'str[]', v: vocab.tokens }],
    ['tokenizer.ggml.scores', { t: 'f32[]', v: vocab.scores }],
    ['tokenizer.ggml.token_type', { t: 'i32[]', v: vocab.types }],
    ['tokenizer.ggml.unknown_token_id', { t: 'u32', v: 0 }],
    ['tokenizer.ggml.bos_token_id', { t: 'u32', v: 1 }],
    ['tokenizer.ggml.eos_token_id', { t: 'u32', v: 2 }],
    ['tokenizer.ggml.add_bos_token', { t: 'bool', v: true }],
    ['tokenizer.ggml.add_eos_token', { t: 'bool', v: false }],
    ['tokenizer.ggml.add_space_prefix', { t: 'bool', v: false }],
    ['tokenizer.chat_template', { t: 'str', v: options.chatTemplate ?? TINY_CHAT_TEMPLATE }],
  ];

  // Dims in ggml order: ne0 (the row length) first.
  const tensors: { name: string; dims: number[]; scale: number; fill?: number }[] = [
    { name: 'token_embd.weight', dims: [nEmbd, nVocab], scale: 0.5 },
  ];
  for (let i = 0; i < layers; i++) {
    tensors.push(
      { name: `blk.${i}.attn_norm.weight`, dims: [nEmbd], scale: 0, fill: 1 },
      { name: `blk.${i}.attn_q.weight`, dims: [nEmbd, nEmbd], scale: 0.2 },
      { name: `blk.${i}.attn_k.weight`, dims: [nEmbd, nEmbd], scale: 0.2 },
      { name: `blk.${i}.attn_v.weight`, dims: [nEmbd, nEmbd], scale: 0.2 },
      { name: `blk.${i}.attn_output.weight`, dims: [nEmbd, nEmbd], scale: 0.2 },
      { name: `blk.${i}.ffn_norm.weight`, dims: [nEmbd], scale: 0, fill: 1 },
      { name: `blk.${i}.ffn_gate.weight`, dims: [nEmbd, nFf], scale: 0.2 },
      { name: `blk.${i}.ffn_down.weight`, dims: [nFf, nEmbd], scale: 0.2 },
      { name: `blk.${i}.ffn_up.weight`, dims: [nEmbd, nFf], scale: 0.2 },
    );
  }
  tensors.push(
    { name: 'output_norm.weight', dims: [nEmbd], scale: 0, fill: 1 },
    { name: 'output.weight', dims: [nEmbd, nVocab], scale: 0.5 },
  );

  const w = new Writer();
  w.raw(Buffer.from('GGUF', 'ascii'));
  w.u32(3);
  w.u64(tensors.length);
  w.u64(metadata.length);
  for (const [key, value] of metadata) {
    w.str(key);
    w.value(value);
  }
  let offset = 0;
  const data: Buffer[] = [];
  for (const tensor of tensors) {
    const count = tensor.dims.reduce((a, b) => a * b, 1);
    w.str(tensor.name);
    w.u32(tensor.dims.length);
    for (const d of tensor.dims) w.u64(d);
    w.u32(0); // GGML_TYPE_F32
    w.u64(offset);
    const bytes = Buffer.alloc(count * 4);
    for (let i = 0; i < count; i++) bytes.writeFloatLE(tensor.fill ?? (rand() * 2 - 1) * tensor.scale, i * 4);
    const padded = Math.ceil(bytes.length / ALIGNMENT) * ALIGNMENT;
    data.push(bytes, Buffer.alloc(padded - bytes.length));
    offset += padded;
  }
  w.pad();
  return Buffer.concat([w.buffer(), ...data]);
}

export async function writeTinyGguf(path: string, options?: TinyGgufOptions): Promise<void> {
  await writeFile(path, tinyGguf(options));
}

/**
 * The prompt length the tiny model counts for `messages` under TINY_CHAT_TEMPLATE, worked out by
 * hand: every UTF-8 byte is one token (a space is the one `▁` token), each message ends with `</s>`
 * and a newline, and the prompt ends with `<|assistant|>\n`; the template adds no BOS.
 */
export function tinyPromptTokens(messages: readonly { role: string; content: string }[]): number {
  let n = Buffer.byteLength('<|assistant|>\n');
  for (const m of messages) n += Buffer.byteLength(`<|${m.role}|>\n${m.content}`) + 2;
  return n;
}
