import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PullRefused, pullBenchmark } from './pull.ts';
import { loadRegistry, SHIPPED_BENCHMARKS } from './registry.ts';

describe('eval pull registry', () => {
  test('lists every official set a loader reads, each from its publisher on Hugging Face with a licence', () => {
    const ids = loadRegistry(undefined).map((b) => b.id);
    for (const id of ['kmmlu', 'hrm8k', 'kobest', 'haerae', 'click', 'k2-eval', 'komt-bench', 'logickor'])
      assert.ok(ids.includes(id), `${id} is listed`);
    for (const b of SHIPPED_BENCHMARKS) {
      assert.match(b.homepage, /^https:\/\/huggingface\.co\/datasets\//, b.id);
      assert.ok(b.licence.name.length > 0 && b.licence.url.startsWith('https://'), b.id);
      for (const f of b.files)
        assert.match(f.url, /^\{hf\}\/datasets\/[^/]+\/[^/]+\/resolve\/main\//, f.path);
    }
    // restricted licences ask for acceptance: no derivatives or non-commercial, or none stated
    const restricted = SHIPPED_BENCHMARKS.filter((b) => b.acceptanceRequired).map((b) => b.id);
    assert.deepEqual(restricted.sort(), ['click', 'haerae', 'kmmlu']);
  });

  test('--require-pinned refuses every shipped entry whose hashes are not pinned, before any download', async () => {
    for (const b of SHIPPED_BENCHMARKS.filter((x) => x.files.some((f) => f.sha256 === null))) {
      await assert.rejects(
        pullBenchmark(b, {
          dir: '/nonexistent-never-written',
          acceptLicence: true,
          requirePinned: true,
          // nothing may be fetched: an address that cannot answer
          hfEndpoint: 'http://127.0.0.1:9',
          progress: () => {
            throw new Error(`${b.id}: a download started`);
          },
          log: () => {},
        }),
        (e: unknown) => e instanceof PullRefused && /--require-pinned/.test((e as Error).message),
        b.id,
      );
    }
  });
});
