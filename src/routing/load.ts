/**
 * Per-replica load and latency of deployments, in memory, for the selection strategies
 * (routing/router.ts): how many calls are in flight on each (from the start of an attempt to the end
 * of its answer, streams included), and an exponentially weighted moving average of the time each
 * took to accept a call (stream: to its headers; plain call: to its answer).
 *
 * One small entry per deployment, created on its first call; every operation is one map lookup.
 *
 * A measurement older than `staleAfterMs` counts as none: `lowest-latency` tries unmeasured
 * deployments first, so a deployment that was slow once is probed again now and then instead of
 * being judged by one bad minute for ever, and its next sample starts a fresh average.
 */
interface Entry {
  inFlight: number;
  /** -1 until the first successful call was measured. */
  latencyMs: number;
  measuredAt: number;
}

export class DeploymentLoad {
  private readonly entries = new Map<string, Entry>();

  constructor(
    /** The weight of the newest sample in the moving average. */
    readonly alpha = 0.2,
    readonly staleAfterMs = 30_000,
    private readonly now: () => number = Date.now,
  ) {}

  private entry(id: string): Entry {
    let e = this.entries.get(id);
    if (e === undefined) {
      e = { inFlight: 0, latencyMs: -1, measuredAt: 0 };
      this.entries.set(id, e);
    }
    return e;
  }

  /** An attempt on the deployment starts. */
  started(id: string): void {
    this.entry(id).inFlight++;
  }

  /** A call that `started` ended (failed, or its answer finished); once per start. */
  ended(id: string): void {
    const e = this.entries.get(id);
    if (e !== undefined && e.inFlight > 0) e.inFlight--;
  }

  /** A successful attempt took `ms` to be accepted. */
  observe(id: string, ms: number): void {
    const e = this.entry(id);
    const now = this.now();
    const fresh = e.latencyMs >= 0 && now - e.measuredAt <= this.staleAfterMs;
    e.latencyMs = fresh ? e.latencyMs + this.alpha * (ms - e.latencyMs) : ms;
    e.measuredAt = now;
  }

  inFlight(id: string): number {
    return this.entries.get(id)?.inFlight ?? 0;
  }

  /** The moving average in milliseconds, or -1 when not measured (recently) on this replica. */
  latencyMs(id: string): number {
    const e = this.entries.get(id);
    if (e === undefined || e.latencyMs < 0 || this.now() - e.measuredAt > this.staleAfterMs) return -1;
    return e.latencyMs;
  }
}
