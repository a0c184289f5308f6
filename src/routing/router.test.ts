import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RoutableDeployment, RoutableProduct } from '../catalog/catalog-snapshot.ts';
import { UpstreamError } from '../providers/adapter.ts';
import { type Attempt, callWithFailover, orderDeployments } from './router.ts';

function deployment(id: string, priority: number, weight: number): RoutableDeployment {
  return {
    id,
    priority,
    weight,
    adapter: 'openai-compatible',
    baseUrl: 'http://x',
    apiKey: null,
    upstreamModel: 'm',
  };
}

function product(deployments: RoutableDeployment[]): RoutableProduct {
  return {
    id: 'p',
    model: 'm',
    displayName: 'M',
    supplierId: 's',
    supplierName: 'S',
    modality: 'text',
    residency: 'domestic',
    contextWindow: 1,
    createdAtSeconds: 0,
    prices: { inputMicroPer1M: 0n, outputMicroPer1M: 0n },
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

test('fails over on connection errors only', async () => {
  const candidates = [deployment('a', 0, 1), deployment('b', 0, 1)];
  const attempts: Attempt[] = [];
  const { deployment: served } = await callWithFailover(
    candidates,
    async (d) => {
      if (d.id === 'a') throw new UpstreamError('connect', 'refused');
      return 'ok';
    },
    attempts,
  );
  assert.equal(served.id, 'b');
  assert.deepEqual(
    attempts.map((a) => [a.deploymentId, a.error?.kind ?? null]),
    [
      ['a', 'connect'],
      ['b', null],
    ],
  );
  await assert.rejects(
    callWithFailover(
      candidates,
      async () => Promise.reject(new UpstreamError('http', 'bad', { status: 500 })),
      [],
    ),
    (e: unknown) => e instanceof UpstreamError && e.kind === 'http',
  );
  await assert.rejects(
    callWithFailover([], async () => 1, []),
    /no active deployment/,
  );
});
