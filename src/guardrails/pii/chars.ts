// Character classes of the PII scanner, on UTF-16 code units: the scanner never builds a normalised
// copy of the text, so an offset it reports is an offset into the caller's string.

/** The value of an ASCII or full-width digit (０-９), or -1. */
export function digitValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0xff10 && code <= 0xff19) return code - 0xff10;
  return -1;
}

/** ASCII hyphen, the Unicode hyphens and dashes people paste (‐ ‑ ‒ – — ―), minus sign, full-width and small hyphen. */
export function isDash(code: number): boolean {
  return (
    code === 0x2d ||
    (code >= 0x2010 && code <= 0x2015) ||
    code === 0x2212 ||
    code === 0xff0d ||
    code === 0xfe63 ||
    code === 0xfe58
  );
}

export function isDot(code: number): boolean {
  return code === 0x2e || code === 0xff0e;
}

/** A space that may sit inside a written number; line breaks and tabs end it. */
export function isInlineSpace(code: number): boolean {
  return code === 0x20 || code === 0xa0 || code === 0x3000;
}

export function isAsciiLetter(code: number): boolean {
  return (code >= 0x61 && code <= 0x7a) || (code >= 0x41 && code <= 0x5a);
}

export function isAsciiAlnum(code: number): boolean {
  return (code >= 0x30 && code <= 0x39) || isAsciiLetter(code);
}

export function isUpperAscii(code: number): boolean {
  return code >= 0x41 && code <= 0x5a;
}

export function isPlus(code: number): boolean {
  return code === 0x2b || code === 0xff0b;
}
