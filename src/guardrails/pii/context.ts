// Context words: what a few detectors need to see near a number to accept it (a bank account is just
// digits without 계좌 or a bank's name), and the labels that say a number is a record of a thing (주문번호,
// 영수증) rather than a person's. Only candidates that need it look, each within a bounded window, so the
// cost is paid per such candidate, never per character of the prompt.
import { digitValue, isAsciiLetter, isInlineSpace } from './chars.ts';

export const CONTEXT_PERSONAL = 1; // 주민등록번호
export const CONTEXT_FOREIGNER = 2; // 외국인등록번호
export const CONTEXT_CORPORATE = 4; // 법인등록번호
export const CONTEXT_BUSINESS = 8; // 사업자등록번호
export const CONTEXT_DRIVER = 16; // 운전면허
export const CONTEXT_HEALTH = 32; // 건강보험
export const CONTEXT_BANK = 64; // 계좌
/** Words that say the number identifies a thing, not a person (주문번호, 송장…). */
export const CONTEXT_NOT_PERSONAL = 128;

/**
 * How far back (UTF-16 units) a context word may start: enough for "계좌번호는 신한은행 " or
 * "예금주 홍길동, " before the number, short enough that the previous sentence's topic rarely leaks in.
 */
export const CONTEXT_WINDOW = 24;

const WORDS: ReadonlyArray<readonly [string, number]> = [
  ['주민', CONTEXT_PERSONAL],
  ['외국인', CONTEXT_FOREIGNER],
  ['법인', CONTEXT_CORPORATE],
  ['사업자', CONTEXT_BUSINESS],
  ['면허', CONTEXT_DRIVER],
  ['운전', CONTEXT_DRIVER],
  ['건강보험', CONTEXT_HEALTH],
  ['보험증', CONTEXT_HEALTH],
  ['건보', CONTEXT_HEALTH],
  ['의료보험', CONTEXT_HEALTH],
  ['계좌', CONTEXT_BANK],
  ['입금', CONTEXT_BANK],
  ['송금', CONTEXT_BANK],
  ['이체', CONTEXT_BANK],
  ['예금주', CONTEXT_BANK],
  ['통장', CONTEXT_BANK],
  ['은행', CONTEXT_BANK],
  ['뱅크', CONTEXT_BANK],
  ['신한', CONTEXT_BANK],
  ['농협', CONTEXT_BANK],
  ['카카오', CONTEXT_BANK],
  ['토스', CONTEXT_BANK],
  ['우체국', CONTEXT_BANK],
  ['새마을', CONTEXT_BANK],
  ['신협', CONTEXT_BANK],
  ['수협', CONTEXT_BANK],
  ['KB', CONTEXT_BANK],
  ['IBK', CONTEXT_BANK],
  ['NH', CONTEXT_BANK],
  ['주문', CONTEXT_NOT_PERSONAL],
  ['송장', CONTEXT_NOT_PERSONAL],
  ['영수증', CONTEXT_NOT_PERSONAL],
  ['접수', CONTEXT_NOT_PERSONAL],
  ['예약', CONTEXT_NOT_PERSONAL],
  ['거래번호', CONTEXT_NOT_PERSONAL],
  ['승인번호', CONTEXT_NOT_PERSONAL],
  ['바코드', CONTEXT_NOT_PERSONAL],
  ['상품', CONTEXT_NOT_PERSONAL],
  ['모델', CONTEXT_NOT_PERSONAL],
  ['일련번호', CONTEXT_NOT_PERSONAL],
  ['시리얼', CONTEXT_NOT_PERSONAL],
  // English words (lower-case here) match in any case, at the start of an ASCII word: "corp_reg_no=",
  // "Bank account", "ACCT" — but not "incorporated" or "databank".
  ['corp', CONTEXT_CORPORATE],
  ['crn', CONTEXT_CORPORATE],
  ['business', CONTEXT_BUSINESS],
  ['brn', CONTEXT_BUSINESS],
  ['insurance', CONTEXT_HEALTH],
  ['account', CONTEXT_BANK],
  ['acct', CONTEXT_BANK],
  ['bank', CONTEXT_BANK],
  ['order', CONTEXT_NOT_PERSONAL],
  ['invoice', CONTEXT_NOT_PERSONAL],
  ['tracking', CONTEXT_NOT_PERSONAL],
];

/** An all-lower-case ASCII word: matched in any case, only where an ASCII word starts. */
function isEnglishWord(word: string): boolean {
  return /^[a-z]+$/.test(word);
}

/**
 * Bank names that are also everyday words (우리 "we", 하나 "one", 기업 "company", 국민 "citizens",
 * 제일 "most"): they count only right before the number ("우리 1002-123-456789"), not anywhere in the window.
 */
export const ADJACENT_BANK_NAMES = [
  '국민',
  '우리',
  '하나',
  '기업',
  '제일',
  'SC',
  '씨티',
  '케이뱅크',
  '부산',
  '대구',
  '경남',
  '광주',
  '전북',
  '제주',
] as const;

/** Regions printed before the older 운전면허번호 ("서울 12-345678-90"). */
export const LICENSE_REGIONS = [
  '서울',
  '부산',
  '경기',
  '강원',
  '충북',
  '충남',
  '전북',
  '전남',
  '경북',
  '경남',
  '제주',
  '대구',
  '인천',
  '광주',
  '대전',
  '울산',
] as const;

interface ContextWord {
  word: string;
  bit: number;
  english: boolean;
}

// Words indexed by their first code unit (both cases for English words), so the window scan does one
// typed-array read per character and a comparison only where a word could begin.
const firstUnitSlot = new Uint8Array(65536);
const slots: ContextWord[][] = [[]];
function index(unit: number, entry: ContextWord): void {
  let slot = firstUnitSlot[unit]!;
  if (slot === 0) {
    slot = slots.length;
    firstUnitSlot[unit] = slot;
    slots.push([]);
  }
  slots[slot]!.push(entry);
}
for (const [word, bit] of WORDS) {
  const entry = { word, bit, english: isEnglishWord(word) };
  index(word.charCodeAt(0), entry);
  if (entry.english) index(word.toUpperCase().charCodeAt(0), entry);
}

/** Whether the lower-case ASCII `word` is at text[p…] in any case. */
function startsWithCaseless(text: string, word: string, p: number): boolean {
  if (p + word.length > text.length) return false;
  for (let k = 0; k < word.length; k++) {
    // ASCII letters only: setting bit 5 lower-cases a capital and leaves a lower-case letter alone
    const c = text.charCodeAt(p + k);
    if (!isAsciiLetter(c) || (c | 0x20) !== word.charCodeAt(k)) return false;
  }
  return true;
}

/** The context classes (bit mask) of the words starting in the window before `start`. */
export function contextBefore(text: string, start: number): number {
  let mask = 0;
  for (let p = start > CONTEXT_WINDOW ? start - CONTEXT_WINDOW : 0; p < start; p++) {
    const slot = firstUnitSlot[text.charCodeAt(p)]!;
    if (slot === 0) continue;
    for (const { word, bit, english } of slots[slot]!) {
      if (!english) {
        if (text.startsWith(word, p)) mask |= bit;
      } else if ((p === 0 || !isAsciiLetter(text.charCodeAt(p - 1))) && startsWithCaseless(text, word, p)) {
        mask |= bit;
      }
    }
  }
  return mask;
}

/**
 * How far after a number (UTF-16 units) an account word may start, for Korean word order:
 * "110-123-456789로 송금했습니다", "…(으)로 입금", "… 계좌로". Short, and cut at the next digit or
 * sentence end, so the word belongs to this number and not to the next one.
 */
export const AFTER_WINDOW = 12;

/** Words that make the number before them an account; other bank words (은행, 예금주) count only before it. */
const ACCOUNT_WORDS_AFTER = ['송금', '입금', '이체', '계좌'] as const;
const accountWordFirstUnit = new Uint8Array(65536);
for (const word of ACCOUNT_WORDS_AFTER) accountWordFirstUnit[word.charCodeAt(0)] = 1;

/** Whether an account word (송금, 입금, 이체, 계좌) starts within AFTER_WINDOW units after `end`. */
export function accountWordAfter(text: string, end: number): boolean {
  const limit = end + AFTER_WINDOW < text.length ? end + AFTER_WINDOW : text.length;
  for (let p = end; p < limit; p++) {
    const c = text.charCodeAt(p);
    if (digitValue(c) >= 0 || isSentenceEnd(c)) return false;
    if (accountWordFirstUnit[c] === 1) {
      for (const word of ACCOUNT_WORDS_AFTER) if (text.startsWith(word, p)) return true;
    }
  }
  return false;
}

/** A full stop, question or exclamation mark, or a line break: the end of the number's sentence. */
function isSentenceEnd(c: number): boolean {
  return c === 0x2e || c === 0x3f || c === 0x21 || c === 0x0a || c === 0x0d || c === 0x3002;
}

/**
 * Labels that name a number as a record of a thing (an order, a receipt, a parcel, a reservation): a
 * stem followed by 번호 ("주문번호", "영수증 번호", "처방전 교부번호", "자산관리번호") or a word that
 * is itself the document ("송장", "운송장", "영수증").
 */
const RECORD_STEMS = [
  '주문',
  '접수',
  '교부',
  '발급',
  '예약',
  '송장',
  '영수증',
  '승인',
  '거래',
  '관리',
  '문서',
  '일련',
] as const;
const RECORD_WORDS = ['송장', '영수증'] as const;

/** Topic and subject particles a label may take before its number: "주문번호는 …", "영수증이 …". */
function isParticle(c: number): boolean {
  return c === 0xb294 || c === 0xc740 || c === 0xc774 || c === 0xac00; // 는 은 이 가
}

/**
 * Whether a record label (주문번호, 접수번호, 송장, 영수증 …) ends right before `start`: allowing
 * spaces, a colon, '=' or an opening parenthesis, and a topic or subject particle, in between.
 */
export function afterRecordLabel(text: string, start: number): boolean {
  let p = skipSpaces(text, start);
  if (p > 0) {
    const c = text.charCodeAt(p - 1);
    if (c === 0x3a || c === 0xff1a || c === 0x3d || c === 0x28) p = skipSpaces(text, p - 1);
  }
  if (p > 0 && isParticle(text.charCodeAt(p - 1))) p--;
  if (p >= 2 && text.startsWith('번호', p - 2)) {
    let q = p - 2;
    if (q > 0 && isInlineSpace(text.charCodeAt(q - 1))) q--;
    return endsAt(text, q, RECORD_STEMS);
  }
  return endsAt(text, p, RECORD_WORDS);
}

/** At most two spaces back from `p`. */
function skipSpaces(text: string, p: number): number {
  if (p > 0 && isInlineSpace(text.charCodeAt(p - 1))) p--;
  if (p > 0 && isInlineSpace(text.charCodeAt(p - 1))) p--;
  return p;
}

function endsAt(text: string, end: number, words: readonly string[]): boolean {
  for (const word of words) {
    if (end >= word.length && text.startsWith(word, end - word.length)) return true;
  }
  return false;
}

/**
 * Where the one of `names` that ends right before `start` begins (a space, a colon or both allowed in
 * between), or -1.
 */
export function nameBefore(text: string, start: number, names: readonly string[]): number {
  let end = start;
  if (end > 0 && isInlineSpace(text.charCodeAt(end - 1))) end--;
  if (end > 0 && (text.charCodeAt(end - 1) === 0x3a || text.charCodeAt(end - 1) === 0xff1a)) end--;
  for (const name of names) {
    if (end >= name.length && text.startsWith(name, end - name.length)) return end - name.length;
  }
  return -1;
}

/** Whether one of `names` ends right before `start`, allowing a space, a colon or both in between. */
export function precededByName(text: string, start: number, names: readonly string[]): boolean {
  return nameBefore(text, start, names) >= 0;
}
