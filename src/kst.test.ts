import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  DAY_MS,
  dayIndex,
  dayOfText,
  dayStartMs,
  dayText,
  KST_OFFSET_MS,
  kstDate,
  kstDateStart,
  kstMinute,
  kstMonth,
  kstMonthStart,
  monthDays,
  nextMonth,
  parseDateOrTimestamp,
  previousMonth,
} from './kst.ts';

test('a KST day begins at 15:00 UTC the day before: a month boundary', () => {
  const midnight = Date.parse('2026-11-30T15:00:00Z'); // 2026-12-01 00:00 in Seoul
  assert.equal(kstDate(midnight), '2026-12-01');
  assert.equal(kstDate(midnight - 1), '2026-11-30');
  assert.equal(kstMonth(midnight), '2026-12');
  assert.equal(kstMonth(midnight - 1), '2026-11');
  assert.equal(kstMinute(midnight), '2026-12-01 00:00');
  assert.equal(kstMinute(midnight - 1), '2026-11-30 23:59');
  assert.equal(kstDateStart('2026-12-01'), midnight);
  assert.equal(kstMonthStart('2026-12'), midnight);
  assert.equal(dayText(dayIndex(midnight)), '2026-12-01');
  assert.equal(dayText(dayIndex(midnight - 1)), '2026-11-30');
  assert.equal(dayStartMs(dayIndex(midnight)), midnight);
  assert.equal(dayStartMs(dayIndex(midnight + DAY_MS - 1)), midnight);
  assert.equal(dayOfText('2026-12-01'), dayIndex(midnight));
  // a UTC date is still the old one until 24:00 UTC, 09:00 in Seoul
  assert.equal(new Date(midnight).toISOString().slice(0, 10), '2026-11-30');
});

test('a KST year begins at 15:00 UTC on 31 December', () => {
  const newYear = Date.parse('2026-12-31T15:00:00Z');
  assert.equal(kstDate(newYear), '2027-01-01');
  assert.equal(kstMonth(newYear), '2027-01');
  assert.equal(kstMonth(newYear - 1), '2026-12');
  assert.equal(kstMonthStart('2027-01'), newYear);
  assert.equal(nextMonth('2026-12'), '2027-01');
  assert.equal(previousMonth('2027-01'), '2026-12');
  assert.equal(nextMonth('2026-09'), '2026-10');
  assert.equal(previousMonth('2026-10'), '2026-09');
  const { first, end } = monthDays('2026-12');
  assert.equal(dayText(first), '2026-12-01');
  assert.equal(dayText(end), '2027-01-01');
  assert.equal(end - first, 31);
  assert.equal(dayStartMs(end), newYear);
});

test('leap days: 29 February exists in 2028, not in 2026', () => {
  const leapDay = kstDateStart('2028-02-29');
  assert.equal(leapDay, Date.parse('2028-02-28T15:00:00Z'));
  assert.equal(kstDate(leapDay + DAY_MS - 1), '2028-02-29');
  assert.equal(kstDate(leapDay + DAY_MS), '2028-03-01');
  assert.equal(dayText(dayOfText('2028-02-29') + 1), '2028-03-01');
  assert.equal(monthDays('2028-02').end - monthDays('2028-02').first, 29);
  assert.equal(monthDays('2026-02').end - monthDays('2026-02').first, 28);
  assert.ok(Number.isNaN(kstDateStart('2026-02-29')));
});

test('kstDateStart takes calendar dates only', () => {
  for (const odd of [
    '2026-02-30',
    '2026-04-31',
    '2026-13-01',
    '2026-00-10',
    '2026-2-3',
    '2026-11-30T00:00',
    '',
    'x',
  ])
    assert.ok(Number.isNaN(kstDateStart(odd)), odd);
  assert.ok(Number.isNaN(kstMonthStart('2026-13')));
});

test('every date of 2023–2029 starts where Date.parse of its +09:00 midnight says, the expression it replaces', () => {
  for (let index = dayOfText('2023-01-01'); index < dayOfText('2030-01-01'); index++) {
    const date = dayText(index);
    const start = kstDateStart(date);
    assert.equal(start, Date.parse(`${date}T00:00:00+09:00`), date);
    assert.equal(start, dayStartMs(index), date);
    assert.equal(dayIndex(start), index, date);
    assert.equal(kstDate(start), date, date);
    assert.equal(kstDate(start - 1), dayText(index - 1), date);
    assert.equal(parseDateOrTimestamp(date), start, date);
  }
});

test('instants before 1970 in Seoul have negative day indices', () => {
  const epochInSeoul = -KST_OFFSET_MS; // 1970-01-01 00:00 KST
  assert.equal(dayIndex(epochInSeoul), 0);
  assert.equal(dayIndex(epochInSeoul - 1), -1);
  assert.equal(dayText(-1), '1969-12-31');
  assert.equal(dayStartMs(-1), epochInSeoul - DAY_MS);
  assert.equal(kstDate(epochInSeoul - 1), '1969-12-31');
  assert.equal(kstDate(-1), '1970-01-01', 'one ms before the UTC epoch is 08:59:59.999 in Seoul');
  assert.equal(dayOfText('1969-12-31'), -1);
});

test('dayOfText reads a date as Date.parse does; parseDateOrTimestamp refuses what is not a real date', () => {
  // day 29–31 of a shorter month runs on into the next (kstDateStart refuses it)
  assert.equal(dayOfText('2026-02-30'), dayOfText('2026-03-02'));
  assert.ok(Number.isNaN(parseDateOrTimestamp('2026-02-30')), 'not a date: refused, not 2026-03-02');
  assert.ok(Number.isNaN(dayOfText('2026-13-01')));
  assert.ok(Number.isNaN(parseDateOrTimestamp('2026-13-01')));
  assert.equal(parseDateOrTimestamp('2028-02-29'), kstDateStart('2028-02-29'));
});

test('parseDateOrTimestamp: a KST date, or a timestamp with its own offset, nothing else', () => {
  assert.equal(parseDateOrTimestamp('2026-11-01'), Date.parse('2026-10-31T15:00:00Z'));
  assert.equal(parseDateOrTimestamp('2026-11-01T09:00:00+09:00'), Date.parse('2026-11-01T00:00:00Z'));
  assert.equal(parseDateOrTimestamp('2026-11-01T00:00:00.250Z'), Date.parse('2026-11-01T00:00:00Z') + 250);
  assert.equal(parseDateOrTimestamp('2026-11-01T09:30+09:00'), Date.parse('2026-11-01T00:30:00Z'));
  // a bare month would be UTC midnight, a time without an offset the server's own zone: refused
  for (const bad of [
    '',
    'yesterday',
    '2026-11',
    '2026-11-01T00:00:00',
    '2026-11-01 00:00:00+09:00',
    '1700000000000',
    '2026-11-01T25:00:00Z',
    '2026-13-01T00:00:00Z',
    '2026-02-30T00:00:00Z',
  ])
    assert.ok(Number.isNaN(parseDateOrTimestamp(bad)), bad);
});
