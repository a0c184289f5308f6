/** What a `Deadlines` list holds: its links live on the entry itself (no record of their own). */
export interface DeadlineEntry {
  /** performance.now() when it falls due; 0 while not in a list. */
  deadlineAt: number;
  deadlinePrev: DeadlineEntry | null;
  deadlineNext: DeadlineEntry | null;
}

/**
 * Deadlines of one length, each counted from when it is set (a call's total time): set in the order
 * they fall due, so kept in that order in a list linked through the entries themselves, with one timer
 * for the earliest — the way Node keeps its own timers of one duration, without a `Timeout` and its
 * arguments for each (≈ 0.2 KB that an open stream held for its whole life, heap snapshot at 2,000
 * streams) made and unlinked for every call. An entry expires within a millisecond of when a
 * `setTimeout` of the same length would have fired; the timer keeps the process alive only while an
 * entry waits.
 */
export class Deadlines<T extends DeadlineEntry> {
  private head: T | null = null;
  private tail: T | null = null;
  private timer: NodeJS.Timeout | undefined = undefined;
  private expiring = false;
  private readonly fire = (): void => this.expireDue();

  constructor(
    private readonly lengthMs: number,
    private readonly expire: (entry: T) => void,
  ) {}

  /** Starts `entry`'s deadline (not already in the list). */
  add(entry: T): void {
    entry.deadlineAt = performance.now() + this.lengthMs;
    entry.deadlinePrev = this.tail;
    entry.deadlineNext = null;
    if (this.tail === null) this.head = entry;
    else this.tail.deadlineNext = entry;
    this.tail = entry;
    if (this.timer === undefined && !this.expiring) this.timer = setTimeout(this.fire, this.lengthMs);
  }

  /** Stops `entry`'s deadline if it runs; nothing if it expired or was never set. */
  remove(entry: T): void {
    if (entry.deadlineAt === 0) return;
    this.unlink(entry);
    if (this.head === null) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  private unlink(entry: T): void {
    const prev = entry.deadlinePrev as T | null;
    const next = entry.deadlineNext as T | null;
    if (prev === null) this.head = next;
    else prev.deadlineNext = next;
    if (next === null) this.tail = prev;
    else next.deadlinePrev = prev;
    entry.deadlineAt = 0;
    entry.deadlinePrev = null;
    entry.deadlineNext = null;
  }

  private expireDue(): void {
    this.timer = undefined;
    this.expiring = true;
    // the timer's clock counts whole milliseconds: what falls due within one is due now
    const now = performance.now() + 1;
    let entry = this.head;
    while (entry !== null && entry.deadlineAt <= now) {
      this.unlink(entry);
      try {
        this.expire(entry);
      } catch (error) {
        // as from a timer's own callback, without keeping the others from expiring
        process.nextTick(rethrow, error);
      }
      entry = this.head;
    }
    this.expiring = false;
    if (entry !== null)
      this.timer = setTimeout(this.fire, Math.max(1, Math.ceil(entry.deadlineAt - performance.now())));
  }
}

function rethrow(error: unknown): never {
  throw error;
}
