// The numeric scanner: from a digit, reads the run of digits, separators and spaces that a written
// number can span, cuts it into candidates and hands each to classifyNumber. One pass, no regular
// expressions, no allocation but the findings: the state lives in module-level scratch (detection is
// synchronous, so one call never sees another's).
//
// A run is a series of words separated by one space; a word is digit groups joined by a dash (spaces
// allowed on both sides) or a dot (no spaces). A candidate is either one word ("010-1234-5678",
// "9001011234567") or, when words of a single group follow each other ("010 1234 5678"), the whole
// series of them. A series is taken whole or not at all: "010 1234 5678 9" is a longer number, not a
// phone; but a hyphenated or glued word stays a token of its own next to other numbers.
import { digitValue, isAsciiAlnum, isAsciiLetter, isDash, isDot, isInlineSpace, isPlus } from './chars.ts';
import {
  classifiedStart,
  classifyNumber,
  isPhoneNumber,
  SEP_DASH,
  SEP_DOT,
  SEP_MIXED,
  SEP_NONE,
  SEP_SPACE,
} from './classify.ts';
import type { FindingList } from './findings.ts';

/** No identifier has more groups or digits; anything longer is not a candidate. */
const MAX_GROUPS = 4;
const MAX_DIGITS = 16;
/** Single-group words kept for a spaced candidate ("1234 5678 9012 3456" is the longest). */
const SERIES_MAX = 4;

const wordGroups = new Uint8Array(MAX_GROUPS);
let wordStart = 0;
let wordEnd = 0;
let wordGroupCount = 0;
let wordDigitCount = 0;
let wordSep = SEP_NONE;

const seriesStarts = new Int32Array(SERIES_MAX);
const seriesEnds = new Int32Array(SERIES_MAX);
const seriesLengths = new Uint8Array(SERIES_MAX);
let seriesCount = 0;
let seriesDigits = 0;

let runStart = 0;
let runPlus = false;
/** "+82" stood alone before a hyphenated word: that word is the national number. */
let pendingCountryCode = false;
let sink: FindingList | null = null;

const digits = new Uint8Array(MAX_DIGITS);
const national = new Uint8Array(MAX_DIGITS);
const nationalGroups = new Uint8Array(MAX_GROUPS);

// Marks around a number that make it an amount or a quantity ("16000000원", "12%", "₩15881234").
const UNIT_AFTER = 1;
const CURRENCY_BEFORE = 2;
const AMOUNT_MARKS = new Uint8Array(65536);
for (const unit of '원억천개명건회년월일시분초배달%％') AMOUNT_MARKS[unit.charCodeAt(0)] = UNIT_AFTER;
for (const currency of '₩￦$€£¥￥') AMOUNT_MARKS[currency.charCodeAt(0)] = CURRENCY_BEFORE;

/** Scans the run starting at the digit text[start]; returns where the main scan resumes. */
export function scanNumberRun(text: string, start: number, findings: FindingList): number {
  sink = findings;
  runStart = start;
  const before = start > 0 ? text.charCodeAt(start - 1) : 0;
  runPlus = isPlus(before);
  pendingCountryCode = false;
  seriesCount = 0;
  seriesDigits = 0;
  let i = start;
  for (;;) {
    const next = parseWord(text, i);
    const last = next < 0;
    if (wordGroupCount === 1) {
      addToSeries(text, last);
    } else {
      closeSeries(text, false, true);
      evaluateWord(text, last);
    }
    if (last) {
      closeSeries(text, true, false);
      sink = null;
      return wordEnd;
    }
    i = next;
  }
}

/** Reads the word at text[i] into the word scratch; returns the start of the next word of the run, or -1. */
function parseWord(text: string, i: number): number {
  const n = text.length;
  wordStart = i;
  wordGroupCount = 0;
  wordDigitCount = 0;
  wordSep = SEP_NONE;
  for (;;) {
    const groupStart = i;
    while (i < n && digitValue(text.charCodeAt(i)) >= 0) i++;
    const length = i - groupStart;
    if (wordGroupCount < MAX_GROUPS) wordGroups[wordGroupCount] = length > 31 ? 31 : length;
    wordGroupCount++;
    wordDigitCount += length;
    wordEnd = i;
    if (i >= n) return -1;
    let j = i;
    let c = text.charCodeAt(j);
    if (isDot(c)) {
      // a dot binds only when digits touch it on both sides: "2024. 1." and "5678. 2번" are sentences
      if (j + 1 < n && digitValue(text.charCodeAt(j + 1)) >= 0) {
        wordSep = wordSep === SEP_NONE || wordSep === SEP_DOT ? SEP_DOT : SEP_MIXED;
        i = j + 1;
        continue;
      }
      return -1;
    }
    const spaceBefore = isInlineSpace(c);
    if (spaceBefore) {
      j++;
      if (j >= n) return -1;
      c = text.charCodeAt(j);
    }
    if (isDash(c)) {
      j++;
      // spaces around a dash must be on both sides or neither: "5678 -1" is not one number
      if (spaceBefore) {
        if (j >= n || !isInlineSpace(text.charCodeAt(j))) return -1;
        j++;
      }
      if (j >= n || digitValue(text.charCodeAt(j)) < 0) return -1;
      wordSep = wordSep === SEP_NONE || wordSep === SEP_DASH ? SEP_DASH : SEP_MIXED;
      i = j;
      continue;
    }
    return spaceBefore && digitValue(c) >= 0 ? j : -1;
  }
}

function addToSeries(text: string, last: boolean): void {
  if (seriesCount < SERIES_MAX) {
    seriesStarts[seriesCount] = wordStart;
    seriesEnds[seriesCount] = wordEnd;
    seriesLengths[seriesCount] = wordDigitCount > 31 ? 31 : wordDigitCount;
    seriesDigits += wordDigitCount;
  }
  seriesCount++;
  if (seriesCount <= SERIES_MAX) return;
  // too many words to be one value: each is a token of its own
  if (seriesCount === SERIES_MAX + 1) {
    for (let k = 0; k < SERIES_MAX; k++) evaluateSingle(text, seriesStarts[k]!, seriesEnds[k]!, false);
  }
  evaluateSingle(text, wordStart, wordEnd, last);
}

/** Ends the current series of single-group words. `beforeWord`: a hyphenated word follows in this run. */
function closeSeries(text: string, last: boolean, beforeWord: boolean): void {
  const count = seriesCount;
  if (count === 0) return;
  seriesCount = 0;
  const digitCount = seriesDigits;
  seriesDigits = 0;
  if (count > SERIES_MAX) return;
  const start = seriesStarts[0]!;
  if (count === 1) {
    if (runPlus && beforeWord && start === runStart && isCountryCode(text, start, seriesEnds[0]!)) {
      pendingCountryCode = true;
      return;
    }
    evaluateSingle(text, start, seriesEnds[0]!, last);
    return;
  }
  if (evaluate(text, start, seriesEnds[count - 1]!, seriesLengths, count, digitCount, SEP_SPACE, last))
    return;
  for (let k = 0; k < count; k++)
    evaluateSingle(text, seriesStarts[k]!, seriesEnds[k]!, last && k === count - 1);
}

const single = new Uint8Array(1);

function evaluateSingle(text: string, start: number, end: number, last: boolean): void {
  const length = end - start;
  // a lone group needs 8 digits (representative numbers) unless it carries the +82 prefix
  if (length < 8 && !(runPlus && start === runStart)) return;
  single[0] = length > 31 ? 31 : length;
  evaluate(text, start, end, single, 1, length, SEP_NONE, last);
}

function evaluateWord(text: string, last: boolean): void {
  if (pendingCountryCode) {
    pendingCountryCode = false;
    if (!(last && isGluedAfter(text, wordEnd))) {
      evaluateInternational(text, wordStart, wordEnd, wordGroups, wordGroupCount, wordDigitCount, false);
    }
    return;
  }
  evaluate(text, wordStart, wordEnd, wordGroups, wordGroupCount, wordDigitCount, wordSep, last);
}

/** Classifies text[start, end) and records what it is; true if it was something. */
function evaluate(
  text: string,
  start: number,
  end: number,
  groups: Uint8Array,
  groupCount: number,
  digitCount: number,
  sep: number,
  atRunEnd: boolean,
): boolean {
  if (groupCount > MAX_GROUPS || sep === SEP_MIXED) return false;
  if (start === runStart && runPlus) {
    if (atRunEnd && isGluedAfter(text, end)) return false;
    return evaluateInternational(text, start, end, groups, groupCount, digitCount, true);
  }
  if (digitCount < 8 || digitCount > MAX_DIGITS) return false;
  // the run's edges are looked at only for a candidate that reaches them, and has enough digits
  if (start === runStart && isGluedBefore(text, start)) return false;
  if (atRunEnd && isGluedAfter(text, end)) return false;
  decode(text, start, end, digits);
  const type = classifyNumber(text, start, end, digits, digitCount, groups, groupCount, sep);
  if (type === null) return false;
  sink!.add(type, classifiedStart(), end);
  return true;
}

/**
 * A number after '+': a Korean phone in international form (+82 10-1234-5678, +82-2-123-4567,
 * +821012345678; a kept leading 0 as in "+82 010-…" is tolerated), or nothing: a foreign number is no
 * Korean identifier. The finding starts at the '+'.
 */
function evaluateInternational(
  text: string,
  start: number,
  end: number,
  groups: Uint8Array,
  groupCount: number,
  digitCount: number,
  withCountryCode: boolean,
): boolean {
  if (groupCount > MAX_GROUPS || digitCount > 14) return false;
  decode(text, start, end, digits);
  let from = 0;
  let nationalGroupCount = 0;
  if (withCountryCode) {
    if (groups[0]! < 2 || digitCount < 3 || digits[0] !== 8 || digits[1] !== 2) return false;
    from = 2;
    const firstRest = groups[0]! - 2;
    if (firstRest > 0) nationalGroups[nationalGroupCount++] = firstRest;
  } else {
    nationalGroups[nationalGroupCount++] = groups[0]!;
  }
  for (let k = 1; k < groupCount; k++) nationalGroups[nationalGroupCount++] = groups[k]!;
  if (nationalGroupCount === 0) return false;
  let length = 0;
  if (digits[from] !== 0) {
    national[length++] = 0;
    nationalGroups[0] = nationalGroups[0]! + 1;
  }
  for (let k = from; k < digitCount; k++) national[length++] = digits[k]!;
  if (!isPhoneNumber(national, length, nationalGroups, nationalGroupCount)) return false;
  sink!.add('phone', runStart - 1, end);
  return true;
}

function isCountryCode(text: string, start: number, end: number): boolean {
  return (
    end - start === 2 &&
    digitValue(text.charCodeAt(start)) === 8 &&
    digitValue(text.charCodeAt(start + 1)) === 2
  );
}

function decode(text: string, start: number, end: number, into: Uint8Array): void {
  let k = 0;
  for (let p = start; p < end && k < into.length; p++) {
    const v = digitValue(text.charCodeAt(p));
    if (v >= 0) into[k++] = v;
  }
}

/** Whether the run is the tail of a longer token: "v1.2", "ORD-2024…", "#1234", "$100", "@123". */
function isGluedBefore(text: string, start: number): boolean {
  if (start === 0) return false;
  const c = text.charCodeAt(start - 1);
  if (isAsciiAlnum(c) || c === 0x5f || c === 0x40 || c === 0x23 || AMOUNT_MARKS[c] === CURRENCY_BEFORE)
    return true;
  if (start < 2) return false;
  // "ORD-…", "/u/…"; but a slash between numbers is a list ("010-1234-5678/02-123-4567")
  if (isDash(c)) return isAsciiAlnum(text.charCodeAt(start - 2));
  return c === 0x2f && isAsciiLetter(text.charCodeAt(start - 2));
}

/** Whether the run goes on as a longer token ("…123abc", "…-A1", "….pdf", "…/edit", "…@mail") or an amount ("…원"). */
function isGluedAfter(text: string, end: number): boolean {
  if (end >= text.length) return false;
  const c = text.charCodeAt(end);
  if (isAsciiAlnum(c) || c === 0x5f || c === 0x40 || AMOUNT_MARKS[c] === UNIT_AFTER) return true;
  if (end + 1 >= text.length) return false;
  const next = text.charCodeAt(end + 1);
  if (isDash(c)) return isAsciiAlnum(next);
  return (c === 0x2f || isDot(c)) && isAsciiLetter(next);
}
