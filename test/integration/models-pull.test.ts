import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { type FakeHuggingFace, startFakeHuggingFace } from '../fakes/huggingface.ts';
import { tinyGguf } from '../fakes/tiny-gguf.ts';
import { type CliRun, runKaihub } from '../helpers/cli.ts';
import { ADMIN_TOKEN, startTestHub, type TestHub } from '../helpers/hub.ts';

/**
 * `kaihub models pull | list | rm` as an operator runs them (a child process), against a fake
 * Hugging Face on loopback and a hub on a random port sharing the models folder; then the pulled
 * model answers through /v1 with the official client.
 */

const REPO = 'kakaocorp/kanana-tiny-GGUF';
const FILE = 'kanana-tiny-Q4_K_M.gguf';

const exists = (path: string) =>
  stat(path).then(
    (s) => s.size,
    () => undefined,
  );

describe('kaihub models pull | list | rm', () => {
  let dir: string;
  let hf: FakeHuggingFace;
  let t: TestHub;
  const model = tinyGguf();

  function run(args: string[], extra: Record<string, string> = {}): Promise<CliRun> {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      KAIHUB_URL: t.url,
      KAIHUB_ADMIN_TOKEN: ADMIN_TOKEN,
      KAIHUB_HF_ENDPOINT: hf.url,
      KAIHUB_MODELS_DIR: dir,
      HF_TOKEN: 'hf_test_token',
      ...extra,
    };
    return runKaihub(['models', ...args], env);
  }
  const show = (r: CliRun) => `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kaihub-pull-'));
    hf = await startFakeHuggingFace();
    hf.repos.set(
      REPO,
      new Map([
        ['README.md', { content: Buffer.from('# kanana tiny\n') }],
        ['kanana-tiny-Q8_0.gguf', { content: tinyGguf({ seed: 7 }), lfs: true }],
        [FILE, { content: model, lfs: true }],
      ]),
    );
    hf.repos.set(
      'someone/broken-GGUF',
      new Map([['broken.gguf', { content: tinyGguf({ seed: 9 }), lfs: true }]]),
    );
    hf.wrongSha.add('broken.gguf');
    t = await startTestHub({ KAIHUB_MODELS_DIR: dir, KAIHUB_LOCAL_THREADS: '1' });
  });
  after(async () => {
    await t?.close();
    await hf?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('pull picks the Q4_K_M file, resumes after a dropped connection, registers it, and it answers', async () => {
    hf.cutOnce.add(FILE);
    const first = await run(['pull', REPO]);
    assert.equal(first.code, 1, show(first));
    assert.match(first.stderr, /interrupted; run the same command again to resume/);
    assert.equal(first.stdout, '');
    const partSize = await exists(join(dir, `${FILE}.part`));
    assert.ok(partSize !== undefined && partSize > 0 && partSize < model.length, `part ${partSize}`);
    assert.equal(await exists(join(dir, FILE)), undefined);

    hf.requests.length = 0;
    const second = await run(['pull', REPO]);
    assert.equal(second.code, 0, show(second));
    // the API, then the resolve URL redirected to the CDN, asking only for the missing bytes
    assert.deepEqual(
      hf.requests.map((r) => [r.path, r.range]),
      [
        [`/api/models/${REPO}`, undefined],
        [`/${REPO}/resolve/main/${FILE}`, `bytes=${partSize}-`],
        [`/cdn/${REPO}/${FILE}`, `bytes=${partSize}-`],
      ],
    );
    assert.equal(hf.requests[0]!.authorization, 'Bearer hf_test_token');
    assert.match(second.stderr, /resuming at/);
    assert.match(second.stderr, /SHA-256 OK/);
    assert.match(second.stderr, /100%/); // plain progress lines: stderr is a pipe
    assert.deepEqual(await readFile(join(dir, FILE)), model);
    assert.equal(await exists(join(dir, `${FILE}.part`)), undefined);
    assert.match(second.stdout, /^kanana-tiny-q4_k_m /);

    const products = (await t.admin('GET', '/products')).body.data;
    const product = products.find((p: { model: string }) => p.model === 'kanana-tiny-q4_k_m');
    assert.ok(product, JSON.stringify(products));
    assert.deepEqual(
      {
        purposes: product.purposes,
        modality: product.modality,
        contextWindow: product.contextWindow,
        residency: product.residency,
      },
      { purposes: ['chat'], modality: 'text', contextWindow: 512, residency: 'domestic' },
    );
    assert.equal(Number(product.priceInputPer1M), 0);
    assert.equal(Number(product.priceOutputPer1M), 0);
    const supplier = (await t.admin('GET', `/suppliers/${product.supplierId}`)).body;
    assert.equal(supplier.name, '로컬 모델');
    const deployments = (await t.admin('GET', `/deployments?productId=${product.id}`)).body.data;
    assert.equal(deployments.length, 1);
    assert.deepEqual(
      [deployments[0].adapter, deployments[0].baseUrl, deployments[0].upstreamModel, deployments[0].status],
      ['local', 'local:', FILE, 'active'],
    );

    // pulling again downloads nothing and registers nothing twice
    hf.requests.length = 0;
    const again = await run(['pull', REPO, FILE, '--json']);
    assert.equal(again.code, 0, show(again));
    assert.deepEqual(
      hf.requests.map((r) => r.path),
      [`/api/models/${REPO}`],
    );
    const summary = JSON.parse(again.stdout);
    assert.equal(summary.deploymentId, deployments[0].id);
    assert.equal(summary.created.product, false);

    const org = (await t.admin('POST', '/organizations', { name: '로컬테스트', class: 'sme' })).body;
    const key = (await t.admin('POST', `/organizations/${org.id}/keys`, { name: 'local' })).body;
    const client = new OpenAI({ apiKey: key.key, baseURL: `${t.url}/v1`, maxRetries: 0 });
    const completion = await client.chat.completions.create({
      model: 'kanana-tiny-q4_k_m',
      messages: [{ role: 'user', content: '안녕하세요' }],
      max_tokens: 4,
    });
    assert.equal(completion.model, 'kanana-tiny-q4_k_m');
    assert.equal(typeof completion.choices[0]?.message.content, 'string');
    assert.ok(completion.usage!.completion_tokens >= 1);
  });

  test('a wrong checksum deletes the download and exits 1', async () => {
    const r = await run(['pull', 'someone/broken-GGUF', '--no-register']);
    assert.equal(r.code, 1, show(r));
    assert.match(r.stderr, /checksum mismatch, the download was deleted/);
    assert.equal(await exists(join(dir, 'broken.gguf')), undefined);
    assert.equal(await exists(join(dir, 'broken.gguf.part')), undefined);
  });

  test('a server that ignores the range: the download starts over', async () => {
    const repo = 'someone/norange-GGUF';
    hf.repos.set(repo, new Map([['norange.gguf', { content: model, lfs: true }]]));
    hf.cutOnce.add('norange.gguf');
    hf.ignoreRange.add('norange.gguf');
    assert.equal((await run(['pull', repo, '--no-register'])).code, 1);
    const r = await run(['pull', repo, '--no-register']);
    assert.equal(r.code, 0, show(r));
    assert.deepEqual(await readFile(join(dir, 'norange.gguf')), model);
    await rm(join(dir, 'norange.gguf'));
  });

  test('--revision pins a commit: the listing and the bytes come from it, not from main', async () => {
    const repo = 'someone/pinned-GGUF';
    const commit = '142acae803a41c206e8d0fa978c6102c748911bb';
    const pinned = tinyGguf({ seed: 11 });
    hf.repos.set(repo, new Map([['pinned.gguf', { content: tinyGguf({ seed: 12 }), lfs: true }]]));
    hf.repos.set(`${repo}@${commit}`, new Map([['pinned.gguf', { content: pinned, lfs: true }]]));
    const seen = hf.requests.length;
    const r = await run(['pull', repo, 'pinned.gguf', '--revision', commit, '--no-register']);
    assert.equal(r.code, 0, show(r));
    assert.deepEqual(await readFile(join(dir, 'pinned.gguf')), pinned);
    assert.deepEqual(
      hf.requests
        .slice(seen)
        .map((q) => q.path)
        .filter((p) => !p.startsWith('/cdn/')),
      [`/api/models/${repo}/revision/${commit}`, `/${repo}/resolve/${commit}/pinned.gguf`],
    );
    await rm(join(dir, 'pinned.gguf'));

    const missing = await run(['pull', repo, '--revision', 'no-such-tag', '--no-register']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no such repository or revision/);
    const bad = await run(['pull', repo, '--revision', '../etc', '--no-register']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /invalid revision/);
  });

  test('several GGUF files and no Q4_K_M: the error lists them', async () => {
    hf.repos.set(
      'someone/many-GGUF',
      new Map([
        ['m-Q8_0.gguf', { content: Buffer.from('a'), lfs: true }],
        ['m-F16.gguf', { content: Buffer.from('b'), lfs: true }],
      ]),
    );
    const r = await run(['pull', 'someone/many-GGUF', '--no-register']);
    assert.equal(r.code, 1, show(r));
    assert.match(r.stderr, /several GGUF files, name one:\n {2}m-Q8_0\.gguf\n {2}m-F16\.gguf/);
  });

  test('list shows files and the deployments using them; rm deletes and disables', async () => {
    const listed = await run(['list', '--json']);
    assert.equal(listed.code, 0, show(listed));
    const rows = JSON.parse(listed.stdout).data;
    const row = rows.find((x: { file: string }) => x.file === FILE);
    assert.equal(row.bytes, model.length);
    assert.equal(row.deployments[0].model, 'kanana-tiny-q4_k_m');
    assert.equal(row.deployments[0].status, 'active');

    const table = await run(['list']);
    assert.equal(table.code, 0, show(table));
    assert.match(
      table.stdout,
      new RegExp(`${FILE.replace(/\./g, '\\.')}\\s+[0-9.]+ MB\\s+kanana-tiny-q4_k_m\\s+dep_`),
    );

    const offline = await run(['list'], { KAIHUB_URL: 'http://127.0.0.1:9' });
    assert.equal(offline.code, 0, show(offline));
    assert.match(offline.stdout, new RegExp(FILE.replace(/\./g, '\\.')));
    assert.match(offline.stderr, /deployments not shown/);

    const removed = await run(['rm', FILE]);
    assert.equal(removed.code, 0, show(removed));
    assert.match(removed.stdout, /disabled deployments dep_/);
    assert.equal(await exists(join(dir, FILE)), undefined);
    const deployments = (await t.admin('GET', `/deployments/${row.deployments[0].id}`)).body;
    assert.equal(deployments.status, 'disabled');

    const missing = await run(['rm', FILE]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no such file/);
  });
});
