/**
 * The abort signal of one upstream call, shaped like an `AbortSignal` (`aborted`, `reason`,
 * `throwIfAborted`, `onabort`, the `abort` event) and accepted wherever the hub passes one: undici,
 * `timers/promises`, node-llama-cpp and the adapters, all of which check the shape, not the class.
 *
 * Why not `new AbortController()`: in Node 20 every `AbortController#signal` creates two fresh hidden
 * classes (its `createAbortSignal` sets the prototype of an `EventTarget` after construction), and at
 * a thousand requests a second those maps are promoted to the old generation and collected only by
 * full GCs. Measured with `--trace-gc-object-stats`: ≈ 2 dead maps a request, ≈ 0.5 MB promoted per
 * scavenge; with this class, none (docs/benchmarks.md).
 */
export class CallAbort extends EventTarget {
  aborted = false;
  reason: unknown = undefined;
  onabort: ((event: Event) => unknown) | null = null;

  /** Aborts once: sets the reason (an `AbortError` DOMException when none is given) and fires `abort`. */
  abort(reason?: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason =
      reason === undefined ? new DOMException('This operation was aborted', 'AbortError') : reason;
    const event = new Event('abort');
    this.onabort?.(event);
    this.dispatchEvent(event);
  }

  throwIfAborted(): void {
    if (this.aborted) throw this.reason;
  }

  /** This object where an `AbortSignal` is expected: the shape is the same, the class is not. */
  get signal(): AbortSignal {
    return this as unknown as AbortSignal;
  }
}
