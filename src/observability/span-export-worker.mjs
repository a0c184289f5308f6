// The OTLP exporter's thread: receives ended spans as plain records from the event loop
// (span-export.ts), turns them back into the read-only span shape the official exporter reads, and
// exports them with it (OTLP/HTTP, protobuf or JSON). Serialising spans took 6–25 µs each and, done on
// the event loop in batches, blocked every request behind a batch (docs/decisions/0009-tracing.md).
// Plain JavaScript, so the worker starts without the TypeScript loader.
import { parentPort, workerData } from 'node:worker_threads';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';

const settings = workerData;
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
const resource = defaultResource().merge(resourceFromAttributes(settings.resourceAttributes));
const scope = { name: settings.scopeName, version: undefined, schemaUrl: undefined };

/** A record from span-export.ts as the exporter reads a span (sdk-trace-base's ReadableSpan). */
function toReadableSpan(r) {
  const context = {
    traceId: r.traceId,
    spanId: r.spanId,
    traceFlags: r.traceFlags,
    traceState: r.traceState === undefined ? undefined : { serialize: () => r.traceState },
  };
  return {
    name: r.name,
    kind: r.kind,
    spanContext: () => context,
    parentSpanContext:
      r.parentSpanId === undefined
        ? undefined
        : {
            traceId: r.traceId,
            spanId: r.parentSpanId,
            traceFlags: r.traceFlags,
            isRemote: r.parentIsRemote,
          },
    startTime: r.startTime,
    endTime: r.endTime,
    duration: r.duration,
    status: r.status,
    attributes: r.attributes,
    links: [],
    events: r.events,
    ended: true,
    resource,
    instrumentationScope: scope,
    droppedAttributesCount: r.droppedAttributesCount,
    droppedEventsCount: r.droppedEventsCount,
    droppedLinksCount: 0,
  };
}

/** Exports of spans still in flight, so that a flush can wait for them. */
const inFlight = new Set();
/** Spans received and not exported yet: exported `exportBatchSize` at a time, or every `delayMs`. */
const queue = [];

function exportBatch(records) {
  const done = new Promise((resolve) => {
    exporter.export(records.map(toReadableSpan), (result) => {
      // code 0: success; a failure is the main thread's to log (this thread has no logger)
      if (result.code !== 0) {
        parentPort.postMessage({
          type: 'failed',
          spans: records.length,
          error: String(result.error?.message ?? result.error ?? 'export failed'),
        });
      }
      parentPort.postMessage({ type: 'exported', spans: records.length });
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
  if (m.type === 'spans') {
    for (const span of JSON.parse(m.json)) queue.push(span);
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
