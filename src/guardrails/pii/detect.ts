// Korean PII detection: one pass over the prompt. Digits start the numeric scanner (runs.ts), '@'
// the e-mail matcher, a passport-type capital letter the passport matcher; every other character
// costs one table read, so text without digits or '@' is nearly free.
import { digitValue, isAsciiAlnum } from './chars.ts';
import { emailEnd, emailStart } from './email.ts';
import { FindingList } from './findings.ts';
import { isPassportLetter, passportEnd } from './passport.ts';
import { scanNumberRun } from './runs.ts';
import { PII_LABELS, type PiiFinding, type PiiType } from './types.ts';

/**
 * The PII in `text`, sorted by start and never overlapping; offsets are UTF-16 units of `text` itself
 * (full-width digits included), `end` exclusive. `only` restricts what is reported, not what is
 * considered: a number that is a card is not reported as a bank account when only accounts are asked.
 */
// What each UTF-16 unit starts, so the common case (Hangul, spaces, punctuation) is one table read.
const SKIP = 0;
const DIGIT = 1;
const AT_SIGN = 2;
const LETTER = 3;
const PASSPORT_LETTER = 4;
const SCAN_CLASS = new Uint8Array(65536);
for (let c = 0x30; c <= 0x39; c++) SCAN_CLASS[c] = DIGIT;
for (let c = 0xff10; c <= 0xff19; c++) SCAN_CLASS[c] = DIGIT;
for (let c = 0x41; c <= 0x5a; c++) SCAN_CLASS[c] = isPassportLetter(c) ? PASSPORT_LETTER : LETTER;
for (let c = 0x61; c <= 0x7a; c++) SCAN_CLASS[c] = LETTER;
SCAN_CLASS[0x40] = AT_SIGN;

/**
 * The PII in `text`, sorted by start and never overlapping; offsets are UTF-16 units of `text` itself
 * (full-width digits included), `end` exclusive. `only` restricts what is reported, not what is
 * considered: a number that is a card is not reported as a bank account when only accounts are asked.
 */
export function detectPii(text: string, only?: ReadonlySet<PiiType>): PiiFinding[] {
  const wantEmail = only === undefined || only.has('email');
  const wantPassport = only === undefined || only.has('passport');
  const wantNumbers = only === undefined || [...only].some((type) => type !== 'email' && type !== 'passport');
  const found = new FindingList();
  const n = text.length;
  let i = 0;
  while (i < n) {
    let kind = SCAN_CLASS[text.charCodeAt(i)]!;
    // the tight loop the common case stays in
    while (kind === SKIP && ++i < n) kind = SCAN_CLASS[text.charCodeAt(i)]!;
    if (kind === SKIP) break;
    if (kind === DIGIT) {
      if (wantNumbers) {
        i = scanNumberRun(text, i, found);
        continue;
      }
    } else if (kind === AT_SIGN) {
      if (wantEmail) {
        const start = emailStart(text, i);
        const end = start < 0 ? -1 : emailEnd(text, i);
        if (end > 0) {
          found.add('email', start, end);
          i = end;
          continue;
        }
      }
    } else {
      if (kind === PASSPORT_LETTER && wantPassport && i + 1 < n && digitValue(text.charCodeAt(i + 1)) >= 0) {
        const end = passportEnd(text, i);
        if (end > 0) {
          found.add('passport', i, end);
          i = end;
          continue;
        }
        // not a passport number: its digits are scanned (and rejected as glued to the letter)
        i++;
        continue;
      }
      // skip the rest of an ASCII word: a capital or digits inside it are no token of their own
      i++;
      while (i < n && isAsciiAlnum(text.charCodeAt(i))) i++;
      continue;
    }
    i++;
  }
  const items = found.items;
  return only === undefined ? items : items.filter((finding) => only.has(finding.type));
}

/** `text` with each finding replaced by its label in brackets, e.g. "[주민등록번호]". */
export function maskPii(text: string, findings: readonly PiiFinding[]): string {
  if (findings.length === 0) return text;
  let ordered = findings;
  for (let k = 1; k < findings.length; k++) {
    if (findings[k]!.start < findings[k - 1]!.start) {
      ordered = [...findings].sort((a, b) => a.start - b.start);
      break;
    }
  }
  let out = '';
  let cursor = 0;
  for (const finding of ordered) {
    // an overlapping or out-of-range finding (not from detectPii) is skipped rather than garbling the text
    if (finding.start < cursor || finding.end > text.length || finding.start >= finding.end) continue;
    out += `${text.slice(cursor, finding.start)}[${PII_LABELS[finding.type]}]`;
    cursor = finding.end;
  }
  return out + text.slice(cursor);
}
