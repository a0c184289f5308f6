// Context words: what a few detectors need to see shortly before a number to accept it (a bank account
// is just digits without 계좌 or a bank's name). Only candidates that need it look, so the cost is paid
// per such candidate, never per character of the prompt.
import { isInlineSpace } from './chars.ts';

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
  ['order', CONTEXT_NOT_PERSONAL],
  ['Order', CONTEXT_NOT_PERSONAL],
  ['invoice', CONTEXT_NOT_PERSONAL],
  ['Invoice', CONTEXT_NOT_PERSONAL],
  ['tracking', CONTEXT_NOT_PERSONAL],
];

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

// Words indexed by their first code unit, so the window scan does one typed-array read per character
// and a startsWith only where a word could begin.
const firstUnitSlot = new Uint8Array(65536);
const slots: Array<ReadonlyArray<readonly [string, number]>> = [[]];
for (const entry of WORDS) {
  const unit = entry[0].charCodeAt(0);
  let slot = firstUnitSlot[unit]!;
  if (slot === 0) {
    slot = slots.length;
    firstUnitSlot[unit] = slot;
    slots.push([]);
  }
  (slots[slot] as Array<readonly [string, number]>).push(entry);
}

/** The context classes (bit mask) of the words starting in the window before `start`. */
export function contextBefore(text: string, start: number): number {
  let mask = 0;
  for (let p = start > CONTEXT_WINDOW ? start - CONTEXT_WINDOW : 0; p < start; p++) {
    const slot = firstUnitSlot[text.charCodeAt(p)]!;
    if (slot === 0) continue;
    for (const [word, bit] of slots[slot]!) {
      if (text.startsWith(word, p)) mask |= bit;
    }
  }
  return mask;
}

/** Whether one of `names` ends right before `start`, allowing a space, a colon or both in between. */
export function precededByName(text: string, start: number, names: readonly string[]): boolean {
  let end = start;
  if (end > 0 && isInlineSpace(text.charCodeAt(end - 1))) end--;
  if (end > 0 && (text.charCodeAt(end - 1) === 0x3a || text.charCodeAt(end - 1) === 0xff1a)) end--;
  for (const name of names) {
    if (end >= name.length && text.startsWith(name, end - name.length)) return true;
  }
  return false;
}
