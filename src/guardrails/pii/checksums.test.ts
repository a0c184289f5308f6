import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  businessCheckDigitValid,
  corporateCheckDigitValid,
  ean13Valid,
  foreignerCheckDigitValid,
  isCalendarDate,
  luhnValid,
  rrnCheckDigitValid,
} from './checksums.ts';

const digits = (s: string) => Uint8Array.from(s, Number);

test('주민등록번호 check digit: (11 − Σ wᵢdᵢ mod 11) mod 10 with weights 2..9,2..5', () => {
  assert.equal(rrnCheckDigitValid(digits('9001011234568')), true);
  assert.equal(rrnCheckDigitValid(digits('9001011234567')), false);
  // sum mod 11 = 1 → (11 − 1) mod 10 = 0: the check digit wraps to 0
  assert.equal(rrnCheckDigitValid(digits('0002293123454')), true);
});

test('외국인등록번호 check digit before 2020: (13 − Σ wᵢdᵢ mod 11) mod 10', () => {
  // 900101-512345x: weighted sum 133, 133 mod 11 = 1 → (13 − 1) mod 10 = 2 (the 주민 formula gives 0)
  assert.equal(foreignerCheckDigitValid(digits('9001015123452')), true);
  assert.equal(foreignerCheckDigitValid(digits('9001015123450')), false);
});

test('법인등록번호 check: weights 1,2 alternating, (10 − sum mod 10) mod 10', () => {
  assert.equal(corporateCheckDigitValid(digits('1101111234569')), true);
  assert.equal(corporateCheckDigitValid(digits('1101111234568')), false);
});

test('사업자등록번호 check includes ⌊5·d₉/10⌋', () => {
  assert.equal(businessCheckDigitValid(digits('1248100998')), true);
  assert.equal(businessCheckDigitValid(digits('1248100999')), false);
  // d₉ = 9: ⌊45/10⌋ = 4 is added
  assert.equal(businessCheckDigitValid(digits('1018600006')), true);
});

test('Luhn and EAN-13', () => {
  assert.equal(luhnValid(digits('4111111111111111'), 16), true);
  assert.equal(luhnValid(digits('4111111111111112'), 16), false);
  assert.equal(luhnValid(digits('378282246310005'), 15), true);
  assert.equal(ean13Valid(digits('8801234567893')), true);
  assert.equal(ean13Valid(digits('8801234567890')), false);
});

test('calendar dates: month lengths and leap years (2000 is one, 1900 is not)', () => {
  assert.equal(isCalendarDate(2000, 2, 29), true);
  assert.equal(isCalendarDate(1900, 2, 29), false);
  assert.equal(isCalendarDate(2024, 2, 29), true);
  assert.equal(isCalendarDate(2023, 2, 29), false);
  assert.equal(isCalendarDate(1990, 4, 31), false);
  assert.equal(isCalendarDate(1990, 12, 31), true);
  assert.equal(isCalendarDate(1990, 13, 1), false);
  assert.equal(isCalendarDate(1990, 0, 1), false);
  assert.equal(isCalendarDate(1990, 1, 0), false);
});
