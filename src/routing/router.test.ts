import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RoutableDeployment, RoutableProduct } from '../catalog/catalog-snapshot.ts';
import { UpstreamError } from '../providers/adapter.ts';
import { DeploymentHealth } from './health.ts';
import { DeploymentLoad } from './load.ts';
import { type Attempt, orderDeployments, type RoutedCall, Router } from './router.ts';

function deployment(
  id: string,
  priority = 0,
  weight = 1,
  extra: Partial<RoutableDeployment> = {},
): RoutableDeployment {
  return {
    id,
    priority,
    weight,
    adapter: 'openai-compatible',
    baseUrl: 'http://x',
    apiKey: null,
    upstreamModel: 'm',
    features: 0,
    maxConcurrent: 1000,
    target: { deploymentId: id, baseUrl: 'http://x', apiKey: null, upstreamModel: 'm' },
    ...extra,
  };
}

/** The router's view of one call, built from the parts a test scripts. */
function routed<T>(
  fallbacks: (p: RoutableProduct) => Iterable<RoutableProduct>,
  signal: AbortSignal,
  call: (p: RoutableProduct, d: RoutableDeployment) => Promise<T>,
  attempts: Attempt[],
  extra: Partial<RoutedCall<T>> = {},
): RoutedCall<T> {
  return {
    signal,
    needs: 0,
    attempts,
    organizationId: 'org',
    timeoutsCountAgainstHealth: true,
    attempt: call,
    fallbacks,
    attemptStarted() {},
    attemptFailed() {},
    ...extra,
  };
}

function product(
  deployments: RoutableDeployment[],
  model = 'm',
  routingStrategy: RoutableProduct['routingStrategy'] = 'weighted',
): RoutableProduct {
  return {
    id: model,
    model,
    displayName: 'M',
    supplierId: 's',
    supplierName: 'S',
    modality: 'text',
    residency: 'domestic',
    contextWindow: 1,
    createdAtSeconds: 0,
    prices: { inputMicroPer1M: 0n, outputMicroPer1M: 0n },
    fallbackModels: [],
    routingStrategy,
    deployments,
  };
}

test('priority tiers come first; weights split traffic within a tier', () => {
  const p = product([
    deployment('a', 0, 3),
    deployment('b', 0, 1),
    deployment('standby', 0, 0),
    deployment('c', 1, 1),
  ]);
  const firsts = new Map<string, number>();
  let seed = 1;
  const random = () => {
    seed = (seed * 48271) % 2147483647;
    return seed / 2147483647;
  };
  for (let i = 0; i < 4000; i++) {
    const order = orderDeployments(p, random).map((d) => d.id);
    assert.equal(order.length, 4);
    assert.equal(order[2], 'standby');
    assert.equal(order[3], 'c');
    firsts.set(order[0]!, (firsts.get(order[0]!) ?? 0) + 1);
  }
  const share = (firsts.get('a') ?? 0) / 4000;
  assert.ok(share > 0.7 && share < 0.8, `a first ${share}`);
});

/** A router with a fixed clock, no real sleeping (the delays asked for are recorded), no jitter surprises. */
function testRouter(options: { retries?: number; clock?: { now: number } } = {}) {
  const clock = options.clock ?? { now: 1_000_000 };
  const delays: number[] = [];
  const health = new DeploymentHealth({ now: () => clock.now, baseCooldownMs: 5000, maxCooldownMs: 60_000 });
  const router = new Router({
    retries: options.retries ?? 2,
    baseDelayMs: 100,
    maxRetryAfterMs: 2000,
    health,
    random: () => 0.5,
    sleep: async (ms) => {
      delays.push(ms);
    },
  });
  return { router, health, clock, delays };
}

const never = new AbortController().signal;
const noFallbacks = () => [];
const http = (status: number, retryAfter?: string) =>
  new UpstreamError('http', `HTTP ${status}`, { status, ...(retryAfter && { retryAfter }) });

/** A call that fails with the scripted errors in turn (per deployment id), then answers its id. */
function scripted(script: Record<string, (UpstreamError | null)[]>) {
  return async (p: RoutableProduct, d: RoutableDeployment) => {
    const next = script[d.id]?.shift();
    if (next) throw next;
    return `${p.model}/${d.id}`;
  };
}

const trace = (attempts: Attempt[]) =>
  attempts.map((a) => `${a.model}/${a.deploymentId}:${a.error?.details.status ?? a.error?.kind ?? 'ok'}`);

test('a refused connection moves to the next deployment at once, without using a retry', async () => {
  const { router, delays } = testRouter({ retries: 0 });
  const attempts: Attempt[] = [];
  const p = product([deployment('a', 0, 1), deployment('b', 1, 1)]);
  const served = await router.route(
    routed(noFallbacks, never, scripted({ a: [new UpstreamError('connect', 'refused')] }), attempts),
    p,
  );
  assert.equal(served.result, 'm/b');
  assert.deepEqual(trace(attempts), ['m/a:connect', 'm/b:ok']);
  assert.deepEqual(delays, []);
});

test('5xx is retried with exponential backoff and jitter, on the same deployment when it is alone', async () => {
  const { router, delays } = testRouter({ retries: 2 });
  const attempts: Attempt[] = [];
  const served = await router.route(
    routed(noFallbacks, never, scripted({ a: [http(500), http(503)] }), attempts),
    product([deployment('a', 0, 1)]),
  );
  assert.equal(served.deployment.id, 'a');
  assert.deepEqual(trace(attempts), ['m/a:500', 'm/a:503', 'm/a:ok']);
  // base·2^(n−1), half fixed and half random (random() = 0.5)
  assert.deepEqual(delays, [75, 150]);
});

test('a retry prefers another deployment of the product', async () => {
  const { router } = testRouter({ retries: 1 });
  const attempts: Attempt[] = [];
  const served = await router.route(
    routed(noFallbacks, never, scripted({ a: [http(502)] }), attempts),
    product([deployment('a', 0, 1), deployment('b', 1, 1)]),
  );
  assert.equal(served.deployment.id, 'b');
  assert.deepEqual(trace(attempts), ['m/a:502', 'm/b:ok']);
});

test('Retry-After is honoured up to the cap; beyond it the error stands', async () => {
  const { router, delays } = testRouter({ retries: 2 });
  const p = product([deployment('a', 0, 1)]);
  const ok = await router.route(routed(noFallbacks, never, scripted({ a: [http(429, '1')] }), []), p);
  assert.equal(ok.result, 'm/a');
  assert.deepEqual(delays, [1000]);
  await assert.rejects(
    router.route(routed(noFallbacks, never, scripted({ a: [http(429, '30')] }), []), p),
    (e: unknown) => e instanceof UpstreamError && e.details.status === 429,
  );
  assert.deepEqual(delays, [1000], 'a 30 s Retry-After is not waited for');
});

test('4xx, protocol errors, cancellation and an aborted call are not retried', async () => {
  const p = product([deployment('a', 0, 1), deployment('b', 0, 1)]);
  for (const error of [
    http(400),
    http(401),
    new UpstreamError('protocol', 'x'),
    new UpstreamError('cancelled', 'x'),
  ]) {
    const { router } = testRouter();
    const attempts: Attempt[] = [];
    await assert.rejects(
      router.route(
        routed(noFallbacks, never, async () => Promise.reject(error), attempts),
        p,
      ),
    );
    assert.equal(attempts.length, 1, error.message);
  }
  const { router } = testRouter();
  const aborted = AbortSignal.abort(new DOMException('t', 'TimeoutError'));
  const attempts: Attempt[] = [];
  await assert.rejects(
    router.route(
      routed(noFallbacks, aborted, async () => Promise.reject(new UpstreamError('timeout', 't')), attempts),
      p,
    ),
  );
  assert.equal(attempts.length, 1);
});

test('retries exhausted: the error of the last attempt is thrown', async () => {
  const { router } = testRouter({ retries: 2 });
  const attempts: Attempt[] = [];
  await assert.rejects(
    router.route(
      routed(noFallbacks, never, async () => Promise.reject(http(500)), attempts),
      product([deployment('a', 0, 1)]),
    ),
    (e: unknown) => e instanceof UpstreamError && e.details.status === 500,
  );
  assert.equal(attempts.length, 3);
});

test('fallback products are tried in order after the requested one failed, only then', async () => {
  const { router } = testRouter({ retries: 0 });
  const main = product([deployment('a', 0, 1)], 'hcx');
  const solar = product([deployment('s', 0, 1)], 'solar');
  const local = product([deployment('l', 0, 1)], 'local');
  let asked = 0;
  const fallbacks = () => {
    asked++;
    return [solar, local];
  };
  const attempts: Attempt[] = [];
  const served = await router.route(
    routed(fallbacks, never, scripted({ a: [http(503)], s: [http(500)] }), attempts),
    main,
  );
  assert.equal(served.product.model, 'local');
  assert.deepEqual(trace(attempts), ['hcx/a:503', 'solar/s:500', 'local/l:ok']);
  await router.route(routed(fallbacks, never, scripted({}), []), main);
  assert.equal(asked, 1, 'the chain is not even built when the product answers');
  // a 400 is the request's own problem: no fallback
  await assert.rejects(router.route(routed(fallbacks, never, scripted({ a: [http(400)] }), []), main));
  assert.equal(asked, 1);
});

test('a deployment that keeps failing cools down, is skipped, then probed back by one request', async () => {
  const clock = { now: 1_000_000 };
  const { router, health } = testRouter({ retries: 0, clock });
  const p = product([deployment('a', 0, 1), deployment('b', 1, 1)]);
  const failA = scripted({ a: [http(500), http(500), http(500)] });
  for (let i = 0; i < 3; i++) await assert.rejects(router.route(routed(noFallbacks, never, failA, []), p));
  assert.equal(health.view('a').state, 'cooling_down');
  assert.equal(health.view('a').consecutiveFailures, 3);
  assert.equal(health.view('a').cooldownUntil, new Date(clock.now + 5000).toISOString());
  assert.match(health.view('a').lastError!, /http 500/);
  // while it cools, traffic goes to b without touching a
  const attempts: Attempt[] = [];
  assert.equal(
    (await router.route(routed(noFallbacks, never, scripted({}), attempts), p)).deployment.id,
    'b',
  );
  assert.deepEqual(trace(attempts), ['m/b:ok']);

  // the period ends: one request probes a; while it runs, others skip a
  clock.now += 5000;
  let release: () => void = () => {};
  const probe = router.route(
    routed(
      noFallbacks,
      never,
      (_p, d) =>
        d.id === 'a'
          ? new Promise<string>((resolve) => (release = () => resolve('a')))
          : Promise.resolve(d.id),
      [],
    ),
    p,
  );
  assert.equal((await router.route(routed(noFallbacks, never, scripted({}), []), p)).deployment.id, 'b');
  release();
  assert.equal((await probe).deployment.id, 'a');
  assert.deepEqual(health.view('a'), {
    state: 'healthy',
    consecutiveFailures: 0,
    cooldownUntil: null,
    lastError: null,
  });

  // a failed probe doubles the period, up to the maximum
  for (let i = 0; i < 3; i++) health.failed('a', http(500));
  for (const expected of [10_000, 20_000, 40_000, 60_000, 60_000]) {
    clock.now = Date.parse(health.view('a').cooldownUntil!);
    health.begin('a');
    health.failed('a', http(500));
    assert.equal(Date.parse(health.view('a').cooldownUntil!) - clock.now, expected);
  }
});

test('every deployment cooling down: the product is skipped, its fallback serves', async () => {
  const { router, health } = testRouter({ retries: 0 });
  const main = product([deployment('a', 0, 1)], 'hcx');
  for (let i = 0; i < 3; i++) health.failed('a', http(500));
  await assert.rejects(router.route(routed(noFallbacks, never, scripted({}), []), main), /cooling down/);
  const attempts: Attempt[] = [];
  const served = await router.route(
    routed(() => [product([deployment('s', 0, 1)], 'solar')], never, scripted({}), attempts),
    main,
  );
  assert.equal(served.product.model, 'solar');
  assert.deepEqual(trace(attempts), ['solar/s:ok']);
});

/** A deterministic random(): the same sequence on every run. */
function seeded(seed = 1) {
  return () => {
    seed = (seed * 48271) % 2147483647;
    return seed / 2147483647;
  };
}

test('least-in-flight: fewest calls in flight first; ties broken by weight; standby and tiers kept', () => {
  const deployments = [
    deployment('a', 0, 3),
    deployment('b', 0, 1),
    deployment('standby', 0, 0),
    deployment('c', 1, 1),
  ];
  const p = product(deployments, 'm', 'least-in-flight');
  const load = new DeploymentLoad();
  const random = seeded();
  // nothing in flight: a tie everywhere, split by weight like `weighted`
  let aFirst = 0;
  for (let i = 0; i < 4000; i++) {
    const order = orderDeployments(p, random, undefined, load).map((d) => d.id);
    assert.deepEqual(order.slice(2), ['standby', 'c']);
    if (order[0] === 'a') aFirst++;
  }
  assert.ok(aFirst / 4000 > 0.7 && aFirst / 4000 < 0.8, `a first ${aFirst / 4000}`);
  // a busier: b first, whatever the weights say
  load.started('a');
  for (let i = 0; i < 100; i++)
    assert.deepEqual(
      orderDeployments(p, random, undefined, load).map((d) => d.id),
      ['b', 'a', 'standby', 'c'],
    );
  // the counts come back down as calls end; a standby's count changes nothing
  load.started('b');
  load.started('b');
  load.ended(deployments[1]!, 'm');
  load.ended(deployments[1]!, 'm');
  load.ended(deployments[1]!, 'm'); // an extra end never goes below zero
  assert.equal(load.inFlight('b'), 0);
  load.started('standby');
  assert.equal(orderDeployments(p, random, undefined, load)[0]!.id, 'b');
  // the same state under `weighted` ignores the counts
  let bFirst = 0;
  for (let i = 0; i < 1000; i++)
    if (orderDeployments(product(deployments), random, undefined, load)[0]!.id === 'b') bFirst++;
  assert.ok(bFirst < 400, `weighted ignores load: b first ${bFirst}/1000`);
});

test('lowest-latency: unmeasured deployments first, then by moving average of time to accept', () => {
  const p = product(
    [deployment('a', 0, 1), deployment('b', 0, 1), deployment('c', 0, 1)],
    'm',
    'lowest-latency',
  );
  const load = new DeploymentLoad(0.2);
  const random = seeded(7);
  load.observe('a', 100);
  load.observe('b', 50);
  for (let i = 0; i < 20; i++)
    assert.deepEqual(
      orderDeployments(p, random, undefined, load).map((d) => d.id),
      ['c', 'b', 'a'],
    );
  load.observe('c', 80);
  assert.deepEqual(
    orderDeployments(p, random, undefined, load).map((d) => d.id),
    ['b', 'c', 'a'],
  );
  // exponentially weighted: one slow answer moves b by a fifth of the difference
  load.observe('b', 300);
  assert.equal(load.latencyMs('b'), 50 + 0.2 * 250);
  assert.deepEqual(
    orderDeployments(p, random, undefined, load).map((d) => d.id),
    ['c', 'a', 'b'],
  );
  assert.equal(load.latencyMs('never'), -1);
});

test('the router counts a call in flight from its start to `finished`, and a failed attempt not at all', async () => {
  const load = new DeploymentLoad();
  const router = new Router({ load, retries: 1, baseDelayMs: 0, random: () => 0, sleep: async () => {} });
  const p = product([deployment('a', 0, 1), deployment('b', 0, 1)], 'm', 'least-in-flight');
  let seenInFlight = -1;
  const served = await router.route(
    routed(
      noFallbacks,
      never,
      async (_p, d) => {
        if (d.id === 'a') throw http(503);
        seenInFlight = load.inFlight('b');
        return d.id;
      },
      [],
    ),
    p,
  );
  assert.equal(served.result, 'b');
  assert.equal(seenInFlight, 1);
  assert.equal(load.inFlight('a'), 0, 'the failed attempt ended');
  assert.equal(load.inFlight('b'), 1, 'still in flight until the answer ends');
  assert.ok(load.latencyMs('b') >= 0, 'time to accept measured');
  assert.equal(load.latencyMs('a'), -1, 'failures are not latencies');
  // the next call goes to a, the idle one
  const next = await router.route(
    routed(noFallbacks, never, async (_p, d) => d.id, []),
    p,
  );
  assert.equal(next.result, 'a');
  const done = routed(noFallbacks, never, async () => '', []);
  router.finished(done, served, null);
  router.finished(done, next, null);
  assert.equal(load.inFlight('a') + load.inFlight('b'), 0);
});
