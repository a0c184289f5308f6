import { Worker } from 'node:worker_threads';
import type { ReadableSpan, SpanProcessor } from '@opentelemetry/sdk-trace-base';

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

/** A span as it crosses to the exporter's thread: plain data, cheap to clone. */
interface SpanRecord {
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  traceFlags: number;
  traceState: string | undefined;
  parentSpanId: string | undefined;
  parentIsRemote: boolean;
  startTime: readonly [number, number];
  endTime: readonly [number, number];
  duration: readonly [number, number];
  status: ReadableSpan['status'];
  attributes: ReadableSpan['attributes'];
  events: ReadableSpan['events'];
  droppedAttributesCount: number;
  droppedEventsCount: number;
}

type WorkerMessage =
  | { type: 'exported'; spans: number }
  | { type: 'failed'; spans: number; error: string }
  | { type: 'done'; id: number };

/** Spans handed to the exporter's thread at a time: small, so each hand-over is short. */
const POST_BATCH_SIZE = 16;
/** How soon a partial batch is handed over. */
const POST_DELAY_MS = 100;
const SAMPLED = 1;

function recordOf(span: ReadableSpan): SpanRecord {
  const context = span.spanContext();
  const parent = span.parentSpanContext;
  return {
    name: span.name,
    kind: span.kind,
    traceId: context.traceId,
    spanId: context.spanId,
    traceFlags: context.traceFlags,
    traceState: context.traceState?.serialize(),
    parentSpanId: parent?.spanId,
    parentIsRemote: parent?.isRemote === true,
    startTime: span.startTime,
    endTime: span.endTime,
    duration: span.duration,
    status: span.status,
    attributes: span.attributes,
    events: span.events,
    droppedAttributesCount: span.droppedAttributesCount,
    droppedEventsCount: span.droppedEventsCount,
  };
}

/**
 * The span processor of the hub's tracer: ended spans go to a worker thread, which exports them with
 * the official OTLP exporter. The SDK's batch processor serialises and sends on the thread that ends
 * spans: 6–25 µs a span, in blocks of a batch, in the middle of requests (decision 0009). Here the event
 * loop only copies each span to plain data and hands them over, a few at a time.
 *
 * As the batch processor does, it keeps at most `maxQueueSize` spans not yet exported and drops the
 * rest (counted, and reported through `onProblem`), so a collector that is down never grows the heap.
 */
export class WorkerSpanProcessor implements SpanProcessor {
  private readonly worker: Worker;
  private pending: SpanRecord[] = [];
  /** Handed to the worker and not yet exported (or failed). */
  private unexported = 0;
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
    this.worker = new Worker(new URL('./span-export-worker.mjs', import.meta.url), { workerData: settings });
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

  onStart(): void {}

  onEnd(span: ReadableSpan): void {
    if ((span.spanContext().traceFlags & SAMPLED) === 0 || this.stopped !== undefined) return;
    if (this.unexported + this.pending.length >= this.maxQueueSize) {
      this.dropped++;
      return;
    }
    this.pending.push(recordOf(span));
    if (this.pending.length >= POST_BATCH_SIZE) this.handOver();
  }

  private handOver(): void {
    if (this.dropped > 0) {
      this.onProblem('tracing: spans dropped, the export queue was full', { dropped: this.dropped });
      this.dropped = 0;
    }
    if (this.pending.length === 0) return;
    const spans = this.pending;
    this.pending = [];
    this.unexported += spans.length;
    // as JSON text: V8 clones a string by copying it, while cloning the records field by field cost
    // several times as much on this thread as the stringifying does (measured: docs/benchmarks.md)
    this.worker.postMessage({ type: 'spans', json: JSON.stringify(spans) });
  }

  private request(type: 'flush' | 'shutdown'): Promise<void> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.worker.postMessage({ type, id });
    });
  }

  forceFlush(): Promise<void> {
    this.handOver();
    return this.request('flush');
  }

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
