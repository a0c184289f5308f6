import type { PiiFinding, PiiType } from './types.ts';

// When two detectors claim overlapping text, the one whose match says more wins: an address or a
// passport number is a whole token; a checksummed id beats a phone prefix; context-only types lose.
const RANK: Readonly<Record<PiiType, number>> = {
  email: 10,
  passport: 9,
  rrn: 8,
  foreigner_rrn: 8,
  corporate_registration: 8,
  card: 7,
  business_registration: 6,
  driver_license: 5,
  phone: 4,
  health_insurance: 3,
  bank_account: 2,
};

/** Findings in text order, never overlapping. Detectors add in scan order, except that an e-mail
 * address starts before the '@' that found it, so an addition may replace the last ones. */
export class FindingList {
  readonly items: PiiFinding[] = [];

  add(type: PiiType, start: number, end: number): void {
    const items = this.items;
    while (items.length > 0) {
      const last = items[items.length - 1]!;
      if (last.end <= start) break;
      const rank = RANK[type];
      const lastRank = RANK[last.type];
      if (rank < lastRank || (rank === lastRank && end - start <= last.end - last.start)) return;
      items.pop();
    }
    items.push({ type, start, end });
  }
}
