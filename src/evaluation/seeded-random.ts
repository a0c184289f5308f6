import { createHash } from 'node:crypto';

/**
 * mulberry32: a small seeded generator. A bootstrap, a drawing of lots or a shuffle of choices must
 * come out the same for the same seed on every replica and every run, so nothing here uses Math.random.
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A seed from text (a round id, an arena name): FNV-1a, 32 bits. */
export function seedOf(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** A 32-bit seed from a run's seed and a name (an item id), so each item's draw is its own. */
export function derivedSeed(seed: number, name: string): number {
  return createHash('sha256').update(`${seed}\u0000${name}`).digest().readUInt32LE(0);
}
