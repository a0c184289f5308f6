/**
 * Korea Standard Time: the hub's days and months are Korean ones — what an operator in Seoul calls
 * today, the month a charge is settled in, the days of a programme, a voucher or an allocation. KST is
 * UTC+9 all year (Korea has kept no daylight saving since 1988), so a fixed offset is exact.
 *
 * Plain code with no imports: the journal applier's worker bundle (billing/applier-bundle.ts) takes it
 * in through usage-journal.ts, and that bundle may import no package but libsql.
 *
 * Words used here: a *date* is a KST calendar date as text (`2026-11-30`), a *month* one as `2026-11`;
 * a *day index* is whole KST days since 1970-01-01 (negative before it); instants are milliseconds.
 */

/** KST minus UTC. */
export const KST_OFFSET_MS = 9 * 3_600_000;

/** One day (no leap seconds in JavaScript time, no daylight saving in Seoul). */
export const DAY_MS = 86_400_000;

/** An instant as ISO 8601 text on Seoul's wall clock (its `Z` is not true, so it stays in here). */
const seoulClock = (ms: number): string => new Date(ms + KST_OFFSET_MS).toISOString();

// The last day asked for: the journal applier asks for the date and month of every record it posts,
// nearly all of them today's (a Date and its ISO text each were 3 % of its time).
let lastDay = Number.NaN;
let lastDate = '';

/** The KST date of an instant, `2026-11-30`. */
export function kstDate(ms: number): string {
  // whole milliseconds, as Date keeps them (toward zero), so the day and its text agree before 1970 too
  const whole = Math.trunc(ms);
  const day = Math.floor((whole + KST_OFFSET_MS) / DAY_MS);
  if (day !== lastDay) {
    lastDate = seoulClock(whole).slice(0, 10);
    lastDay = day;
  }
  return lastDate;
}

/** The KST month of an instant, `2026-11`: the month a charge made then is settled in. */
export function kstMonth(ms: number): string {
  return kstDate(ms).slice(0, 7);
}

/** An instant to the minute as an operator in Seoul reads it, `2026-11-23 08:06`. */
export function kstMinute(ms: number): string {
  return seoulClock(ms).slice(0, 16).replace('T', ' ');
}

/**
 * The instant the KST date `2026-11-30` begins (midnight in Seoul); NaN for anything that is not a
 * calendar date in that form (`2026-02-30`, `2026-2-3`, `2026-11-30T00:00`).
 */
export function kstDateStart(date: string): number {
  const index = dayOfText(date);
  return Number.isNaN(index) || dayText(index) !== date ? Number.NaN : dayStartMs(index);
}

/** The instant the KST month `2026-11` begins; NaN for anything that is not such a month. */
export function kstMonthStart(month: string): number {
  return kstDateStart(`${month}-01`);
}

/** The month before `2026-01`: `2025-12`. */
export function previousMonth(month: string): string {
  const [y, m] = month.split('-').map(Number) as [number, number];
  return m === 1 ? `${y - 1}-12` : `${y}-${String(m - 1).padStart(2, '0')}`;
}

/** The month after `2026-12`: `2027-01`. */
export function nextMonth(month: string): string {
  const [y, m] = month.split('-').map(Number) as [number, number];
  return m === 12 ? `${y + 1}-01` : `${y}-${String(m + 1).padStart(2, '0')}`;
}

/** The first and the last-plus-one day indices of a month `2026-11`. */
export function monthDays(month: string): { first: number; end: number } {
  const [y, m] = month.split('-').map(Number) as [number, number];
  const first = Math.floor(Date.UTC(y, m - 1, 1) / DAY_MS);
  const end = Math.floor(Date.UTC(m === 12 ? y + 1 : y, m === 12 ? 0 : m, 1) / DAY_MS);
  return { first, end };
}

/** The KST day index of an instant. */
export function dayIndex(ms: number): number {
  return Math.floor((ms + KST_OFFSET_MS) / DAY_MS);
}

/** The instant KST day `index` begins (midnight in Seoul). */
export function dayStartMs(index: number): number {
  return index * DAY_MS - KST_OFFSET_MS;
}

/** The date of a day index, `2026-11-30`. */
export function dayText(index: number): string {
  return new Date(index * DAY_MS).toISOString().slice(0, 10);
}

/**
 * The day index of the date `2026-11-30`; NaN where `Date.parse` finds no date. Like `Date.parse`,
 * it lets day 29–31 of a shorter month run on (`2026-02-30` is the index of 2026-03-02): callers
 * that must refuse such a date check it with kstDateStart.
 */
export function dayOfText(date: string): number {
  return Math.floor(Date.parse(`${date}T00:00:00Z`) / DAY_MS);
}

const TIMESTAMP = /^(\d{4}-\d{2}-\d{2})T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2})$/;

/**
 * A bound of an admin query (usage, the audit log): a KST date (`2026-11-01`, the instant that day
 * begins in Seoul) or an ISO 8601 timestamp with its own offset (`…Z`, `…+09:00`); NaN for anything
 * else — a day that is not in its month, a bare month (which `Date.parse` reads as UTC midnight), a time
 * without an offset (which it reads in the server's own zone).
 */
export function parseDateOrTimestamp(value: string): number {
  if (/^\d{4}-\d{2}-\d{2}$/.test(value)) return kstDateStart(value);
  const timestamp = TIMESTAMP.exec(value);
  // Date.parse lets `2026-02-30T…` run on into March: the date part must be a real one
  if (timestamp === null || Number.isNaN(kstDateStart(timestamp[1]!))) return Number.NaN;
  return Date.parse(value);
}
