/** A listener as `addEventListener` takes one: a function, or an object with `handleEvent`. */
type AbortListener = ((this: unknown, event: Event) => unknown) | { handleEvent(event: Event): unknown };

/**
 * The abort signal of one upstream call, shaped like an `AbortSignal` (`aborted`, `reason`,
 * `throwIfAborted`, `onabort`, `addEventListener` / `removeEventListener` for `abort`) and accepted
 * wherever the hub passes one: undici, `timers/promises`, the routing queue and the adapters, all of
 * which check the shape, not the class.
 *
 * Why not `new AbortController()`: in Node 20 every `AbortController#signal` creates two fresh hidden
 * classes (its `createAbortSignal` sets the prototype of an `EventTarget` after construction), and at
 * a thousand requests a second those maps are promoted to the old generation and collected only by
 * full GCs (docs/benchmarks.md). Why not an `EventTarget` either: each one makes two maps of its own
 * and a record per listener, ≈ 0.6 KB that an open stream holds for its whole life (heap snapshot at
 * 2,000 streams), for a signal that fires once, to a listener or two. So the listeners are a plain
 * list, called once in the order they were added and then dropped (an `abort` fires once: `once` needs
 * nothing more); one removed while the others are called is not called; a listener that throws is
 * reported as an uncaught exception after the others ran, as an `EventTarget` reports it.
 */
export class CallAbort {
  aborted = false;
  reason: unknown = undefined;
  onabort: ((event: Event) => unknown) | null = null;
  private listeners: AbortListener[] | null = null;

  /** Aborts once: sets the reason (an `AbortError` DOMException when none is given) and fires `abort`. */
  abort(reason?: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason =
      reason === undefined ? new DOMException('This operation was aborted', 'AbortError') : reason;
    const event = new Event('abort');
    const listeners = this.listeners;
    this.call(this.onabort, event);
    if (listeners !== null) {
      // one a listener removes meanwhile (say, as a listener before it stops a wait) is not called
      const inOrder = listeners.slice();
      for (let i = 0; i < inOrder.length; i++) {
        const listener = inOrder[i]!;
        if (listeners.includes(listener)) this.call(listener, event);
      }
    }
    this.listeners = null;
  }

  throwIfAborted(): void {
    if (this.aborted) throw this.reason;
  }

  /** Only `abort` is ever fired; a listener added twice is called once; one added after it, never. */
  addEventListener(type: string, listener: AbortListener | null, _options?: unknown): void {
    if (type !== 'abort' || listener === null || this.aborted) return;
    if (this.listeners === null) this.listeners = [listener];
    else if (!this.listeners.includes(listener)) this.listeners.push(listener);
  }

  removeEventListener(type: string, listener: AbortListener | null, _options?: unknown): void {
    const listeners = this.listeners;
    if (type !== 'abort' || listeners === null || listener === null) return;
    const at = listeners.indexOf(listener);
    if (at === -1) return;
    listeners.splice(at, 1);
    if (listeners.length === 0 && !this.aborted) this.listeners = null;
  }

  /** This object where an `AbortSignal` is expected: the shape is the same, the class is not. */
  get signal(): AbortSignal {
    return this as unknown as AbortSignal;
  }

  private call(listener: AbortListener | null, event: Event): void {
    if (listener === null) return;
    try {
      if (typeof listener === 'function') listener.call(this, event);
      else listener.handleEvent(event);
    } catch (error) {
      process.nextTick(rethrow, error);
    }
  }
}

function rethrow(error: unknown): never {
  throw error;
}
