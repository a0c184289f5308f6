import assert from 'node:assert/strict';
import { test } from 'node:test';
import { basisPoints, gpuCost, gpuHoursText, gpusFor } from './units.ts';

test('teraflops round up to whole GPUs; servers are whole servers', () => {
  const a100 = { tfPerGpu: 312, gpusPerServer: 8 };
  const h100 = { tfPerGpu: 989, gpusPerServer: 8 };
  assert.equal(gpusFor('tf', 160, a100), 1);
  assert.equal(gpusFor('tf', 320, a100), 2, '320 TF > 312 TF: a second GPU, never less than asked');
  assert.equal(gpusFor('tf', 312, a100), 1, 'exactly one GPU’s worth is one GPU');
  assert.equal(gpusFor('tf', 320, h100), 1);
  assert.equal(gpusFor('server', 2, h100), 16);
  assert.equal(gpusFor('gpu', 3, h100), 3);
});

test('GPU cost: seconds × price ÷ 3600, half up to the µ₩', () => {
  // 1 GPU-hour at 3,000 KRW
  assert.equal(gpuCost(3600n, 3_000_000_000n), 3_000_000_000n);
  // 1 second at 1 µ₩ per hour: 1/3600 µ₩ rounds to 0; 1800 s is exactly half: rounds up to 1
  assert.equal(gpuCost(1n, 1n), 0n);
  assert.equal(gpuCost(1800n, 1n), 1n);
  assert.equal(gpuHoursText(5400), '1.5');
  assert.equal(gpuHoursText(1), '0.000278');
  assert.equal(basisPoints(2999n, 10_000n), 2999);
  assert.equal(basisPoints(1n, 0n), 0);
});
