// What the tracing observer costs a call, before the call layer is wired to it: drives the observer with
// the event sequence of a plain call (admission, guard, one attempt, metering) at a fixed rate, for each
// mode in turn, and reports the CPU time of the events per call and the event-loop delay (which every
// request in the process would wait: it includes the batch exports' serialisation). "events" is the
// time spent inside the observer's methods; "process CPU" is all the process's CPU time (exports and
// the timer loop included) divided by the calls; "loop busy" is the event loop's active time (its
// utilisation: the events, hand-overs to the exporter's thread run by timers, this loop's own work)
// divided by the calls, so compare it with "off". On a shared machine the delays measure the neighbours
// too: compare the modes of one run, and rerun when "off" is not near 1 ms.
//
//   off          the no-op observer (tracing without an OTLP endpoint)
//   sampled-out  tracing on, OTEL_TRACES_SAMPLER=always_off (or a ratio sampler's dropped calls)
//   sampled      tracing on at 100 %, http/protobuf to a collector in another process
//   content      as sampled, with KAIHUB_TRACE_CONTENT=true
//
// Run: node --import tsx bench/tracing-observer.ts [--rate=1000] [--seconds=10]
// Loopback only; every loop is bounded by --seconds.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import type { CallObserver, ObservedCall } from '../src/calls/observer.ts';
import { observeNothing } from '../src/calls/observer.ts';
import type { RoutableDeployment, RoutableProduct } from '../src/catalog/catalog-snapshot.ts';
import { createTracing, type Tracing } from '../src/observability/tracing.ts';
import { readTracingSettings } from '../src/observability/tracing-settings.ts';

const { values } = parseArgs({ options: { rate: { type: 'string' }, seconds: { type: 'string' } } });
const rate = Number(values.rate ?? 1000);
const seconds = Number(values.seconds ?? 10);

// a collector in its own process: reads each export and answers 200, as a collector would
const collector = spawn(
  process.execPath,
  [
    '-e',
    `require('node:http').createServer((q, s) => { q.resume(); q.on('end', () => s.writeHead(200).end()); })
       .listen(0, '127.0.0.1', function () { process.stdout.write(String(this.address().port) + '\\n'); });
     process.stdin.on('end', () => process.exit(0)); process.stdin.resume();`,
  ],
  { stdio: ['pipe', 'pipe', 'inherit'] },
);
const [portLine] = (await once(collector.stdout!, 'data')) as [Buffer];
const endpoint = `http://127.0.0.1:${portLine.toString().trim()}`;

const deployment: RoutableDeployment = {
  id: 'dep_a',
  adapter: 'openai-compatible',
  baseUrl: 'http://127.0.0.1:18081/v1',
  apiKey: null,
  upstreamModel: 'solar-pro2',
  weight: 1,
  priority: 0,
  features: 0,
  maxConcurrent: 100,
  target: {
    deploymentId: 'dep_a',
    baseUrl: 'http://127.0.0.1:18081/v1',
    apiKey: null,
    upstreamModel: 'solar-pro2',
  },
};
const product: RoutableProduct = {
  id: 'prod_solar',
  model: 'solar-pro',
  displayName: 'Solar Pro',
  supplierId: 'sup_upstage',
  supplierName: 'Upstage',
  modality: 'chat',
  residency: 'kr',
  contextWindow: 32_768,
  createdAtSeconds: 0,
  prices: { inputMicroPer1M: 1_000_000_000n, outputMicroPer1M: 2_000_000_000n },
  fallbackModels: [],
  routingStrategy: 'weighted',
  deployments: [deployment],
};
const body = {
  model: 'solar-pro',
  messages: [
    { role: 'system', content: 'You are helpful.' },
    { role: 'user', content: '서울의 인구는 얼마인가요? 간단히 답해 주세요.' },
  ],
  max_tokens: 64,
  temperature: 0.2,
};
const caller = {
  keyId: 'key_1',
  organizationId: 'org_1',
  organizationName: 'org',
  organizationClass: 'sme',
  allowedModels: null,
  fallbackModels: null,
  maxConcurrentRequests: null,
};
const attempt = {
  model: 'solar-pro',
  productId: product.id,
  deploymentId: deployment.id,
  error: null,
  durationMs: 3,
};
const usage = { promptTokens: 20, completionTokens: 12 };

let sequence = 0;
function oneCall(observer: CallObserver): void {
  const call: ObservedCall = {
    requestId: `req_${++sequence}`,
    operation: 'chat',
    caller,
    requestedModel: 'solar-pro',
    body,
    stream: false,
    startedAtMs: Date.now(),
    traceparent: undefined,
    tracestate: undefined,
    product,
    observation: undefined,
    upstreamHeaders: undefined,
  };
  observer.callStarted(call);
  observer.stageStarted(call, 'admission');
  observer.stageEnded(call, 'admission', null);
  observer.stageStarted(call, 'guard');
  observer.stageEnded(call, 'guard', null);
  observer.attemptStarted(call, product, deployment);
  observer.attemptEnded(call, attempt, usage);
  observer.stageStarted(call, 'metering');
  observer.stageEnded(call, 'metering', null);
  observer.callEnded(call, {
    httpStatus: 200,
    errorCode: null,
    record: {
      requestId: call.requestId,
      createdAtMs: call.startedAtMs,
      organizationId: 'org_1',
      apiKeyId: 'key_1',
      productId: product.id,
      deploymentId: deployment.id,
      model: product.model,
      endpoint: 'chat.completions',
      stream: false,
      status: 'ok',
      httpStatus: 200,
      errorCode: null,
      promptTokens: 20,
      completionTokens: 12,
      usageSource: 'upstream',
      priceInputMicroPer1M: product.prices.inputMicroPer1M,
      priceOutputMicroPer1M: product.prices.outputMicroPer1M,
      costMicroKrw: 44_000n,
      latencyMs: 3,
      ttftMs: null,
      usageNote: null,
    },
    servedProduct: product,
    servedDeployment: deployment,
    responseId: 'chatcmpl-1',
    finishReasons: ['stop'],
  });
}

async function run(mode: string, env: Record<string, string> | null): Promise<void> {
  const tracing: Tracing | null = env ? await createTracing(readTracingSettings(env)) : null;
  const observer = tracing?.observer ?? observeNothing;
  for (let i = 0; i < 5_000; i++) oneCall(observer); // warm up the JIT
  await tracing?.forceFlush();
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const cpuBefore = process.cpuUsage();
  const eluBefore = performance.eventLoopUtilization();
  const tickMs = 10;
  const perTick = Math.max(1, Math.round((rate * tickMs) / 1000));
  const deadline = Date.now() + seconds * 1000;
  let calls = 0;
  let cpuNs = 0n;
  while (Date.now() < deadline) {
    const started = process.hrtime.bigint();
    for (let i = 0; i < perTick; i++) oneCall(observer);
    cpuNs += process.hrtime.bigint() - started;
    calls += perTick;
    await sleep(tickMs);
  }
  delay.disable();
  const elu = performance.eventLoopUtilization(eluBefore);
  await tracing?.shutdown();
  const cpu = process.cpuUsage(cpuBefore);
  const ms = (ns: number) => (ns / 1e6).toFixed(3);
  console.log(
    `${mode.padEnd(12)} events ${(Number(cpuNs / BigInt(calls)) / 1000).toFixed(1).padStart(5)} µs/call,` +
      ` loop busy ${((elu.active * 1000) / calls).toFixed(1).padStart(5)} µs/call,` +
      ` process CPU ${((cpu.user + cpu.system) / calls).toFixed(1).padStart(5)} µs/call` +
      `   event-loop delay p50 ${ms(delay.percentile(50))} p99 ${ms(delay.percentile(99))} max ${ms(delay.max)} ms` +
      `   (${calls} calls)`,
  );
}

const on = { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint };
console.log(`${rate} calls/s, ${seconds} s per mode, node ${process.version}`);
await run('off', null);
await run('sampled-out', { ...on, OTEL_TRACES_SAMPLER: 'always_off' });
await run('sampled', on);
await run('content', { ...on, KAIHUB_TRACE_CONTENT: 'true' });
for (const size of ['512', '32']) await run(`batch ${size}`, { ...on, OTEL_BSP_MAX_EXPORT_BATCH_SIZE: size });
collector.stdin!.end();
