import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { semiSpaceFlags } from './worker-heap.ts';

test('the semi-space flags are read from the command line over NODE_OPTIONS, in every spelling', () => {
  assert.deepEqual(semiSpaceFlags([], undefined), new Map());
  assert.deepEqual(
    semiSpaceFlags(['--max-semi-space-size=32', '--min-semi-space-size', '16', '--inspect'], undefined),
    new Map([
      ['max-semi-space-size', '32'],
      ['min-semi-space-size', '16'],
    ]),
  );
  assert.deepEqual(
    semiSpaceFlags(['--max_semi_space_size=8'], '--max-semi-space-size=64 --min-semi-space-size=4'),
    new Map([
      ['max-semi-space-size', '8'],
      ['min-semi-space-size', '4'],
    ]),
  );
  assert.deepEqual(semiSpaceFlags(['--max-old-space-size=512'], ''), new Map());
});

test("a worker gets V8's young generation, not npm start's, and the main thread keeps its own", () => {
  // a fresh process with npm start's flags: two workers started together allocate, then report their
  // new space; the main thread allocates after them and reports its own
  const script = `
    import v8 from 'node:v8';
    const { startWorker } = await import('./src/worker-heap.ts');
    const churn = "const a = []; for (let i = 0; i < 4e6; i++) { a.push({ i }); if (a.length > 1000) a.length = 0; }";
    const newSpace = "v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size";
    // the workers inherit --input-type=module
    const code = "import v8 from 'node:v8'; import { parentPort } from 'node:worker_threads';" + churn + "parentPort.postMessage(" + newSpace + ");";
    const workers = [startWorker(code, { eval: true }), startWorker(code, { eval: true })];
    const sizes = await Promise.all(workers.map((w) => new Promise((resolve) => w.once('message', resolve))));
    await Promise.all(workers.map((w) => w.terminate()));
    const late = startWorker(code, { eval: true, resourceLimits: { maxYoungGenerationSizeMb: 6 } });
    sizes.push(await new Promise((resolve) => late.once('message', resolve)));
    await late.terminate();
    ${'const a = []; for (let i = 0; i < 4e7; i++) { a.push({ i }); if (a.length > 100000) a.length = 0; }'}
    const main = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
    process.stdout.write(JSON.stringify({ sizes, main }));
  `;
  const child = spawnSync(
    process.execPath,
    [
      '--max-semi-space-size=32',
      '--min-semi-space-size=16',
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      script,
    ],
    { cwd: new URL('..', import.meta.url).pathname, encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } },
  );
  assert.equal(child.status, 0, child.stderr);
  const { sizes, main } = JSON.parse(child.stdout) as { sizes: number[]; main: number };
  const MB = 1024 * 1024;
  // V8's own default semi-space is at most 16 MB; under the flags a worker started at 16 and grew to 32
  for (const size of sizes.slice(0, 2)) assert.ok(size <= 16 * MB, `worker: ${size}`);
  assert.ok(sizes[2]! <= 4 * MB, `worker with resourceLimits: ${sizes[2]}`);
  assert.ok(main >= 32 * MB, `main thread: ${main}`);
});
