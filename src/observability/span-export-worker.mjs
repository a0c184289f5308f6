// The OTLP exporter's thread: receives the records of traced calls from the event loop
// (span-export.ts), rebuilds their spans in the read-only shape the official exporter reads
// (call-records.mjs), and exports them with it (OTLP/HTTP, protobuf or JSON). Making and serialising
// spans on the event loop cost every request behind them (docs/decisions/0009-tracing.md).
// Plain JavaScript, so the worker starts without the TypeScript loader.
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import { appendCallSpans, decodeCall } from './call-records.mjs';
import { newSpanId } from './trace-ids.mjs';

const settings = workerData;
/** Nice value of this thread (0 normal, 19 lowest). */
const EXPORT_THREAD_NICE = 10;

// Below the event loop's priority: woken by each hand-over, this thread at the same priority was run
// at once on the event loop's own core, which then waited for it (measured: a hand-over took 3–4 times
// as long). Not SCHED_IDLE, as the journal applier is: measured, that dropped more spans at saturation
// and added more at the p99, not less (docs/benchmarks.md, 2026-12-01). Exporting can wait for
// requests; under a long overload the queue fills and spans are dropped (counted and logged), as the
// batch processor does. On Linux a thread has its own nice value (setpriority with 0 is the calling
// thread); elsewhere it would be the whole process's, so not there.
if (process.platform === 'linux') {
  try {
    setPriority(0, EXPORT_THREAD_NICE);
  } catch {
    // a container may forbid it: exporting at the normal priority still works
  }
}
const { OTLPTraceExporter } =
  settings.protocol === 'http/json'
    ? await import('@opentelemetry/exporter-trace-otlp-http')
    : await import('@opentelemetry/exporter-trace-otlp-proto');

const exporter = new OTLPTraceExporter({
  url: settings.url,
  headers: settings.headers,
  timeoutMillis: settings.timeoutMillis,
  compression: settings.compression,
  concurrencyLimit: settings.concurrencyLimit,
});
const rebuild = {
  resource: defaultResource().merge(resourceFromAttributes(settings.resourceAttributes)),
  instrumentationScope: { name: settings.scopeName, version: undefined, schemaUrl: undefined },
  newSpanId,
};

/** Deployments' constants by the id calls name them with; sent once each, before the calls. */
const upstreams = new Map();
/** Exports of spans still in flight, so that a flush can wait for them. */
const inFlight = new Set();
/** Spans rebuilt and not exported yet: exported `exportBatchSize` at a time, or every `delayMs`. */
const queue = [];

function exportBatch(spans) {
  const done = new Promise((resolve) => {
    exporter.export(spans, (result) => {
      // code 0: success; a failure is the main thread's to log (this thread has no logger)
      if (result.code !== 0) {
        parentPort.postMessage({
          type: 'failed',
          spans: spans.length,
          error: String(result.error?.message ?? result.error ?? 'export failed'),
        });
      }
      parentPort.postMessage({ type: 'exported', spans: spans.length });
      resolve();
    });
  });
  inFlight.add(done);
  done.finally(() => inFlight.delete(done));
}

function exportQueued(all) {
  while (queue.length >= settings.exportBatchSize || (all && queue.length > 0)) {
    exportBatch(queue.splice(0, settings.exportBatchSize));
  }
}

setInterval(() => exportQueued(true), settings.delayMs).unref();

parentPort.on('message', async (m) => {
  if (m.type === 'calls') {
    for (const upstream of m.upstreams) upstreams.set(upstream.id, upstream);
    let rebuilt = 0;
    for (const call of JSON.parse(m.json)) {
      rebuilt += appendCallSpans(queue, decodeCall(call), upstreams, rebuild);
    }
    // spans the event loop counted that could not be rebuilt (none, unless a bug): not waiting for export
    if (rebuilt < m.spans) parentPort.postMessage({ type: 'exported', spans: m.spans - rebuilt });
    exportQueued(false);
    return;
  }
  if (m.type === 'flush' || m.type === 'shutdown') {
    exportQueued(true);
    await Promise.all([...inFlight]);
    if (m.type === 'shutdown') await exporter.shutdown();
    else await exporter.forceFlush();
    parentPort.postMessage({ type: 'done', id: m.id });
  }
});
