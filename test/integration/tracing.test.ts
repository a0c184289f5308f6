import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger } from '../../src/observability/logger.ts';
import { startFakeOtlpCollector } from '../fakes/otlp-collector.ts';
import { startTestHub } from '../helpers/hub.ts';

test('a hub with an OTLP endpoint starts the tracer, and closes it with the hub', async () => {
  const collector = await startFakeOtlpCollector();
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  const hub = await startTestHub(
    { OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' },
    { logger: createLogger('info', destination) },
  );
  try {
    const started = lines.find((l) => l.msg === 'tracing on: exporting spans over OTLP');
    assert.ok(started, 'the hub says where its spans go');
    assert.equal(started.url, `${collector.url}/v1/traces`);
    assert.equal(started.protocol, 'http/json');
    assert.equal(started.content, false);
  } finally {
    await hub.close();
    await collector.close();
  }
});
