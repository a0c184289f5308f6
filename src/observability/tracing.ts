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
  /** Masks personal data in recorded content (KAIHUB_TRACE_CONTENT). */
  redact?: (text: string) => string;
}

/** Spans per OTLP export when OTEL_BSP_MAX_EXPORT_BATCH_SIZE is unset: the specification's. */
export const DEFAULT_EXPORT_BATCH_SIZE = 512;

type SdkModule = typeof import('@opentelemetry/sdk-trace-base');

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
 * Starts tracing for the hub, or returns null when `settings` is null (tracing off): OpenTelemetry is
 * imported only here, so a hub without an OTLP endpoint never loads it and keeps the no-op observer.
 * The SDK's sampler decides on the event loop; spans are made and exported on a worker thread
 * (call-tracer.ts, span-export.ts). Nothing is registered globally except the SDK's diagnostic logger,
 * so an embedding application's OpenTelemetry setup is left alone.
 */
export async function createTracing(
  settings: TracingSettings | null,
  options: TracingOptions = {},
): Promise<Tracing | null> {
  if (settings === null) return null;
  const [api, sdk, CallTracer, { WorkerCallExporter }] = await Promise.all([
    import('@opentelemetry/api'),
    import('@opentelemetry/sdk-trace-base'),
    import('./call-tracer.ts').then((m) => m.loadCallTracer()),
    import('./span-export.ts'),
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
  // spans are made and exported on a worker thread, by the official OTLP exporter (span-export.ts)
  const exporter = new WorkerCallExporter(
    {
      url: settings.url,
      protocol: settings.protocol,
      headers: settings.headers,
      // the exporter's own timeout, else the batch processor's export timeout bounds each export
      timeoutMillis: settings.exportTimeoutMs ?? settings.batch.exportTimeoutMillis,
      compression: settings.compression,
      // a flush sends the whole queue at once: every batch of it may be in flight together
      concurrencyLimit: Math.ceil(maxQueueSize / maxExportBatchSize) + 1,
      resourceAttributes: attributes,
      scopeName: 'kaihub',
      exportBatchSize: maxExportBatchSize,
      delayMs: settings.batch.scheduledDelayMillis ?? 5000,
    },
    maxQueueSize,
    (message, details) => logger?.warn(details, message),
  );
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
    observer: new CallTracer(samplerOf(sdk, settings), exporter, {
      recordContent: settings.recordContent,
      redact: options.redact,
    }),
    forceFlush: () => exporter.forceFlush(),
    shutdown() {
      stopped ??= exporter.shutdown().catch((error: unknown) => {
        logger?.warn({ err: error }, 'tracing: the last spans could not be exported');
      });
      return stopped;
    },
  };
}
