/**
 * Lets a report of something that keeps going wrong through at most once per `intervalMs`, saying how
 * many it stands for: a database or Redis outage at 1,000 req/s is one log line a second, not a thousand.
 */
export class ReportThrottle {
  private held = 0;
  private last = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** 0: hold this one back; otherwise report now, for this many (this one and those held back since). */
  take(): number {
    this.held++;
    const now = this.now();
    if (now - this.last < this.intervalMs) return 0;
    this.last = now;
    const count = this.held;
    this.held = 0;
    return count;
  }
}
