import { ConfigError } from '../config-error.ts';

/**
 * Traces are exported only when an OTLP endpoint is given; everything else follows the OpenTelemetry
 * SDK environment variables (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/
 * and .../protocol/exporter/). They are read here, from the hub's environment, rather than by the SDK
 * from `process.env`, so that a bad value is one clear line at start (the SDK only logs and falls back)
 * and so that a test hub configured by an `env` object traces like a real one.
 */
export interface TracingSettings {
  /** Where spans are POSTed: the traces endpoint as given, or the general endpoint + `v1/traces`. */
  url: string;
  protocol: 'http/protobuf' | 'http/json';
  /** Sent with every export (authentication for hosted back ends). */
  headers: Record<string, string>;
  exportTimeoutMs: number | undefined;
  compression: 'gzip' | 'none' | undefined;
  /** OTEL_SERVICE_NAME; unset: `service.name` of OTEL_RESOURCE_ATTRIBUTES, else `kaihub`. */
  serviceName: string | undefined;
  /** OTEL_RESOURCE_ATTRIBUTES. */
  resourceAttributes: Record<string, string>;
  sampler: TraceSamplerName;
  /** OTEL_TRACES_SAMPLER_ARG for the ratio samplers: the share of traces kept, 0…1. */
  samplerRatio: number;
  batch: {
    maxQueueSize: number | undefined;
    maxExportBatchSize: number | undefined;
    scheduledDelayMillis: number | undefined;
    exportTimeoutMillis: number | undefined;
  };
  /** KAIHUB_TRACE_CONTENT: prompts in spans (`gen_ai.input.messages`), off unless the operator asks. */
  recordContent: boolean;
}

export const TRACE_SAMPLERS = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
] as const;
export type TraceSamplerName = (typeof TRACE_SAMPLERS)[number];

type Env = Record<string, string | undefined>;

function value(env: Env, name: string): string | undefined {
  const raw = env[name];
  return raw === undefined || raw.trim() === '' ? undefined : raw.trim();
}

function flag(env: Env, name: string): boolean {
  const raw = value(env, name)?.toLowerCase();
  if (raw === undefined || ['0', 'false', 'no', 'off'].includes(raw)) return false;
  if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
  throw new ConfigError(`${name}: expected true or false, got "${raw}"`);
}

function count(env: Env, name: string, min: number): number | undefined {
  const raw = value(env, name);
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw)) throw new ConfigError(`${name}: expected a whole number, got "${raw}"`);
  const n = Number(raw);
  if (n < min || n > 2 ** 31 - 1) throw new ConfigError(`${name}: must be between ${min} and 2147483647`);
  return n;
}

function httpUrl(raw: string, name: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`${name}: not a URL: "${raw}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(`${name}: expected an http:// or https:// URL, got "${raw}"`);
  }
  return url;
}

/**
 * `key1=value1,key2=value2` with percent-encoded values (the W3C Baggage format the spec names for
 * OTEL_EXPORTER_OTLP_HEADERS and OTEL_RESOURCE_ATTRIBUTES).
 */
export function parseKeyValueList(raw: string | undefined, name: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (raw === undefined) return out;
  for (const item of raw.split(',')) {
    if (item.trim() === '') continue;
    const eq = item.indexOf('=');
    const key = eq < 0 ? '' : item.slice(0, eq).trim();
    if (key === '') throw new ConfigError(`${name}: expected key=value pairs separated by commas`);
    try {
      out[key] = decodeURIComponent(item.slice(eq + 1).trim());
    } catch {
      throw new ConfigError(`${name}: the value of "${key}" is not valid percent-encoding`);
    }
  }
  return out;
}

function tracesUrl(env: Env): string | undefined {
  const specific = value(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  if (specific !== undefined) return httpUrl(specific, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT').href;
  const general = value(env, 'OTEL_EXPORTER_OTLP_ENDPOINT');
  if (general === undefined) return undefined;
  // the general endpoint is a base: the signal's path is appended to it (OTLP exporter spec)
  const base = httpUrl(general, 'OTEL_EXPORTER_OTLP_ENDPOINT').href;
  return `${base.endsWith('/') ? base : `${base}/`}v1/traces`;
}

function protocolOf(env: Env): TracingSettings['protocol'] {
  const name = value(env, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL')
    ? 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL'
    : 'OTEL_EXPORTER_OTLP_PROTOCOL';
  const raw = value(env, name) ?? 'http/protobuf';
  if (raw === 'http/protobuf' || raw === 'http/json') return raw;
  throw new ConfigError(
    `${name}: expected http/protobuf or http/json, got "${raw}" (grpc is not supported: use OTLP over HTTP, port 4318 on a collector)`,
  );
}

function samplerOf(env: Env): { sampler: TraceSamplerName; samplerRatio: number } {
  const raw = value(env, 'OTEL_TRACES_SAMPLER') ?? 'parentbased_always_on';
  const sampler = TRACE_SAMPLERS.find((s) => s === raw);
  if (sampler === undefined) {
    throw new ConfigError(`OTEL_TRACES_SAMPLER: expected one of ${TRACE_SAMPLERS.join(', ')}, got "${raw}"`);
  }
  const arg = value(env, 'OTEL_TRACES_SAMPLER_ARG');
  if (arg === undefined || !sampler.endsWith('traceidratio')) return { sampler, samplerRatio: 1 };
  const ratio = Number(arg);
  if (!/^\d*\.?\d+$/.test(arg) || !(ratio >= 0 && ratio <= 1)) {
    throw new ConfigError(`OTEL_TRACES_SAMPLER_ARG: expected a number from 0 to 1, got "${arg}"`);
  }
  return { sampler, samplerRatio: ratio };
}

function compressionOf(env: Env): TracingSettings['compression'] {
  const name = value(env, 'OTEL_EXPORTER_OTLP_TRACES_COMPRESSION')
    ? 'OTEL_EXPORTER_OTLP_TRACES_COMPRESSION'
    : 'OTEL_EXPORTER_OTLP_COMPRESSION';
  const raw = value(env, name);
  if (raw === undefined || raw === 'gzip' || raw === 'none') return raw;
  throw new ConfigError(`${name}: expected gzip or none, got "${raw}"`);
}

/**
 * The tracing settings in `env`, or null when traces are off: no OTLP endpoint, `OTEL_SDK_DISABLED`,
 * or `OTEL_TRACES_EXPORTER=none`. Throws ConfigError naming the variable for a bad value.
 */
export function readTracingSettings(env: Env): TracingSettings | null {
  const url = tracesUrl(env);
  if (url === undefined || flag(env, 'OTEL_SDK_DISABLED')) return null;
  const exporter = value(env, 'OTEL_TRACES_EXPORTER') ?? 'otlp';
  if (exporter === 'none') return null;
  if (exporter !== 'otlp') {
    throw new ConfigError(
      `OTEL_TRACES_EXPORTER: the hub exports traces with otlp (or none), got "${exporter}"`,
    );
  }
  return {
    url,
    protocol: protocolOf(env),
    // signal-specific headers win over the general ones, key by key
    headers: Object.assign(
      parseKeyValueList(value(env, 'OTEL_EXPORTER_OTLP_HEADERS'), 'OTEL_EXPORTER_OTLP_HEADERS'),
      parseKeyValueList(value(env, 'OTEL_EXPORTER_OTLP_TRACES_HEADERS'), 'OTEL_EXPORTER_OTLP_TRACES_HEADERS'),
    ),
    exportTimeoutMs:
      count(env, 'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT', 1) ?? count(env, 'OTEL_EXPORTER_OTLP_TIMEOUT', 1),
    compression: compressionOf(env),
    serviceName: value(env, 'OTEL_SERVICE_NAME'),
    resourceAttributes: parseKeyValueList(value(env, 'OTEL_RESOURCE_ATTRIBUTES'), 'OTEL_RESOURCE_ATTRIBUTES'),
    ...samplerOf(env),
    batch: {
      maxQueueSize: count(env, 'OTEL_BSP_MAX_QUEUE_SIZE', 1),
      maxExportBatchSize: count(env, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 1),
      scheduledDelayMillis: count(env, 'OTEL_BSP_SCHEDULE_DELAY', 0),
      exportTimeoutMillis: count(env, 'OTEL_BSP_EXPORT_TIMEOUT', 1),
    },
    recordContent: flag(env, 'KAIHUB_TRACE_CONTENT'),
  };
}
