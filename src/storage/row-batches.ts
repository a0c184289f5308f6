/**
 * Consecutive slices of `rows` for multi-row statements (`INSERT … VALUES (…), (…)`, `IN (?, ?)`): each
 * of `max` rows or of a power of two below it, largest first. A statement then has at most
 * ⌊log2(max)⌋ + 2 shapes whatever sizes its callers meet, and SQLite keeps one prepared statement per
 * distinct text (storage/sqlite.ts) at ≈ 2.5 KB a row of `usage_events`: a journal applier that met
 * every batch size from 1 to 250 held 62 MiB of them (decision 0036).
 */
export function rowBatches<T>(rows: readonly T[], max: number): T[][] {
  if (!Number.isInteger(max) || max < 1) throw new RangeError(`a batch holds at least one row, not ${max}`);
  const batches: T[][] = [];
  for (let i = 0; i < rows.length; ) {
    const left = rows.length - i;
    const size = left >= max ? max : 2 ** (31 - Math.clz32(left));
    batches.push(rows.slice(i, i + size));
    i += size;
  }
  return batches;
}
