// Arithmetic checks of Korean identifiers, over decoded digits (values 0-9, index 0 first).

const RRN_WEIGHTS = [2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5] as const;
const BUSINESS_WEIGHTS = [1, 3, 7, 1, 3, 7, 1, 3, 5] as const;

function rrnWeightedSum(d: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < 12; i++) sum += d[i]! * RRN_WEIGHTS[i]!;
  return sum;
}

/** 주민등록번호 check digit: (11 − Σ wᵢdᵢ mod 11) mod 10. Numbers issued since October 2020 do not satisfy it. */
export function rrnCheckDigitValid(d: Uint8Array): boolean {
  return (11 - (rrnWeightedSum(d) % 11)) % 10 === d[12];
}

/** The variant 외국인등록번호 used before October 2020: (13 − Σ wᵢdᵢ mod 11) mod 10. */
export function foreignerCheckDigitValid(d: Uint8Array): boolean {
  return (13 - (rrnWeightedSum(d) % 11)) % 10 === d[12];
}

/** 법인등록번호: weights 1,2 alternating over the first 12 digits, check (10 − sum mod 10) mod 10. */
export function corporateCheckDigitValid(d: Uint8Array): boolean {
  let sum = 0;
  for (let i = 0; i < 12; i++) sum += d[i]! * (i % 2 === 0 ? 1 : 2);
  return (10 - (sum % 10)) % 10 === d[12];
}

/** 사업자등록번호 (10 digits): weights 1,3,7,1,3,7,1,3,5 plus ⌊5·d₉/10⌋, check (10 − sum mod 10) mod 10. */
export function businessCheckDigitValid(d: Uint8Array): boolean {
  let sum = 0;
  for (let i = 0; i < 9; i++) sum += d[i]! * BUSINESS_WEIGHTS[i]!;
  sum += Math.floor((d[8]! * 5) / 10);
  return (10 - (sum % 10)) % 10 === d[9];
}

/** Luhn over the first `length` digits (payment cards). */
export function luhnValid(d: Uint8Array, length: number): boolean {
  let sum = 0;
  let double = false;
  for (let i = length - 1; i >= 0; i--) {
    let v = d[i]!;
    if (double) {
      v *= 2;
      if (v > 9) v -= 9;
    }
    sum += v;
    double = !double;
  }
  return sum % 10 === 0;
}

/** EAN-13 (product barcodes): weights 1,3 alternating, check (10 − sum mod 10) mod 10. */
export function ean13Valid(d: Uint8Array): boolean {
  let sum = 0;
  for (let i = 0; i < 12; i++) sum += d[i]! * (i % 2 === 0 ? 1 : 3);
  return (10 - (sum % 10)) % 10 === d[12];
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] as const;

export function isLeapYear(year: number): boolean {
  return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
}

/** Whether year-month-day is a calendar date (Gregorian, month 1-12). */
export function isCalendarDate(year: number, month: number, day: number): boolean {
  if (month < 1 || month > 12 || day < 1) return false;
  const days = month === 2 && isLeapYear(year) ? 29 : DAYS_IN_MONTH[month - 1]!;
  return day <= days;
}
