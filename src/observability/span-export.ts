import type { Worker } from 'node:worker_threads';
import { startWorker } from '../worker-heap.ts';
import { encodeCall } from './call-encoding.mjs';
import type { CallData, EncodedCall, UpstreamData } from './call-records.mjs';
import type { CallRecordSink } from './call-tracer.ts';

/** What the exporter's thread needs: where and how to export, and the resource it reports. */
export interface SpanExportSettings {
  url: string;
  protocol: 'http/protobuf' | 'http/json';
  headers: Record<string, string>;
  timeoutMillis: number | undefined;
  compression: 'gzip' | 'none' | undefined;
  concurrencyLimit: number;
  resourceAttributes: Record<string, string>;
  scopeName: string;
  /** Spans per OTLP export (OTEL_BSP_MAX_EXPORT_BATCH_SIZE). */
  exportBatchSize: number;
  /** Longest a span waits on the exporter's thread before it is exported (OTEL_BSP_SCHEDULE_DELAY). */
  delayMs: number;
}

/** To the exporter's thread: deployments it has not seen yet, then calls (JSON text of `EncodedCall[]`). */
export interface CallsMessage {
  type: 'calls';
  upstreams: UpstreamData[];
  json: string;
  /** Spans the calls make, as counted here. */
  spans: number;
}

type WorkerMessage =
  | { type: 'exported'; spans: number }
  | { type: 'failed'; spans: number; error: string }
  | { type: 'done'; id: number };

/**
 * Calls handed to the exporter's thread at a time. Each hand-over costs a message and the JSON text of
 * its calls (on this machine ≈ 1 µs a call in a hot loop, 3–5 µs at 1,000 calls/s: docs/benchmarks.md);
 * a few dozen calls keep one hand-over short.
 */
const POST_BATCH_CALLS = 32;
/** How soon a partial batch is handed over. */
const POST_DELAY_MS = 100;

/**
 * Sends the records of traced calls (call-tracer.ts) to a worker thread, which rebuilds their spans
 * (call-records.mjs) and exports them with the official OTLP exporter. On the event loop a call costs
 * its share of one JSON text; the SDK's batch processor would serialise and send on the thread that ends
 * spans, 6–25 µs a span, in blocks of a batch in the middle of requests (decision 0009).
 *
 * As the batch processor does, it keeps at most `maxQueueSize` spans not yet exported and drops the
 * rest — a call's spans together — counted and reported through `onProblem`, so a collector that is down
 * never grows the heap.
 */
export class WorkerCallExporter implements CallRecordSink {
  private readonly worker: Worker;
  private pending: EncodedCall[] = [];
  private pendingSpans = 0;
  private upstreams: UpstreamData[] = [];
  /** Spans handed to the worker and not yet exported (or failed). */
  private unexported = 0;
  /** Spans dropped since the last report. */
  private dropped = 0;
  private readonly timer: NodeJS.Timeout;
  private nextId = 1;
  private readonly waiting = new Map<number, () => void>();
  private stopped: Promise<void> | undefined;

  constructor(
    settings: SpanExportSettings,
    private readonly maxQueueSize: number,
    private readonly onProblem: (message: string, details: Record<string, unknown>) => void,
  ) {
    this.worker = startWorker(new URL('./span-export-worker.mjs', import.meta.url), { workerData: settings });
    this.worker.unref();
    this.worker.on('message', (m: WorkerMessage) => {
      if (m.type === 'exported') this.unexported -= m.spans;
      else if (m.type === 'failed')
        this.onProblem('tracing: an OTLP export failed', { spans: m.spans, error: m.error });
      else {
        this.waiting.get(m.id)?.();
        this.waiting.delete(m.id);
      }
    });
    this.worker.on('error', (error) => this.onProblem('tracing: the export thread failed', { err: error }));
    this.timer = setInterval(() => this.handOver(), POST_DELAY_MS);
    this.timer.unref();
  }

  addUpstream(upstream: UpstreamData): void {
    // never dropped: calls that name it may follow
    this.upstreams.push(upstream);
  }

  addCall(call: CallData): void {
    if (this.stopped !== undefined) return;
    const spans = 1 + call.children.length;
    const queued = this.unexported + this.pendingSpans;
    // an empty queue takes a call whatever its size, so that a tiny OTEL_BSP_MAX_QUEUE_SIZE still exports
    if (queued > 0 && queued + spans > this.maxQueueSize) {
      this.dropped += spans;
      return;
    }
    // encoded now, so that the record itself is garbage young
    this.pending.push(encodeCall(call));
    this.pendingSpans += spans;
    if (this.pending.length >= POST_BATCH_CALLS) this.handOver();
  }

  private handOver(): void {
    if (this.dropped > 0) {
      this.onProblem('tracing: spans dropped, the export queue was full', { dropped: this.dropped });
      this.dropped = 0;
    }
    if (this.pending.length === 0 && this.upstreams.length === 0) return;
    const message: CallsMessage = {
      type: 'calls',
      upstreams: this.upstreams,
      // as JSON text: V8 clones a string by copying it, while cloning the records field by field cost
      // several times as much on this thread as the stringifying does (measured: docs/benchmarks.md);
      // arrays of fields, not objects, halve the text
      json: JSON.stringify(this.pending),
      spans: this.pendingSpans,
    };
    this.unexported += this.pendingSpans;
    this.pending = [];
    this.pendingSpans = 0;
    this.upstreams = [];
    this.worker.postMessage(message);
  }

  private request(type: 'flush' | 'shutdown'): Promise<void> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.worker.postMessage({ type, id });
    });
  }

  /** Exports every call ended so far. */
  forceFlush(): Promise<void> {
    if (this.stopped !== undefined) return this.stopped;
    this.handOver();
    return this.request('flush');
  }

  /** Exports what is left, then stops the thread; calls ended after are ignored. */
  shutdown(): Promise<void> {
    this.stopped ??= (async () => {
      this.handOver();
      clearInterval(this.timer);
      await this.request('shutdown');
      await this.worker.terminate();
    })();
    return this.stopped;
  }
}
