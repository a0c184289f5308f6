import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { tinyGguf } from '../../../test/fakes/tiny-gguf.ts';
import { modelSlug } from './commands.ts';
import { readGgufContextLength } from './gguf-metadata.ts';
import { checkRepo, hfOptions, localName, PullError, pickGguf } from './huggingface.ts';
import { createProgress } from './progress.ts';

describe('models: picking, naming, metadata, progress', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kaihub-gguf-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('pickGguf: the only .gguf, else the Q4_K_M one, else an error naming them', () => {
    const f = (...paths: string[]) => paths.map((path) => ({ path }));
    assert.equal(pickGguf('a/b', f('README.md', 'x-Q8_0.gguf')).path, 'x-Q8_0.gguf');
    assert.equal(pickGguf('a/b', f('x-Q8_0.gguf', 'x-q4_k_m.gguf', 'x-F16.gguf')).path, 'x-q4_k_m.gguf');
    assert.throws(() => pickGguf('a/b', f('README.md')), /no \.gguf file/);
    assert.throws(
      () => pickGguf('a/b', f('x-Q8_0.gguf', 'x-F16.gguf')),
      (e: Error) => e instanceof PullError && e.message.includes('  x-Q8_0.gguf\n  x-F16.gguf'),
    );
  });

  test('names: model slugs, local file names, repositories, endpoint', () => {
    assert.equal(modelSlug('kanana-1.5-2.1b-instruct-Q4_K_M.gguf'), 'kanana-1.5-2.1b-instruct-q4_k_m');
    assert.equal(modelSlug('EXAONE 3.5 (2.4B).gguf'), 'exaone-3.5-2.4b');
    assert.equal(localName('Q4_K_M/model-Q4_K_M.gguf'), 'model-Q4_K_M.gguf');
    assert.throws(() => localName('.hidden.gguf'), PullError);
    assert.equal(
      checkRepo('LGAI-EXAONE/EXAONE-3.5-2.4B-Instruct-GGUF'),
      'LGAI-EXAONE/EXAONE-3.5-2.4B-Instruct-GGUF',
    );
    assert.throws(() => checkRepo('../etc'), PullError);
    assert.throws(() => checkRepo('a/b/c'), PullError);
    assert.deepEqual(hfOptions({}), { endpoint: 'https://huggingface.co', token: undefined });
    assert.deepEqual(hfOptions({ KAIHUB_HF_ENDPOINT: 'http://127.0.0.1:1/', HF_TOKEN: 't' }), {
      endpoint: 'http://127.0.0.1:1',
      token: 't',
    });
  });

  test('readGgufContextLength: from the file header; undefined for anything else', async () => {
    await writeFile(join(dir, 'tiny.gguf'), tinyGguf({ contextLength: 2048 }));
    assert.equal(await readGgufContextLength(join(dir, 'tiny.gguf')), 2048);
    await writeFile(join(dir, 'cut.gguf'), tinyGguf().subarray(0, 100));
    assert.equal(await readGgufContextLength(join(dir, 'cut.gguf')), undefined);
    await writeFile(join(dir, 'text.gguf'), 'not a model');
    assert.equal(await readGgufContextLength(join(dir, 'text.gguf')), undefined);
  });

  test('progress: plain lines every 10% when not a terminal, a redrawn bar on one', () => {
    let clock = 0;
    const lines: string[] = [];
    const plain = createProgress('m.gguf', { write: (s: string) => lines.push(s) } as never, () => clock);
    plain.start(10 * 1024 * 1024, 0);
    for (let i = 1; i <= 10; i++) {
      clock += 1000;
      plain.update(i * 1024 * 1024);
    }
    plain.stop();
    assert.equal(lines[0], 'm.gguf   10%  1.0/10.0 MB  1.0 MB/s\n');
    assert.equal(lines.at(-1), 'm.gguf  100%  10.0/10.0 MB  1.0 MB/s\n');
    assert.ok(lines.every((l) => !l.includes('\r')));

    const drawn: string[] = [];
    const tty = createProgress(
      'm.gguf',
      { isTTY: true, columns: 80, write: (s: string) => drawn.push(s) } as never,
      () => clock,
    );
    tty.start(4 * 1024 * 1024, 2 * 1024 * 1024);
    clock += 1000;
    tty.update(3 * 1024 * 1024);
    assert.match(drawn[0]!, /resuming at 2\.0 MB/);
    assert.match(drawn[1]!, /^\rm\.gguf \[#+\.+\] {2}75% {2}3\.0\/4\.0 MB {2}1\.0 MB\/s/);
  });
});
