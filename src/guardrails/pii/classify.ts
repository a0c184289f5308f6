// Classifies one numeric candidate found by the scanner: decoded digits plus the lengths of the digit
// groups as written ("010-1234-5678" is 3,4,4; "01012345678" one group of 11). A written form must
// match a grouping the identifier is really written in; a glued form relies on checks and context.
import {
  businessCheckDigitValid,
  corporateCheckDigitValid,
  ean13Valid,
  foreignerCheckDigitValid,
  isCalendarDate,
  luhnValid,
  rrnCheckDigitValid,
} from './checksums.ts';
import {
  ADJACENT_BANK_NAMES,
  accountWordAfter,
  afterRecordLabel,
  CONTEXT_BANK,
  CONTEXT_BUSINESS,
  CONTEXT_CORPORATE,
  CONTEXT_DRIVER,
  CONTEXT_FOREIGNER,
  CONTEXT_HEALTH,
  CONTEXT_NOT_PERSONAL,
  CONTEXT_PERSONAL,
  contextBefore,
  LICENSE_REGIONS,
  nameBefore,
  precededByName,
} from './context.ts';
import type { PiiType } from './types.ts';

/** How the groups of a candidate are separated. */
export const SEP_NONE = 0; // one group of digits
export const SEP_DASH = 1;
export const SEP_DOT = 2;
export const SEP_SPACE = 3;
export const SEP_MIXED = 4;

/** A grouping as one number (5 bits per group, count on top), so a shape test is one comparison. */
export function shapeCode(g: ArrayLike<number>, count: number): number {
  let code = count << 20;
  for (let i = 0; i < count && i < 4; i++) code |= g[i]! << (5 * i);
  return code;
}

function shape(...groups: number[]): number {
  return shapeCode(groups, groups.length);
}

const RRN_SHAPE = shape(6, 7);
const BUSINESS_SHAPE = shape(3, 2, 5);
const LICENSE_SHAPE = shape(2, 2, 6, 2);
const OLD_LICENSE_SHAPE = shape(2, 6, 2);
const HEALTH_SHAPE = shape(1, 10);
const CARD_SHAPES = new Set([shape(4, 4, 4, 4), shape(4, 6, 5), shape(4, 6, 4)]);
const REPRESENTATIVE_SHAPE = shape(4, 4);
// The account groupings of Korean banks (10-14 digits). 6-2-6 KB국민, 우체국, 단위농협; 3-2-4-3 KB국민
// (old); 3-3-6 신한, 케이뱅크, 신협; 3-2-6 신한 (old), SC제일; 4-3-6 우리; 3-6-5 하나; 3-4-4-2 NH농협;
// 3-6-2-3 IBK기업; 4-2-7 카카오뱅크; 4-4-4 토스뱅크; 4-4-4-1 새마을금고; 3-2-6-1 대구.
const BANK_SHAPES = new Set([
  shape(6, 2, 6),
  shape(3, 2, 4, 3),
  shape(3, 3, 6),
  shape(3, 2, 6),
  shape(4, 3, 6),
  shape(3, 6, 5),
  shape(3, 4, 4, 2),
  shape(3, 6, 2, 3),
  shape(4, 2, 7),
  shape(4, 4, 4),
  shape(4, 4, 4, 1),
  shape(3, 2, 6, 1),
]);
// Representative numbers written without a hyphen are only taken with a prefix in use, since an
// 8-digit number is otherwise too common (amounts, counts).
const REPRESENTATIVE_PREFIXES = new Set([
  1522, 1533, 1544, 1566, 1577, 1588, 1599, 1600, 1644, 1661, 1666, 1668, 1670, 1688, 1800, 1811, 1833, 1855,
  1877, 1899,
]);
const AREA_CODES = new Set([31, 32, 33, 41, 42, 43, 44, 51, 52, 53, 54, 55, 61, 62, 63, 64]);

// Nobody is born in the future: "991231-3…" (2099) is no 주민등록번호. Read once: a process running
// across New Year is a year too strict about the new year's newborns until it restarts.
const THIS_YEAR = new Date().getFullYear();

// The context of the candidate being classified: computed at most once, and only if a rule asks.
// classifyNumber resets it, so it never outlives its candidate (nor keeps a prompt alive).
let contextMask = -1;

function context(text: string, start: number): number {
  if (contextMask < 0) contextMask = contextBefore(text, start);
  return contextMask;
}

// Where the finding classifyNumber last returned starts: the candidate's start, except for the older
// licence form, whose region name is part of the number ("서울 12-345678-90").
let findingStart = 0;

/** Where the finding of the last non-null classifyNumber starts (at or before the candidate). */
export function classifiedStart(): number {
  return findingStart;
}

/**
 * The type of the numeric candidate text[start, end), or null; its finding starts at
 * classifiedStart(). `d` holds its `n` digits.
 */
export function classifyNumber(
  text: string,
  start: number,
  end: number,
  d: Uint8Array,
  n: number,
  g: ArrayLike<number>,
  gc: number,
  sep: number,
): PiiType | null {
  contextMask = -1;
  findingStart = start;
  const code = shapeCode(g, gc);
  // "1588.1234" or "1.2345678901" is a decimal; dotted identifiers have three groups or more, except
  // 6.7 digits, which only a 주민등록번호-shaped number has (and must then be a valid date)
  if (sep === SEP_MIXED || (sep === SEP_DOT && gc < 3 && code !== RRN_SHAPE)) return null;
  const glued = gc === 1;
  if (n === 13) {
    const type = classifyThirteen(text, start, d, glued, code);
    if (type !== null) return type;
  }
  if (n >= 14 && n <= 16 && isCard(d, n, glued, code)) return 'card';
  if (n === 10 && d[0] !== 0 && businessCheckDigitValid(d)) {
    // a bare 10-digit number is as often a Unix timestamp or an order number: it needs 사업자 before it
    if (code === BUSINESS_SHAPE || (glued && (context(text, start) & CONTEXT_BUSINESS) !== 0)) {
      return 'business_registration';
    }
  }
  if (n === 12 && isLicenseRegion(d)) {
    if (code === LICENSE_SHAPE || (glued && (context(text, start) & CONTEXT_DRIVER) !== 0))
      return 'driver_license';
  }
  if (n === 10 && code === OLD_LICENSE_SHAPE) {
    // the region name is part of the older licence number: the finding (and the mask) covers it
    const region = nameBefore(text, start, LICENSE_REGIONS);
    if (region >= 0) {
      findingStart = region;
      return 'driver_license';
    }
  }
  if (isPhoneNumber(d, n, g, gc)) return 'phone';
  // Health-insurance numbers and accounts have no check digit: the words around them are all the
  // evidence, and a record label right before ("접수번호 …", "승인번호 …") says what the number is.
  if (n === 11 && (glued || code === HEALTH_SHAPE) && (context(text, start) & CONTEXT_HEALTH) !== 0) {
    if (!afterRecordLabel(text, start)) return 'health_insurance';
  }
  if (n >= 10 && n <= 14 && (glued || BANK_SHAPES.has(code))) {
    if (
      ((context(text, start) & CONTEXT_BANK) !== 0 ||
        precededByName(text, start, ADJACENT_BANK_NAMES) ||
        accountWordAfter(text, end)) &&
      !afterRecordLabel(text, start)
    ) {
      return 'bank_account';
    }
  }
  return null;
}

/**
 * 13 digits: 주민등록번호, 외국인등록번호 or 법인등록번호 (written 6-7 or glued).
 *
 * - 법인 just before and the corporate checksum holds: corporate.
 * - Otherwise a valid birth date, not in the future, for the century the 7th digit gives (1,2:
 *   1900s; 3,4: 2000s; 9,0: 1800s; 5,6 and 7,8 the same for foreigners) is a person when written
 *   6-7: numbers issued since October 2020 carry no check digit, so date and gender digit are the
 *   check. One exception: a birth date before October 2020 whose personal check digit fails while
 *   the corporate one holds is a corporate number (numbers issued before then satisfy their check
 *   digit, and most issued since belong to people born since).
 * - Written 6-7 right after a record label (주문번호, 접수번호, 교부번호, 송장, 영수증 …) with no
 *   check digit holding (personal, foreigner or corporate), it is an order or receipt number written
 *   like one. A number whose check digit holds stays what it is even there: people paste their own
 *   number into any field.
 * - Glued, 13 digits are as often order numbers, barcodes or millisecond timestamps: a person needs
 *   주민/외국인 before it, or the check digit with no word like 주문/송장 before it and not a Korean
 *   EAN-13 barcode (880…, barcode checksum).
 * - Without a valid date, only the corporate checksum remains: 6-7 written, or glued after 법인.
 */
function classifyThirteen(
  text: string,
  start: number,
  d: Uint8Array,
  glued: boolean,
  code: number,
): PiiType | null {
  if (!glued && code !== RRN_SHAPE) return null;
  const corporateValid = corporateCheckDigitValid(d);
  if (corporateValid && (context(text, start) & CONTEXT_CORPORATE) !== 0) return 'corporate_registration';
  const gender = d[6]!;
  const foreigner = gender >= 5 && gender <= 8;
  const century =
    gender === 1 || gender === 2 || gender === 5 || gender === 6
      ? 1900
      : gender === 3 || gender === 4 || gender === 7 || gender === 8
        ? 2000
        : 1800;
  const yy = d[0]! * 10 + d[1]!;
  const mm = d[2]! * 10 + d[3]!;
  const dd = d[4]! * 10 + d[5]!;
  if (isCalendarDate(century + yy, mm, dd) && century + yy <= THIS_YEAR) {
    const type: PiiType = foreigner ? 'foreigner_rrn' : 'rrn';
    const checkValid = rrnCheckDigitValid(d) || (foreigner && foreignerCheckDigitValid(d));
    if (glued) {
      const mask = context(text, start);
      if ((mask & (CONTEXT_PERSONAL | CONTEXT_FOREIGNER)) !== 0) return type;
      if (checkValid && (mask & CONTEXT_NOT_PERSONAL) === 0 && !isKoreanBarcode(d)) return type;
    } else {
      if (checkValid) return type;
      const issuedUnderNewScheme = century === 2000 && (yy > 20 || (yy === 20 && mm >= 10));
      if (corporateValid && !issuedUnderNewScheme) return 'corporate_registration';
      // no check digit holds: a record label right before ("주문번호 200101-2340723") makes it an
      // order or receipt number written like a registration number
      if (afterRecordLabel(text, start)) return null;
      return type;
    }
  }
  if (corporateValid && !glued) return 'corporate_registration';
  return null;
}

function isKoreanBarcode(d: Uint8Array): boolean {
  return d[0] === 8 && d[1] === 8 && d[2] === 0 && ean13Valid(d);
}

function isCard(d: Uint8Array, n: number, glued: boolean, code: number): boolean {
  if (!glued && !CARD_SHAPES.has(code)) return false;
  const d0 = d[0]!;
  const d1 = d[1]!;
  let knownRange: boolean;
  if (n === 16) {
    const first4 = d0 * 1000 + d1 * 100 + d[2]! * 10 + d[3]!;
    knownRange =
      d0 === 4 || // Visa
      (d0 === 5 && d1 >= 1 && d1 <= 5) || // Mastercard
      (first4 >= 2221 && first4 <= 2720) || // Mastercard 2-series
      (d0 === 3 && d1 === 5) || // JCB
      d0 === 6 || // Discover, UnionPay
      d0 === 9; // Korean domestic-only cards
  } else if (n === 15) {
    knownRange = d0 === 3 && (d1 === 4 || d1 === 7); // American Express
  } else {
    knownRange = d0 === 3 && (d1 === 0 || d1 === 6 || d1 === 8); // Diners Club
  }
  return knownRange && luhnValid(d, n);
}

function isLicenseRegion(d: Uint8Array): boolean {
  const region = d[0]! * 10 + d[1]!;
  return (region >= 11 && region <= 26) || region === 28;
}

/**
 * A Korean phone number in national form (leading 0): mobile 010 (11 digits) and 011/016-019 (10 or
 * 11), Seoul 02 (9 or 10), the area codes 031-064 (10 or 11), 070 (10 or 11), 050x (11 or 12); and
 * 15xx/16xx/18xx representative numbers (8). Written forms are prefix-middle-last with a 4-digit last
 * group (1588-1234 for representative numbers).
 */
export function isPhoneNumber(d: Uint8Array, n: number, g: ArrayLike<number>, gc: number): boolean {
  const d1 = d[1]!;
  const d2 = d[2]!;
  if (d[0] !== 0) {
    if (n !== 8 || d[0] !== 1 || !(d1 === 5 || d1 === 6 || d1 === 8)) return false;
    if (gc === 1) return REPRESENTATIVE_PREFIXES.has(1000 + d1 * 100 + d2 * 10 + d[3]!);
    return shapeCode(g, gc) === REPRESENTATIVE_SHAPE;
  }
  let prefix = 3;
  let shortest = 10;
  let longest = 11;
  if (d1 === 1) {
    if (d2 === 0) shortest = 11;
    else if (!(d2 === 1 || (d2 >= 6 && d2 <= 9))) return false;
  } else if (d1 === 2) {
    prefix = 2;
    shortest = 9;
    longest = 10;
  } else if (d1 === 5 && d2 === 0) {
    if (d[3]! < 2 || d[3]! > 8) return false;
    prefix = 4;
    shortest = 11;
    longest = 12;
  } else if (!AREA_CODES.has(d1 * 10 + d2) && !(d1 === 7 && d2 === 0)) return false;
  if (n < shortest || n > longest) return false;
  if (gc === 1) return true;
  return gc === 3 && g[0] === prefix && g[2] === 4;
}
