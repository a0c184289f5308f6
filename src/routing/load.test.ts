import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RoutableDeployment } from '../catalog/catalog-snapshot.ts';
import { DeploymentLoad } from './load.ts';

test('latency: a moving average while fresh; stale measurements count as none and restart the average', () => {
  let now = 1_000;
  const load = new DeploymentLoad(0.5, 30_000, () => now);
  assert.equal(load.latencyMs('d'), -1);
  load.observe('d', 100);
  assert.equal(load.latencyMs('d'), 100);
  load.observe('d', 200);
  assert.equal(load.latencyMs('d'), 150);
  now += 30_001;
  assert.equal(load.latencyMs('d'), -1, 'stale: to be probed again like an unmeasured deployment');
  load.observe('d', 10);
  assert.equal(load.latencyMs('d'), 10, 'the recovered deployment is not held back by its old average');
});

test('in-flight counts never go below zero', () => {
  const load = new DeploymentLoad();
  const d = { id: 'd', maxConcurrent: 10 } as RoutableDeployment;
  load.started('d');
  load.ended(d, 'p');
  load.ended(d, 'p');
  assert.equal(load.inFlight('d'), 0);
});
