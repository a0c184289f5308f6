// 여권번호: the letter of the passport type (M, S, R, O, D), then 8 digits (before 2021) or 3 digits, a
// letter and 4 digits (since 2021). Upper case only, and a whole token: "AM12345678" or "M12345678-1"
// is some other code.
import { digitValue, isAsciiAlnum, isDash, isDot, isUpperAscii } from './chars.ts';

export function isPassportLetter(c: number): boolean {
  return c === 0x4d || c === 0x53 || c === 0x52 || c === 0x4f || c === 0x44; // M S R O D
}

/** The end of the passport number starting at the letter text[i], or -1. */
export function passportEnd(text: string, i: number): number {
  const n = text.length;
  const end = i + 9;
  if (end > n) return -1;
  if (i > 0) {
    const before = text.charCodeAt(i - 1);
    if (isAsciiAlnum(before) || before === 0x5f) return -1;
    if ((isDash(before) || before === 0x2f) && i > 1 && isAsciiAlnum(text.charCodeAt(i - 2))) return -1;
  }
  for (let p = i + 1; p < end; p++) {
    const c = text.charCodeAt(p);
    if (digitValue(c) >= 0) continue;
    if (p === i + 4 && isUpperAscii(c)) continue;
    return -1;
  }
  if (end < n) {
    const after = text.charCodeAt(end);
    if (isAsciiAlnum(after) || after === 0x5f || after === 0x40 || digitValue(after) >= 0) return -1;
    if ((isDash(after) || isDot(after)) && end + 1 < n && digitValue(text.charCodeAt(end + 1)) >= 0)
      return -1;
  }
  return end;
}
