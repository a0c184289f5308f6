import { PII_LABELS, type PiiType } from './pii/types.ts';

/**
 * One call's stable placeholders: the same value gets the same placeholder (`[주민등록번호_1]`), so the
 * model can still tell two people apart and refer back to one; the client gets the values back.
 * Kept only in memory, for the life of the call.
 */
export class Pseudonyms {
  private readonly byValue = new Map<string, string>();
  /** Placeholder → the value it stands for. */
  private readonly originals = new Map<string, string>();
  private readonly counts = new Map<PiiType, number>();
  /** The longest placeholder handed out: no longer text can still become one. */
  private longest = 0;

  get size(): number {
    return this.originals.size;
  }

  placeholder(type: PiiType, value: string): string {
    const key = `${type}\u0000${value}`;
    const known = this.byValue.get(key);
    if (known !== undefined) return known;
    const n = (this.counts.get(type) ?? 0) + 1;
    this.counts.set(type, n);
    const placeholder = `[${PII_LABELS[type]}_${n}]`;
    this.byValue.set(key, placeholder);
    this.originals.set(placeholder, value);
    if (placeholder.length > this.longest) this.longest = placeholder.length;
    return placeholder;
  }

  /** `text` with every placeholder of this call replaced by its value; anything else as it was. */
  restore(text: string): string {
    if (this.originals.size === 0) return text;
    let out = '';
    let from = 0;
    let i = text.indexOf('[');
    while (i !== -1) {
      const close = text.indexOf(']', i + 1);
      if (close === -1) break;
      const value = close - i < this.longest ? this.originals.get(text.slice(i, close + 1)) : undefined;
      if (value !== undefined) {
        out += text.slice(from, i) + value;
        from = close + 1;
        i = text.indexOf('[', from);
      } else {
        // another `[` before `]` may start the real placeholder (`[[주민등록번호_1]`)
        i = text.indexOf('[', i + 1);
      }
    }
    return from === 0 ? text : out + text.slice(from);
  }

  /** How many characters at the end of `text` could still become a placeholder with what follows. */
  heldBack(text: string): number {
    const i = text.lastIndexOf('[');
    if (i === -1) return 0;
    const tail = text.length - i;
    if (tail >= this.longest || text.indexOf(']', i) !== -1) return 0;
    const suffix = text.slice(i);
    for (const placeholder of this.originals.keys()) if (placeholder.startsWith(suffix)) return tail;
    return 0;
  }
}

/**
 * Restores one streamed text (one choice's content, or one tool call's arguments) chunk by chunk:
 * a placeholder split across chunks is held back until it is whole, then sent as its value; text that
 * turns out not to be a placeholder is sent as it is, as soon as that is clear.
 */
export class StreamRestorer {
  private pending = '';

  constructor(private readonly pseudonyms: Pseudonyms) {}

  /** What can be sent now of everything received so far. */
  push(delta: string): string {
    const text = this.pending + delta;
    const hold = this.pseudonyms.heldBack(text);
    this.pending = hold === 0 ? '' : text.slice(text.length - hold);
    return this.pseudonyms.restore(hold === 0 ? text : text.slice(0, text.length - hold));
  }

  /** The stream ended: whatever was held back, as it is. */
  end(): string {
    const rest = this.pending;
    this.pending = '';
    return this.pseudonyms.restore(rest);
  }

  get holding(): boolean {
    return this.pending.length > 0;
  }
}
