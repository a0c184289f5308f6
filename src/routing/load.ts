import type { RoutableDeployment } from '../catalog/catalog-snapshot.ts';
import { toUpstreamError } from '../providers/http.ts';
import { FairQueue } from './fair-queue.ts';

/**
 * Per-replica load, capacity and latency of deployments, in memory, for the router: how many calls
 * are in flight on each (from the start of an attempt to the end of its answer, streams included),
 * each deployment's cap on that number (`maxConcurrent`), the calls waiting for a slot (fairly, per
 * product, with a deadline), and an exponentially weighted moving average of the time each took to
 * accept a call (stream: to its headers; plain call: to its answer).
 *
 * One small entry per deployment, created on its first call; every operation on the common path is one
 * map lookup.
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

/** Every deployment that could take the call stayed full until the deadline. */
export class CapacityError extends Error {
  override name = 'CapacityError';
  constructor(
    readonly model: string,
    readonly waitedMs: number,
  ) {
    super(`every deployment of ${model} is at its concurrency limit (waited ${Math.round(waitedMs)} ms)`);
  }
}

interface SlotWaiter {
  readonly organizationId: string;
  readonly candidates: readonly RoutableDeployment[];
  readonly productId: string;
  resolve(deployment: RoutableDeployment): void;
  reject(error: unknown): void;
  timer: NodeJS.Timeout | undefined;
  signal: AbortSignal;
  onAbort: (() => void) | undefined;
}

export class DeploymentLoad {
  private readonly entries = new Map<string, Entry>();
  /** Calls waiting for a slot, by product id. */
  private readonly waiting = new Map<string, FairQueue<RoutableDeployment, SlotWaiter>>();

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

  /** Whether the deployment has a free slot. */
  hasRoom(deployment: RoutableDeployment): boolean {
    return (this.entries.get(deployment.id)?.inFlight ?? 0) < deployment.maxConcurrent;
  }

  /** An attempt on the deployment starts: takes a slot. */
  started(id: string): void {
    this.entry(id).inFlight++;
  }

  /**
   * A call that `started` (or was handed a slot) ended: failed, or its answer finished; once per
   * start. The slot goes to the next waiter of the product, fairly, if one can use this deployment.
   */
  ended(deployment: RoutableDeployment, productId: string): void {
    const e = this.entries.get(deployment.id);
    if (e === undefined || e.inFlight === 0) return;
    const queue = this.waiting.get(productId);
    if (queue !== undefined && queue.size > 0 && e.inFlight <= deployment.maxConcurrent) {
      const waiter = queue.take(deployment);
      if (waiter !== undefined) {
        if (queue.size === 0) this.waiting.delete(productId);
        this.unwatch(waiter);
        waiter.resolve(deployment);
        return; // the slot passes on: in flight unchanged
      }
    }
    e.inFlight--;
  }

  /**
   * Waits, in the product's fair queue, for a slot on any of `candidates` (which are all full now).
   * Resolves with the deployment whose slot it was handed (already taken for the caller); rejects with
   * a `CapacityError` at the deadline, or the call's own failure when `signal` aborts first.
   */
  waitForRoom(
    productId: string,
    model: string,
    candidates: readonly RoutableDeployment[],
    organizationId: string,
    signal: AbortSignal,
    timeoutMs: number,
  ): Promise<RoutableDeployment> {
    if (signal.aborted) return Promise.reject(toUpstreamError(undefined, signal));
    const startedAt = performance.now();
    return new Promise((resolve, reject) => {
      const waiter: SlotWaiter = {
        organizationId,
        candidates,
        productId,
        resolve,
        reject,
        timer: undefined,
        signal,
        onAbort: undefined,
      };
      const giveUp = (error: unknown) => {
        const queue = this.waiting.get(productId);
        if (!queue?.remove(waiter)) return;
        if (queue.size === 0) this.waiting.delete(productId);
        this.unwatch(waiter);
        reject(error);
      };
      waiter.timer = setTimeout(
        () => giveUp(new CapacityError(model, performance.now() - startedAt)),
        timeoutMs,
      );
      waiter.onAbort = () => giveUp(toUpstreamError(undefined, signal));
      signal.addEventListener('abort', waiter.onAbort, { once: true });
      let queue = this.waiting.get(productId);
      if (!queue) {
        queue = new FairQueue();
        this.waiting.set(productId, queue);
      }
      queue.push(waiter);
    });
  }

  private unwatch(waiter: SlotWaiter): void {
    clearTimeout(waiter.timer);
    if (waiter.onAbort) waiter.signal.removeEventListener('abort', waiter.onAbort);
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

  /** Calls waiting for a slot of the product's deployments on this replica. */
  queued(productId: string): number {
    return this.waiting.get(productId)?.size ?? 0;
  }

  /** The moving average in milliseconds, or -1 when not measured (recently) on this replica. */
  latencyMs(id: string): number {
    const e = this.entries.get(id);
    if (e === undefined || e.latencyMs < 0 || this.now() - e.measuredAt > this.staleAfterMs) return -1;
    return e.latencyMs;
  }
}
