/**
 * Money is bigint micro-won (1 KRW = 1,000,000 µ₩). Prices are KRW per 1M tokens with at most six
 * decimals, so a price is an exact integer of µ₩ per 1M tokens, and a request's cost is
 *   (promptTokens × inputPrice + completionTokens × outputPrice) / 1,000,000  µ₩,
 * rounded half up to a whole µ₩ — the only rounding, at most half a millionth of a won per request.
 */
export type MicroKrw = bigint;

export const MICRO_PER_KRW = 1_000_000n;
const TOKENS_PER_PRICE_UNIT = 1_000_000n;
const MAX_PRICE_KRW_PER_1M = 1_000_000_000n; // a billion won per million tokens: surely a typo beyond

export class PriceFormatError extends Error {
  override name = 'PriceFormatError';
}

/** "1250.5" or 1250.5 (KRW per 1M tokens) → 1_250_500_000 µ₩ per 1M tokens, exactly. */
export function parseKrwPrice(input: unknown): MicroKrw {
  return parseKrw(input, MAX_PRICE_KRW_PER_1M);
}

/** A sum of money above a trillion won is surely a typo (a programme budget is billions). */
const MAX_AMOUNT_KRW = 1_000_000_000_000n;

/** "5000000" or 5000000 (KRW, at most six decimals) → µ₩, exactly. */
export function parseKrwAmount(input: unknown): MicroKrw {
  return parseKrw(input, MAX_AMOUNT_KRW);
}

function parseKrw(input: unknown, max: bigint): MicroKrw {
  let text: string;
  if (typeof input === 'number') {
    if (!Number.isFinite(input)) throw new PriceFormatError('must be a finite number');
    text = String(input);
    if (/e/i.test(text)) throw new PriceFormatError('give prices this small or large as a decimal string');
  } else if (typeof input === 'string') {
    text = input.trim();
  } else {
    throw new PriceFormatError('must be a decimal string or a number (KRW per 1M tokens)');
  }
  const match = /^(\d+)(?:\.(\d{1,6}))?$/.exec(text);
  if (!match) {
    throw new PriceFormatError(
      /^-/.test(text)
        ? 'must not be negative'
        : 'must be a decimal number of KRW with at most 6 decimal places, e.g. "1250.5"',
    );
  }
  const whole = BigInt(match[1]!);
  if (whole >= max) throw new PriceFormatError('is unreasonably large');
  const fraction = BigInt((match[2] ?? '').padEnd(6, '0'));
  return whole * MICRO_PER_KRW + fraction;
}

/** µ₩ → "1250.5" KRW, exact, no trailing zeros. */
export function formatKrw(micro: MicroKrw): string {
  const negative = micro < 0n;
  const abs = negative ? -micro : micro;
  const whole = abs / MICRO_PER_KRW;
  const fraction = (abs % MICRO_PER_KRW).toString().padStart(6, '0').replace(/0+$/, '');
  return `${negative ? '-' : ''}${whole}${fraction ? `.${fraction}` : ''}`;
}

export interface TokenPrices {
  inputMicroPer1M: MicroKrw;
  outputMicroPer1M: MicroKrw;
}

export function costOf(promptTokens: number, completionTokens: number, prices: TokenPrices): MicroKrw {
  const scaled =
    BigInt(promptTokens) * prices.inputMicroPer1M + BigInt(completionTokens) * prices.outputMicroPer1M;
  return (scaled + TOKENS_PER_PRICE_UNIT / 2n) / TOKENS_PER_PRICE_UNIT;
}
