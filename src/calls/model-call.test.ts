import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UpstreamError } from '../providers/adapter.ts';
import { createKit, deployment, product } from './call-test-kit.ts';
import { CallStreamError } from './errors.ts';
import type { CallOutcome } from './model-call.ts';

const chat = (extra: Record<string, unknown> = {}) => ({
  model: 'm',
  messages: [{ role: 'user', content: 'hello there' }],
  ...extra,
});

type Kit = ReturnType<typeof createKit>;

/** Every pair opened by the calls so far closed exactly once. */
function assertAllClosed(kit: Kit, calls: number) {
  const { admission, observer, concurrency, router, guard } = kit;
  assert.equal(
    admission.settled.length + admission.released,
    admission.admitted,
    'one settle or release per ticket',
  );
  assert.equal(observer.started, calls, 'every call started');
  assert.equal(observer.ended, calls, 'every call ended once');
  assert.equal(observer.stagesOpen, 0, 'every stage closed');
  assert.equal(observer.attemptsOpen, 0, 'every attempt closed');
  assert.equal(concurrency.inProgress('org_1'), 0, 'the organisation slot given back');
  assert.equal(router.load.inFlight('d1') + router.load.inFlight('d2'), 0, 'deployment slots given back');
  assert.equal(guard.ended, guard.begun, 'every guard session ended');
}

async function readAll(outcome: CallOutcome): Promise<{ chunks: unknown[]; error: unknown }> {
  assert.equal(outcome.type, 'stream');
  const chunks: unknown[] = [];
  try {
    for await (const c of (outcome as { stream: AsyncIterable<unknown> }).stream) chunks.push(c);
    return { chunks, error: undefined };
  } catch (error) {
    return { chunks, error };
  }
}

test('in-process: a plain call, a stream and embeddings through the same layer, each metered once', async () => {
  const kit = createKit([product('m', [deployment('d1')]), product('e', [deployment('d1')])]);
  const plain = await kit.layer.create(kit.input(chat())).run();
  assert.equal(plain.type, 'completed');
  assert.equal(
    (plain as unknown as { body: { model: string } }).body.model,
    'm',
    'the product id, not the upstream name',
  );

  kit.adapter.scripts.push({ stream: ['a', 'b'] });
  const streamed = await readAll(await kit.layer.create(kit.input(chat({ stream: true }))).run());
  assert.equal(streamed.error, undefined);
  assert.equal(streamed.chunks.length, 3);

  const embedded = await kit.layer.create(kit.input({ model: 'e', input: 'x' }, 'embeddings')).run();
  assert.equal(embedded.type, 'completed');
  assert.deepEqual(
    kit.journal.records.map((r) => [r.endpoint, r.stream, r.status]),
    [
      ['chat.completions', false, 'ok'],
      ['chat.completions', true, 'ok'],
      ['embeddings', false, 'ok'],
    ],
  );
  assert.equal(kit.admission.settled.length, 3);
  assertAllClosed(kit, 3);
  assert.deepEqual(kit.observer.events.slice(0, 9), [
    'call+',
    'admission+',
    'admission-',
    'guard+',
    'guard-',
    'attempt+',
    'attempt-',
    'metering+',
    'metering-',
  ]);
});

test('a failure injected at each stage of a plain call: a clear error, nothing charged, everything closed', async () => {
  const kit = createKit([product('m', [deployment('d1')])]);
  let calls = 0;
  const run = async (body = chat()) => {
    calls++;
    return kit.layer.create(kit.input(body)).run();
  };

  kit.admission.throws = new Error('admission store down');
  assert.equal(((await run()) as { error: { status: number } }).error.status, 500);
  kit.admission.throws = undefined;

  kit.admission.refuse = true;
  assert.equal(((await run()) as { error: { status: number } }).error.status, 429);
  kit.admission.refuse = false;

  kit.guard.throwAt = 'begin';
  assert.equal(((await run()) as { error: { status: number } }).error.status, 500);
  kit.guard.throwAt = null;

  kit.guard.refuse = true;
  const refused = (await run()) as { error: { status: number; code: string } };
  assert.equal(refused.error.code, 'pii_blocked');
  kit.guard.refuse = false;

  kit.guard.throwAt = 'completed';
  assert.equal(((await run()) as { error: { status: number } }).error.status, 500);
  kit.guard.throwAt = null;

  kit.adapter.scripts.push({ throws: new TypeError('a bug in an adapter') });
  assert.equal(((await run()) as { error: { status: number } }).error.status, 500);

  kit.adapter.scripts.push({ throws: new UpstreamError('http', 'x', { status: 400 }) });
  assert.equal(((await run()) as { error: { status: number } }).error.status, 400);

  // the journal cannot be written: the answer is not given (it could not be charged), the hold is released
  kit.journal.failing = new Error('disk full');
  assert.equal(((await run()) as { error: { status: number } }).error.status, 500);
  kit.journal.failing = undefined;

  assert.equal(kit.admission.settled.length, 0, 'nothing was charged');
  assertAllClosed(kit, calls);
});

test('a failure injected at each point of a stream: exactly one settle or release, everything closed', async () => {
  const kit = createKit([product('m', [deployment('d1')])]);
  let calls = 0;
  const stream = async () => {
    calls++;
    return kit.layer.create(kit.input(chat({ stream: true }))).run();
  };

  // the guard fails on a chunk: the client gets an internal error event; what it got is charged
  kit.guard.throwAt = 'chunk';
  kit.adapter.scripts.push({ stream: ['a', 'b'] });
  const guardFailed = await readAll(await stream());
  assert.ok(guardFailed.error instanceof CallStreamError);
  assert.equal((guardFailed.error as CallStreamError).error.status, 500);
  kit.guard.throwAt = null;

  // the upstream breaks off after one chunk
  kit.adapter.scripts.push({ stream: ['a', 'b', 'c'], breakAfter: 1 });
  const broke = await readAll(await stream());
  assert.equal((broke.error as CallStreamError).error.status, 502);
  assert.equal(kit.journal.records.at(-1)!.status, 'upstream_error');
  assert.ok(kit.journal.records.at(-1)!.costMicroKrw > 0n, 'the delivered chunk is charged');

  // the journal fails at the end of a stream: internal error event, released, never settled
  const settledBefore = kit.admission.settled.length;
  kit.journal.failing = new Error('disk full');
  kit.adapter.scripts.push({ stream: ['a'] });
  const unjournaled = await readAll(await stream());
  assert.equal((unjournaled.error as CallStreamError).error.status, 500);
  assert.equal(kit.admission.settled.length, settledBefore);
  kit.journal.failing = undefined;

  // the consumer stops after the first chunk (a client that went away): drained, metered, settled
  kit.adapter.scripts.push({ stream: ['a', 'b', 'c'], usage: { promptTokens: 7, completionTokens: 3 } });
  const stopped = (await stream()) as { stream: AsyncGenerator<unknown> };
  for await (const _ of stopped.stream) break;
  const record = kit.journal.records.at(-1)!;
  assert.equal(record.status, 'cancelled');
  assert.equal(record.httpStatus, 499);
  assert.equal(record.usageSource, 'upstream', 'the drain read the upstream counts');
  assert.equal(record.completionTokens, 3);

  assertAllClosed(kit, calls);
});

test('a stream nobody reads is taken back after the total time: released, closed', async () => {
  const kit = createKit([product('m', [deployment('d1')])], { upstreamTotalTimeoutMs: 100 });
  kit.adapter.scripts.push({ stream: ['a', 'b'], delayMs: 20 });
  const outcome = await kit.layer.create(kit.input(chat({ stream: true }))).run();
  assert.equal(outcome.type, 'stream');
  // dropped on the floor: never iterated
  const deadline = Date.now() + 3000;
  while (kit.observer.ended === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assertAllClosed(kit, 1);
  assert.equal(kit.journal.records.length, 1);
  assert.equal(kit.journal.records[0]!.costMicroKrw, 0n, 'nothing reached anyone');
});

test('a fallback that serves is what settlement sees; admission can refuse a fallback', async () => {
  const kit = createKit([
    product('m', [deployment('d1')], { fallbackModels: ['cheap', 'foreign'] }),
    product('cheap', [deployment('d2')], {
      prices: { inputMicroPer1M: 1_000_000n, outputMicroPer1M: 1_000_000n },
    }),
    product('foreign', [deployment('d3')], { residency: 'foreign' }),
  ]);
  const fail = () => ({ throws: new UpstreamError('http', 'down', { status: 503 }) });
  kit.adapter.scripts.push(fail(), fail(), {
    answer: 'from cheap',
    usage: { promptTokens: 10, completionTokens: 10 },
  });
  const served = (await kit.layer.create(kit.input(chat())).run()) as unknown as { body: { model: string } };
  assert.equal(served.body.model, 'cheap');
  const settled = kit.admission.settled.at(-1)!;
  assert.equal(settled.productId, 'prd_cheap');
  assert.equal(settled.priceInputMicroPer1M, 1_000_000n, "the fallback's prices");
  assert.equal(settled.costMicroKrw, 20n);

  // admission refuses 'cheap' for this caller: the chain goes on to 'foreign'
  kit.admission.refuseReroute.add('cheap');
  kit.adapter.scripts.push(fail(), fail(), { answer: 'from foreign' });
  const rerouted = (await kit.layer.create(kit.input(chat())).run()) as unknown as {
    body: { model: string };
  };
  assert.equal(rerouted.body.model, 'foreign');
  kit.admission.refuseReroute.add('foreign');
  kit.adapter.scripts.length = 0;
  kit.adapter.scripts.push(fail(), fail());
  const before = kit.adapter.deployments.length;
  const none = await kit.layer.create(kit.input(chat())).run();
  assert.equal(none.type, 'error', 'no allowed fallback: the asked product failed');
  assert.ok(
    kit.adapter.deployments.slice(before).every((d) => d === 'd1'),
    'the refused fallbacks were never called',
  );
  assertAllClosed(kit, 3);
});

test('the organisation concurrency cap refuses with 429 and frees its slots', async () => {
  const kit = createKit([product('m', [deployment('d1')])], { organizationMaxConcurrent: 2 });
  kit.adapter.scripts.push({ stream: ['a'] }, { stream: ['b'] });
  const a = (await kit.layer.create(kit.input(chat({ stream: true }))).run()) as { stream: AsyncGenerator };
  const b = (await kit.layer.create(kit.input(chat({ stream: true }))).run()) as { stream: AsyncGenerator };
  const c = (await kit.layer.create(kit.input(chat())).run()) as { error: { status: number; code: string } };
  assert.equal(c.error.status, 429);
  assert.equal(c.error.code, 'concurrency_limit_exceeded');
  for await (const _ of a.stream) {
    // read to the end
  }
  for await (const _ of b.stream) {
    // read to the end
  }
  assert.equal(kit.concurrency.inProgress('org_1'), 0);
  const d = await kit.layer.create(kit.input(chat())).run();
  assert.equal(d.type, 'completed');
  assertAllClosed(kit, 4);
});

test('a stream handed over holds no messages, and still answers the usage the client asked for', async () => {
  const kit = createKit([product('m', [deployment('d1')])]);
  kit.adapter.scripts.push({ stream: ['a', 'b'] });
  const call = kit.layer.create(
    kit.input(chat({ stream: true, n: 1, stream_options: { include_usage: true } })),
  );
  const outcome = await call.run();
  assert.equal(call.body.messages, undefined, 'the prompt is not held for the stream');
  assert.equal(call.request.messages, undefined);
  assert.deepEqual(call.body.stream_options, { include_usage: true }, 'what the end reads stays');
  assert.equal(call.body.n, 1);
  const { chunks, error } = await readAll(outcome);
  assert.equal(error, undefined);
  const last = chunks.at(-1) as { usage?: { completion_tokens?: number } };
  assert.ok(last.usage !== undefined, 'the usage chunk the client asked for');
  assertAllClosed(kit, 1);

  // with the content log on, the request is written at the end: it stays whole
  const logging = createKit([product('m', [deployment('d1')])], { logContent: true });
  logging.adapter.scripts.push({ stream: ['a'] });
  const kept = logging.layer.create(logging.input(chat({ stream: true })));
  const logged = await kept.run();
  assert.ok(Array.isArray(kept.body.messages));
  await readAll(logged);
});
