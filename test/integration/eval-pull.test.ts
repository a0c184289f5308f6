import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { runEvalPull } from '../../src/cli/eval-pull-command.ts';
import { SHIPPED_BENCHMARKS } from '../../src/evaluation/pull/registry.ts';
import { type FakeFileServer, startFakeFileServer } from '../fakes/benchmark-files.ts';
import { runKaihub } from '../helpers/cli.ts';

/**
 * `kaihub eval pull` against a file server on loopback: checksums verified, an interrupted download
 * resumed with a range request, wrong bytes refused and deleted, a licence-restricted set refused
 * until accepted. The files are self-written items in KMMLU's CSV layout, never the benchmark's own.
 */

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A few hundred KiB of made-up multiple-choice rows in KMMLU's columns. */
function csv(subject: string, rows: number): Buffer {
  const lines = ['question,answer,A,B,C,D,Category,Human Accuracy'];
  for (let i = 0; i < rows; i++)
    lines.push(
      `"${subject} 연습 문제 ${i}: 다음 중 옳은 것은?",${(i % 4) + 1},"보기 가 ${i}","보기 나 ${i}","보기 다 ${i}","보기 라 ${i}",${subject},0.${i % 10}`,
    );
  return Buffer.from(`${lines.join('\n')}\n`);
}

async function pull(args: string[], env: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const sink = (into: string[]) =>
    new Writable({
      write(chunk, _e, done) {
        into.push(String(chunk));
        done();
      },
    });
  const code = await runEvalPull(args, env, sink(out), sink(err));
  return { code, stdout: out.join(''), stderr: err.join('') };
}

describe('kaihub eval pull', () => {
  let fake: FakeFileServer;
  let dir: string;
  let registry: string;
  const open = csv('Accounting', 4000);
  const other = csv('Law', 2500);
  const restricted = csv('Patent', 1000);

  before(async () => {
    fake = await startFakeFileServer();
    fake.files.set('open-a.csv', open);
    fake.files.set('open-b.csv', other);
    fake.files.set('nd.csv', restricted);
    fake.files.set('unpinned.csv', csv('Math', 300));
    dir = mkdtempSync(join(tmpdir(), 'kaihub-pull-'));
    registry = join(dir, 'registry.json');
    writeFileSync(
      registry,
      JSON.stringify({
        benchmarks: [
          {
            id: 'open-bench',
            name: '공개 벤치마크',
            homepage: `${fake.url}/`,
            licence: { name: 'MIT', url: 'https://opensource.org/license/mit' },
            acceptanceRequired: false,
            files: [
              {
                path: 'data/a-test.csv',
                url: `${fake.url}/files/open-a.csv`,
                sha256: sha256(open),
                bytes: open.length,
              },
              { path: 'data/b-test.csv', url: `${fake.url}/files/open-b.csv`, sha256: sha256(other) },
            ],
          },
          {
            id: 'nd-bench',
            name: '변경 금지 벤치마크',
            homepage: `${fake.url}/`,
            licence: { name: 'CC BY-ND 4.0', url: 'https://creativecommons.org/licenses/by-nd/4.0/' },
            acceptanceRequired: true,
            files: [{ path: 'nd.csv', url: `${fake.url}/files/nd.csv`, sha256: sha256(restricted) }],
          },
          {
            id: 'tofu-bench',
            name: '해시 없는 벤치마크',
            homepage: `${fake.url}/`,
            licence: { name: 'MIT', url: 'https://opensource.org/license/mit' },
            acceptanceRequired: false,
            files: [{ path: 'u.csv', url: `{hf}/files/unpinned.csv` }],
          },
        ],
      }),
    );
  });
  after(async () => {
    await fake?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const target = () => join(dir, 'out');

  test('downloads and verifies every file, writes a manifest; a second pull asks nothing', async () => {
    const r = await pull(['open-bench', '--registry', registry, '--dir', target(), '--json']);
    assert.equal(r.code, 0, r.stderr);
    const manifest = JSON.parse(r.stdout);
    assert.deepEqual(
      manifest.files.map((f: any) => [f.path, f.checkedAgainst, f.sha256]),
      [
        ['data/a-test.csv', 'pinned', sha256(open)],
        ['data/b-test.csv', 'pinned', sha256(other)],
      ],
    );
    assert.deepEqual(readFileSync(join(target(), 'open-bench/data/a-test.csv')), open);
    assert.ok(existsSync(join(target(), 'open-bench/kaihub-pull.json')));
    const before = fake.requests.length;
    const again = await pull(['open-bench', '--registry', registry, '--dir', target(), '--json']);
    assert.equal(again.code, 0);
    assert.ok(JSON.parse(again.stdout).files.every((f: any) => f.alreadyPresent));
    assert.equal(fake.requests.length, before, 'nothing fetched again');
  });

  test('an interrupted download resumes from where it stopped, with a range request', async () => {
    const out = join(dir, 'resume');
    fake.cutOnce.add('open-a.csv');
    const first = await pull(['open-bench', '--registry', registry, '--dir', out]);
    assert.equal(first.code, 1);
    assert.match(first.stderr, /download interrupted; run the same command again to resume/);
    const part = join(out, 'open-bench/data/a-test.csv.part');
    const kept = statSync(part).size;
    assert.ok(kept > 0 && kept < open.length, `kept ${kept} of ${open.length}`);

    const second = await pull(['open-bench', '--registry', registry, '--dir', out, '--json']);
    assert.equal(second.code, 0, second.stderr);
    const file = JSON.parse(second.stdout).files[0];
    assert.equal(file.resumedFrom, kept);
    assert.equal(file.sha256, sha256(open));
    assert.deepEqual(readFileSync(join(out, 'open-bench/data/a-test.csv')), open);
    assert.ok(!existsSync(part));
    const ranged = fake.requests.filter((q) => q.path === '/files/open-a.csv' && q.range !== undefined);
    assert.deepEqual(
      ranged.map((q) => q.range),
      [`bytes=${kept}-`],
    );
  });

  test('wrong bytes fail the checksum: nothing is kept, and the next pull starts clean', async () => {
    const out = join(dir, 'wrong');
    fake.wrongBytes.add('open-b.csv');
    const r = await pull(['open-bench', '--registry', registry, '--dir', out]);
    fake.wrongBytes.delete('open-b.csv');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /checksum mismatch, the download was deleted/);
    assert.ok(!existsSync(join(out, 'open-bench/data/b-test.csv')));
    assert.ok(!existsSync(join(out, 'open-bench/data/b-test.csv.part')));
    assert.equal((await pull(['open-bench', '--registry', registry, '--dir', out])).code, 0);
  });

  test('a licence-restricted set is refused until its licence is accepted', async () => {
    const out = join(dir, 'nd');
    const before = fake.requests.length;
    const refused = await pull(['nd-bench', '--registry', registry, '--dir', out]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /CC BY-ND 4\.0/);
    assert.match(refused.stderr, /--accept-licence/);
    assert.equal(fake.requests.length, before, 'nothing was downloaded');
    assert.ok(!existsSync(join(out, 'nd-bench')));
    const accepted = await pull([
      'nd-bench',
      '--registry',
      registry,
      '--dir',
      out,
      '--accept-licence',
      '--json',
    ]);
    assert.equal(accepted.code, 0, accepted.stderr);
    const manifest = JSON.parse(accepted.stdout);
    assert.equal(manifest.licence.acceptanceRequired, true);
    assert.ok(manifest.licence.acceptedAt);
  });

  test('an unpinned file is recorded at the first pull and held to it after', async () => {
    const out = join(dir, 'tofu');
    const env = { KAIHUB_HF_ENDPOINT: fake.url };
    const strict = await pull(['tofu-bench', '--registry', registry, '--dir', out, '--require-pinned'], env);
    assert.equal(strict.code, 1);
    assert.match(strict.stderr, /pins no SHA-256/);
    const first = await pull(['tofu-bench', '--registry', registry, '--dir', out, '--json'], env);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(JSON.parse(first.stdout).files[0].checkedAgainst, 'first');
    assert.match(first.stderr, /recorded [0-9a-f]{64} in SHA256SUMS/);
    const sums = readFileSync(join(out, 'tofu-bench/SHA256SUMS'), 'utf8');
    assert.equal(sums, `${sha256(fake.files.get('unpinned.csv')!)}  u.csv\n`);
    // the publisher's file changes: a fresh download no longer matches what was recorded
    rmSync(join(out, 'tofu-bench/u.csv'));
    fake.files.set('unpinned.csv', csv('Math', 301));
    const changed = await pull(['tofu-bench', '--registry', registry, '--dir', out], env);
    assert.equal(changed.code, 1);
    assert.match(changed.stderr, /checksum mismatch[\s\S]*recorded in .*SHA256SUMS at the first pull/);
  });

  test('unknown benchmarks, unreachable hosts and a broken registry are one clear line each', async () => {
    const unknown = await pull(['nothing', '--registry', registry]);
    assert.equal(unknown.code, 1);
    assert.match(
      unknown.stderr,
      /unknown benchmark "nothing" \(known: kmmlu, hrm8k, kobest, haerae, click, k2-eval, komt-bench, logickor, open-bench, nd-bench, tofu-bench\)/,
    );
    const badRegistry = join(dir, 'bad.json');
    writeFileSync(badRegistry, JSON.stringify({ benchmarks: [{ id: 'x', files: [] }] }));
    const broken = await pull(['--list', '--registry', badRegistry]);
    assert.equal(broken.code, 1);
    assert.match(broken.stderr, /bad\.json: .*name/);
    const closed = join(dir, 'closed.json');
    writeFileSync(
      closed,
      JSON.stringify({
        benchmarks: [
          {
            id: 'gone',
            name: 'gone',
            homepage: 'http://127.0.0.1:9/',
            licence: { name: 'MIT', url: 'https://opensource.org/license/mit' },
            acceptanceRequired: false,
            files: [{ path: 'x.csv', url: 'http://127.0.0.1:9/x.csv' }],
          },
        ],
      }),
    );
    const unreachable = await pull(['gone', '--registry', closed, '--dir', join(dir, 'gone')]);
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.stderr, /cannot reach http:\/\/127\.0\.0\.1:9/);
  });

  test('the shipped registry lists the official sets with their licences; the CLI runs end to end', async () => {
    const kmmlu = SHIPPED_BENCHMARKS.find((b) => b.id === 'kmmlu')!;
    assert.equal(kmmlu.files.length, 90, '45 subjects, dev and test');
    assert.equal(kmmlu.acceptanceRequired, true);
    assert.ok(
      kmmlu.files.every((f) => f.url.startsWith('{hf}/datasets/HAERAE-HUB/KMMLU/resolve/main/data/')),
    );
    const list = await runKaihub(['eval', 'pull', '--list', '--registry', registry], { ...process.env });
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /kmmlu\s+KMMLU \(HAERAE-HUB\)\s+CC BY-ND 4\.0\s+필요 required\s+90\s+0\/90/);
    assert.match(list.stdout, /open-bench .* 2\/2/);
    const refused = await runKaihub(['eval', 'pull', 'kmmlu', '--dir', join(dir, 'k')], {
      ...process.env,
      KAIHUB_HF_ENDPOINT: fake.url,
    });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /--accept-licence/);
  });
});
