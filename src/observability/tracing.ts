import { randomUUID } from 'node:crypto';
import type { Sampler } from '@opentelemetry/sdk-trace-base';
import type { CallObserver } from '../calls/observer.ts';
import type { Logger } from './logger.ts';
import type { TracingSettings } from './tracing-settings.ts';

/** Traces of `/v1` calls, exported over OTLP/HTTP while the hub runs. */
export interface Tracing {
  /** The call observer that makes the spans (calls/observer.ts). */
  observer: CallObserver;
  /** Sends every span ended so far (tests, and before a planned stop). */
  forceFlush(): Promise<void>;
  /** Sends what is left and stops exporting; never rejects (a failed last export is logged). */
  shutdown(): Promise<void>;
}

export interface TracingOptions {
  /** Where the SDK's own warnings go (an unreachable collector, a full queue). */
  logger?: Logger;
}

/**
 * Spans per export when OTEL_BSP_MAX_EXPORT_BATCH_SIZE is unset. The specification's 512 makes one
 * serialisation block the event loop for milliseconds (docs/decisions/0009-tracing.md has the figures);
 * small batches keep each block short at the same total cost.
 */
export const DEFAULT_EXPORT_BATCH_SIZE = 64;

type SdkModule = typeof import('@opentelemetry/sdk-trace-base');
type SpanExporter = import('@opentelemetry/sdk-trace-base').SpanExporter;

/**
 * The batch processor exports as soon as a batch is full, from inside `span.end()`, and the OTLP
 * exporter serialises the batch before it sends it: that would run in the middle of whichever call
 * ended the batch's last span. Deferred to the next turn of the event loop, it runs between calls.
 */
class DeferredExporter implements SpanExporter {
  constructor(private readonly inner: SpanExporter) {}

  export(...args: Parameters<SpanExporter['export']>): void {
    setImmediate(() => this.inner.export(...args));
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

function samplerOf(sdk: SdkModule, settings: TracingSettings): Sampler {
  const ratio = () => new sdk.TraceIdRatioBasedSampler(settings.samplerRatio);
  switch (settings.sampler) {
    case 'always_on':
      return new sdk.AlwaysOnSampler();
    case 'always_off':
      return new sdk.AlwaysOffSampler();
    case 'traceidratio':
      return ratio();
    case 'parentbased_always_on':
      return new sdk.ParentBasedSampler({ root: new sdk.AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new sdk.ParentBasedSampler({ root: new sdk.AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new sdk.ParentBasedSampler({ root: ratio() });
  }
}

/**
 * Starts the OpenTelemetry SDK for the hub's traces, or returns null when `settings` is null (tracing
 * off): the SDK is imported only here, so a hub without an OTLP endpoint never loads it and keeps the
 * no-op observer. Nothing is registered globally except the SDK's diagnostic logger: the tracer is the
 * hub's own, so an embedding application's OpenTelemetry setup is left alone.
 */
export async function createTracing(
  settings: TracingSettings | null,
  options: TracingOptions = {},
): Promise<Tracing | null> {
  if (settings === null) return null;
  const [api, sdk, resources, exporters, { CallTracer }] = await Promise.all([
    import('@opentelemetry/api'),
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/resources'),
    settings.protocol === 'http/json'
      ? import('@opentelemetry/exporter-trace-otlp-http')
      : import('@opentelemetry/exporter-trace-otlp-proto'),
    import('./call-tracer.ts'),
  ]);
  const logger = options.logger;
  if (logger) {
    const log = (message: string, ...args: unknown[]) =>
      logger.warn({ otel: args }, `opentelemetry: ${message}`);
    api.diag.setLogger(
      { error: log, warn: log, info: () => {}, debug: () => {}, verbose: () => {} },
      { logLevel: api.DiagLogLevel.WARN, suppressOverrideMessage: true },
    );
  }

  // OTEL_SERVICE_NAME wins over a service.name in OTEL_RESOURCE_ATTRIBUTES (SDK configuration spec)
  const attributes: Record<string, string> = {
    'service.name': 'kaihub',
    'service.instance.id': randomUUID(),
  };
  Object.assign(attributes, settings.resourceAttributes);
  if (settings.serviceName !== undefined) attributes['service.name'] = settings.serviceName;

  // the specification's defaults (but the batch size), given here so that the settings, not process.env, decide
  const maxQueueSize = settings.batch.maxQueueSize ?? 2048;
  const maxExportBatchSize = Math.min(
    settings.batch.maxExportBatchSize ?? DEFAULT_EXPORT_BATCH_SIZE,
    maxQueueSize,
  );
  type ExporterConfig = NonNullable<ConstructorParameters<typeof exporters.OTLPTraceExporter>[0]>;
  const exporter = new exporters.OTLPTraceExporter({
    url: settings.url,
    headers: settings.headers,
    timeoutMillis: settings.exportTimeoutMs,
    // the SDK's enum has the values 'gzip' and 'none' that the settings hold
    compression: settings.compression as ExporterConfig['compression'],
    // a flush sends the whole queue at once: every batch of it may be in flight together
    concurrencyLimit: Math.ceil(maxQueueSize / maxExportBatchSize) + 1,
  });
  const processor = new sdk.BatchSpanProcessor(new DeferredExporter(exporter), {
    maxQueueSize,
    maxExportBatchSize,
    scheduledDelayMillis: settings.batch.scheduledDelayMillis ?? 5000,
    exportTimeoutMillis: settings.batch.exportTimeoutMillis ?? 30_000,
  });
  const provider = new sdk.BasicTracerProvider({
    resource: resources.defaultResource().merge(resources.resourceFromAttributes(attributes)),
    sampler: samplerOf(sdk, settings),
    spanProcessors: [processor],
  });
  const tracer = provider.getTracer('kaihub');
  logger?.info(
    {
      url: settings.url,
      protocol: settings.protocol,
      sampler: settings.sampler,
      content: settings.recordContent,
    },
    'tracing on: exporting spans over OTLP',
  );

  let stopped: Promise<void> | undefined;
  return {
    observer: new CallTracer(tracer, { recordContent: settings.recordContent }),
    forceFlush: () => provider.forceFlush(),
    shutdown() {
      stopped ??= provider.shutdown().catch((error: unknown) => {
        logger?.warn({ err: error }, 'tracing: the last spans could not be exported');
      });
      return stopped;
    },
  };
}
