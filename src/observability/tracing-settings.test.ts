import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../config.ts';
import { ConfigError } from '../config-error.ts';
import { readTracingSettings } from './tracing-settings.ts';

test('no OTLP endpoint, OTEL_SDK_DISABLED or OTEL_TRACES_EXPORTER=none: tracing is off', () => {
  assert.equal(readTracingSettings({}), null);
  assert.equal(readTracingSettings({ OTEL_SERVICE_NAME: 'x', KAIHUB_TRACE_CONTENT: 'true' }), null);
  assert.equal(readTracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: '' }), null);
  const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' };
  assert.equal(readTracingSettings({ ...endpoint, OTEL_SDK_DISABLED: 'true' }), null);
  assert.equal(readTracingSettings({ ...endpoint, OTEL_TRACES_EXPORTER: 'none' }), null);
  assert.equal(loadConfig({}).tracing, null);
});

test('defaults: http/protobuf to <endpoint>/v1/traces, parent-based always on, the spec batch sizes left to the SDK', () => {
  const s = readTracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' });
  assert.deepEqual(s, {
    url: 'http://collector:4318/v1/traces',
    protocol: 'http/protobuf',
    headers: {},
    exportTimeoutMs: undefined,
    compression: undefined,
    serviceName: undefined,
    resourceAttributes: {},
    sampler: 'parentbased_always_on',
    samplerRatio: 1,
    batch: {
      maxQueueSize: undefined,
      maxExportBatchSize: undefined,
      scheduledDelayMillis: undefined,
      exportTimeoutMillis: undefined,
    },
    recordContent: false,
  });
  assert.deepEqual(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }).tracing, s);
});

test('the general endpoint is a base; the traces endpoint is used as it is', () => {
  const url = (env: Record<string, string>) => readTracingSettings(env)?.url;
  assert.equal(
    url({ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://otel.example.kr/base/' }),
    'https://otel.example.kr/base/v1/traces',
  );
  assert.equal(
    url({ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://otel.example.kr/base' }),
    'https://otel.example.kr/base/v1/traces',
  );
  assert.equal(
    url({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://ignored:4318',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/custom/path',
    }),
    'http://collector:4318/custom/path',
  );
});

test('every standard variable is read: protocol, headers, timeout, compression, sampler, batch, resource', () => {
  const s = readTracingSettings({
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces',
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
    OTEL_EXPORTER_OTLP_HEADERS: 'api-key=a%3Db,x-scope=general',
    OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x-scope=traces',
    OTEL_EXPORTER_OTLP_TIMEOUT: '3000',
    OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: 'gzip',
    OTEL_SERVICE_NAME: 'kaihub-seoul',
    OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=prod, host.name=hub%201',
    OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
    OTEL_TRACES_SAMPLER_ARG: '0.25',
    OTEL_BSP_MAX_QUEUE_SIZE: '4096',
    OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '1024',
    OTEL_BSP_SCHEDULE_DELAY: '1000',
    OTEL_BSP_EXPORT_TIMEOUT: '10000',
    KAIHUB_TRACE_CONTENT: 'true',
  });
  assert.ok(s);
  assert.equal(s.protocol, 'http/json');
  assert.deepEqual(s.headers, { 'api-key': 'a=b', 'x-scope': 'traces' });
  assert.equal(s.exportTimeoutMs, 3000);
  assert.equal(s.compression, 'gzip');
  assert.equal(s.serviceName, 'kaihub-seoul');
  assert.deepEqual(s.resourceAttributes, { 'deployment.environment.name': 'prod', 'host.name': 'hub 1' });
  assert.equal(s.sampler, 'parentbased_traceidratio');
  assert.equal(s.samplerRatio, 0.25);
  assert.deepEqual(s.batch, {
    maxQueueSize: 4096,
    maxExportBatchSize: 1024,
    scheduledDelayMillis: 1000,
    exportTimeoutMillis: 10000,
  });
  assert.equal(s.recordContent, true);
});

test('each bad value is one ConfigError naming the variable (and loadConfig stops on it)', () => {
  const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' };
  const cases: [Record<string, string>, RegExp][] = [
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }, /^OTEL_EXPORTER_OTLP_ENDPOINT: expected an http/],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'not a url' }, /^OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: not a URL/],
    [
      { ...endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' },
      /^OTEL_EXPORTER_OTLP_PROTOCOL: .*grpc is not supported/,
    ],
    [
      { ...endpoint, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'json' },
      /^OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: expected/,
    ],
    [{ ...endpoint, OTEL_TRACES_SAMPLER: 'sometimes' }, /^OTEL_TRACES_SAMPLER: expected one of always_on/],
    [
      { ...endpoint, OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '1.5' },
      /^OTEL_TRACES_SAMPLER_ARG: /,
    ],
    [
      { ...endpoint, OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: 'half' },
      /^OTEL_TRACES_SAMPLER_ARG: /,
    ],
    [{ ...endpoint, OTEL_BSP_MAX_QUEUE_SIZE: '-1' }, /^OTEL_BSP_MAX_QUEUE_SIZE: expected a whole number/],
    [{ ...endpoint, OTEL_BSP_EXPORT_TIMEOUT: '0' }, /^OTEL_BSP_EXPORT_TIMEOUT: must be between 1/],
    [
      { ...endpoint, OTEL_EXPORTER_OTLP_HEADERS: 'novalue' },
      /^OTEL_EXPORTER_OTLP_HEADERS: expected key=value/,
    ],
    [{ ...endpoint, OTEL_EXPORTER_OTLP_HEADERS: 'k=%zz' }, /^OTEL_EXPORTER_OTLP_HEADERS: the value of "k"/],
    [
      { ...endpoint, OTEL_EXPORTER_OTLP_COMPRESSION: 'brotli' },
      /^OTEL_EXPORTER_OTLP_COMPRESSION: expected gzip/,
    ],
    [
      { ...endpoint, OTEL_TRACES_EXPORTER: 'zipkin' },
      /^OTEL_TRACES_EXPORTER: the hub exports traces with otlp/,
    ],
    [{ ...endpoint, KAIHUB_TRACE_CONTENT: 'maybe' }, /^KAIHUB_TRACE_CONTENT: expected true or false/],
  ];
  for (const [env, message] of cases) {
    for (const read of [() => readTracingSettings(env), () => loadConfig(env)]) {
      assert.throws(
        read,
        (e: unknown) => e instanceof ConfigError && message.test(e.message),
        JSON.stringify(env),
      );
    }
  }
});
