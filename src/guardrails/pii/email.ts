// E-mail addresses, found from their '@': a practical subset of RFC 5321 — an ASCII dot-atom local
// part of letters, digits and . _ % + - (at most 64), and a domain of at least two labels ending in an
// alphabetic TLD. Korean text glued on either side ends the address ("hong@example.co.kr로").
import { isAsciiAlnum, isAsciiLetter } from './chars.ts';

const MAX_LOCAL = 64;
const MAX_DOMAIN = 253;
const MAX_LABEL = 63;

function isLocalChar(c: number): boolean {
  return isAsciiAlnum(c) || c === 0x2e || c === 0x5f || c === 0x25 || c === 0x2b || c === 0x2d;
}

function isLabelChar(c: number): boolean {
  return isAsciiAlnum(c) || c === 0x2d;
}

/** Where the address around the '@' at text[at] starts; -1 when there is none. Pair with {@link emailEnd}. */
export function emailStart(text: string, at: number): number {
  let s = at;
  while (s > 0 && isLocalChar(text.charCodeAt(s - 1))) {
    s--;
    // a longer run is not an address, and scanning it further would cost per '@'
    if (at - s > MAX_LOCAL) return -1;
  }
  if (s > 0 && text.charCodeAt(s - 1) === 0x40) return -1;
  // a dot before the address is punctuation, not part of it
  while (s < at && text.charCodeAt(s) === 0x2e) s++;
  if (s === at || text.charCodeAt(at - 1) === 0x2e) return -1;
  for (let p = s + 1; p < at; p++) {
    if (text.charCodeAt(p) === 0x2e && text.charCodeAt(p - 1) === 0x2e) return -1;
  }
  return s;
}

/** Where the domain after the '@' at text[at] ends; -1 when it is no domain. */
export function emailEnd(text: string, at: number): number {
  const n = text.length;
  let labelStart = at + 1;
  let labels = 0;
  for (;;) {
    let p = labelStart;
    while (p < n && isLabelChar(text.charCodeAt(p))) {
      p++;
      if (p - at - 1 > MAX_DOMAIN) return -1;
    }
    const length = p - labelStart;
    if (length === 0 || length > MAX_LABEL) return -1;
    if (text.charCodeAt(labelStart) === 0x2d || text.charCodeAt(p - 1) === 0x2d) return -1;
    labels++;
    // a dot continues the domain only if a label follows; otherwise it ends the sentence
    if (p + 1 < n && text.charCodeAt(p) === 0x2e && isLabelChar(text.charCodeAt(p + 1))) {
      labelStart = p + 1;
      continue;
    }
    if (labels < 2 || !isTopLevelDomain(text, labelStart, p)) return -1;
    if (p < n && (text.charCodeAt(p) === 0x40 || text.charCodeAt(p) === 0x5f)) return -1;
    return p;
  }
}

function isTopLevelDomain(text: string, start: number, end: number): boolean {
  if (end - start < 2) return false;
  if (text.startsWith('xn--', start)) return true;
  for (let p = start; p < end; p++) if (!isAsciiLetter(text.charCodeAt(p))) return false;
  return true;
}
