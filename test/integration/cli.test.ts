import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import OpenAI from 'openai';
import { type FakeOpenAI, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import { type CliRun, runAdminInProcess, runKaihub } from '../helpers/cli.ts';
import { ADMIN_TOKEN, startTestHub, type TestHub } from '../helpers/hub.ts';
import { closedPort } from '../helpers/v1.ts';

/**
 * The `kaihub` operator CLI as an operator runs it: `node bin/kaihub.mjs …` in a child process
 * against a hub on a random port, checking exit codes, stdout and stderr.
 */

function run(args: string[], env: Record<string, string | undefined> = {}): Promise<CliRun> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  delete childEnv.KAIHUB_URL;
  delete childEnv.KAIHUB_ADMIN_TOKEN;
  delete childEnv.KAIHUB_TOKEN;
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete childEnv[k];
    else childEnv[k] = v;
  }
  return runKaihub(args, childEnv);
}

describe('kaihub CLI against a running hub', () => {
  let fake: FakeOpenAI;
  let t: TestHub;
  let env: Record<string, string>;

  /** Runs a command that must succeed; returns stdout (parsed with --json). */
  async function ok(args: string[]): Promise<any> {
    const r = await run(args, env);
    assert.equal(r.code, 0, `kaihub ${args.join(' ')}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    return args.includes('--json') ? JSON.parse(r.stdout) : r.stdout;
  }

  /** Runs a command that must fail with exit 1 and print nothing on stdout; returns stderr. */
  async function fails(args: string[], how: 'spawn' | 'in-process' = 'spawn'): Promise<string> {
    const r = how === 'spawn' ? await run(args, env) : await inProcess(args);
    assert.equal(r.code, 1, `kaihub ${args.join(' ')} should fail\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    assert.equal(r.stdout, '');
    assert.ok(r.stderr.length > 0);
    return r.stderr;
  }

  /**
   * The same function main.ts calls, run in this process: each child process costs a Node start
   * and the TypeScript loader, so only the end-to-end checks pay for one.
   */
  function inProcess(args: string[], runEnv: Record<string, string> = env): Promise<CliRun> {
    return runAdminInProcess(args, runEnv);
  }

  before(async () => {
    fake = await startFakeOpenAI({ apiKey: 'upstream-secret' });
    t = await startTestHub();
    env = { KAIHUB_URL: t.url, KAIHUB_ADMIN_TOKEN: ADMIN_TOKEN };
  });
  after(async () => {
    await t?.close();
    await fake?.close();
  });

  test('supplier → product → deployment → org → key → lists → usage → revoke', async () => {
    // Independent steps run side by side: each command is a whole Node process.
    const [supplier, org] = await Promise.all([
      ok(['suppliers', 'create', '--name', 'LG AI연구원', '--name-en', 'LG AI Research', '--json']),
      ok(['orgs', 'create', '--name', '테스트중소기업', '--class', 'sme', '--json']),
    ]);
    assert.match(supplier.id, /^sup_/);
    assert.equal(supplier.name, 'LG AI연구원');
    assert.equal(org.class, 'sme');

    const [product, keyRun] = await Promise.all([
      ok([
        'products',
        'create',
        '--supplier-id',
        supplier.id,
        '--model',
        'exaone-cli',
        '--display-name',
        'EXAONE CLI',
        '--parameters',
        '2100000000',
        '--purposes',
        'chat,summarization',
        '--modality',
        'text',
        '--context-window=32768',
        '--price-input-per-1m',
        '1250.5',
        '--price-output-per-1m',
        '0.000001',
        '--residency',
        'domestic',
        '--json',
      ]),
      run(['keys', 'create', org.id, '--name', 'cli', '--json'], env),
    ]);
    assert.equal(product.parameters, 2_100_000_000);
    assert.deepEqual(product.purposes, ['chat', 'summarization']);
    assert.equal(product.contextWindow, 32768);
    assert.equal(product.priceInputPer1M, '1250.5');
    assert.equal(product.priceOutputPer1M, '0.000001');
    assert.equal(keyRun.code, 0, keyRun.stderr);
    const key = JSON.parse(keyRun.stdout);
    assert.match(key.key, /^sk-kai-/);
    assert.match(keyRun.stderr, /한 번만|only this once/, 'the once-only warning goes to stderr');

    const deployment = await run(
      [
        'deployments',
        'create',
        '--product-id',
        product.id,
        '--adapter',
        'openai-compatible',
        '--base-url',
        fake.url,
        '--api-key',
        'upstream-secret',
        '--upstream-model',
        'fake-chat',
      ],
      env,
    );
    assert.equal(deployment.code, 0, deployment.stderr);
    assert.match(deployment.stdout, /^hasApiKey\s+true$/m, 'a record prints as field/value lines');
    assert.ok(!deployment.stdout.includes('upstream-secret'));
    const deploymentId = /^id\s+(dep_\S+)$/m.exec(deployment.stdout)?.[1];
    assert.ok(deploymentId);

    const [products, deployments, orgs, keys] = await Promise.all([
      ok(['products', 'list', '--supplier-id', supplier.id]),
      ok(['deployments', 'list']),
      ok(['orgs', 'list']),
      ok(['keys', 'list', org.id]),
    ]);
    assert.match(products, /^ID\s+모델 Model\s+이름 Name/);
    assert.match(
      products,
      /exaone-cli\s+EXAONE CLI\s+2\.1B\s+chat,summarization\s+32768\s+1250\.5\s+0\.000001/,
    );
    assert.match(deployments, new RegExp(`${deploymentId}\\s+${product.id}`));
    assert.match(deployments, /있음 yes/);
    assert.ok(!deployments.includes('upstream-secret'));
    assert.match(orgs, new RegExp(`^${org.id}\\s+테스트중소기업\\s+sme`, 'm'));
    assert.match(keys, new RegExp(`${key.id}\\s+cli\\s+${key.prefix}`));
    assert.ok(!keys.includes(key.key), 'the key list never shows the secret');

    const client = new OpenAI({ apiKey: key.key, baseURL: `${t.url}/v1`, maxRetries: 0 });
    for (let i = 0; !(await client.models.list()).data.some((m) => m.id === 'exaone-cli'); i++) {
      assert.ok(i < 100, 'the catalog shows the new product');
      await sleep(20);
    }
    for (const content of ['안녕하세요', 'one two three']) {
      await client.chat.completions.create({ model: 'exaone-cli', messages: [{ role: 'user', content }] });
    }

    const [usage, table] = await Promise.all([
      ok(['usage', '--organization-id', org.id, '--group-by', 'product', '--json']),
      ok([
        'usage',
        '--key-id',
        key.id,
        '--product-id',
        product.id,
        '--from',
        '2020-01-01',
        '--group-by',
        'product',
      ]),
    ]);
    const api = await t.admin('GET', `/usage?organizationId=${org.id}&groupBy=product`);
    assert.deepEqual(usage, api.body);
    assert.equal(usage.totals.requests, 2);
    assert.equal(usage.rows[0].model, 'exaone-cli');
    assert.match(table, new RegExp(`^exaone-cli\\s+${product.id}\\s+2\\s+\\d+\\s+\\d+\\s+[\\d.]+$`, 'm'));
    assert.match(
      table,
      new RegExp(`^합계 Total\\s+2\\s+${usage.totals.promptTokens}\\s+\\d+\\s+${usage.totals.costKrw}$`, 'm'),
    );

    // one row per request, newest first, with the attempt that served it
    const events = await ok(['usage', 'events', '--organization-id', org.id, '--limit', '5']);
    const eventRows = (events as string).split('\n').filter((l) => l.includes('exaone-cli'));
    assert.equal(eventRows.length, 2, events);
    assert.match(eventRows[0]!, new RegExp(`\\sok\\s.*${deploymentId}:ok$`));
    assert.match(await fails(['usage', 'events', '--limit', '0']), /limit/);

    const [revoked, updated, deleted] = await Promise.all([
      ok(['keys', 'revoke', key.id, '--json']),
      ok([
        'products',
        'update',
        product.id,
        '--status',
        'inactive',
        '--data',
        '{"description": "설명", "parameters": null}',
        '--json',
      ]),
      ok(['deployments', 'delete', deploymentId]),
    ]);
    assert.ok(revoked.revokedAt);
    await assert.rejects(client.models.list(), (e: unknown) => e instanceof OpenAI.AuthenticationError);
    assert.equal(updated.status, 'inactive');
    assert.equal(updated.description, '설명');
    assert.equal(updated.parameters, null);
    assert.equal(updated.priceInputPer1M, '1250.5');
    assert.match(deleted, /deleted/);
    assert.equal((await t.admin('GET', `/deployments/${deploymentId}`)).status, 404);
  });

  test('a price scheduled from the CLI, and the schedule listed in KST', async () => {
    const supplier = await t.admin('POST', '/suppliers', { name: '가격 공급기업' });
    const product = await t.admin('POST', '/products', {
      supplierId: supplier.body.id,
      model: 'cli-prices',
      displayName: 'CLI prices',
      purposes: ['chat'],
      modality: 'text',
      contextWindow: 4096,
      priceInputPer1M: '100',
      priceOutputPer1M: '200',
      residency: 'domestic',
    });
    const scheduled = await ok([
      'products',
      'update',
      product.body.id,
      '--price-input-per-1m',
      '150',
      '--prices-effective-from',
      '2031-01-01',
      '--json',
    ]);
    assert.equal(scheduled.priceInputPer1M, '100');
    assert.equal(scheduled.nextPriceChange.effectiveFrom, '2030-12-31T15:00:00.000Z');
    const table = await ok(['products', 'prices', product.body.id]);
    assert.match(table, /^적용 시작 From \(KST\)\s+입력 In ₩\/1M\s+출력 Out ₩\/1M/);
    assert.match(table, /^2031-01-01 00:00\s+150\s+200\s+operator-token/m);
  });

  test('the hub’s validation errors reach stderr with the flags to fix, exit 1', async () => {
    const supplier = await t.admin('POST', '/suppliers', { name: '검증 공급기업' });
    const [invalid, conflict, notFound] = await Promise.all([
      fails([
        'products',
        'create',
        '--supplier-id',
        supplier.body.id,
        '--model',
        'bad-prices',
        '--display-name',
        'x',
        '--purposes',
        'chat',
        '--modality',
        'text',
        '--context-window',
        '4096',
        '--price-input-per-1m',
        '-1',
        '--price-output-per-1m',
        '1.1234567',
        '--residency',
        'mars',
      ]),
      fails(['suppliers', 'create', '--name', '검증 공급기업'], 'in-process'),
      fails(['suppliers', 'get', 'sup_missing'], 'in-process'),
    ]);
    assert.match(invalid, /입력값이 올바르지 않습니다/);
    assert.match(invalid, /\(HTTP 400\)/);
    assert.match(invalid, /^ {2}- priceInputPer1M \(--price-input-per-1m\): must not be negative$/m);
    assert.match(invalid, /^ {2}- priceOutputPer1M \(--price-output-per-1m\): .*6 decimal/m);
    assert.match(invalid, /^ {2}- residency \(--residency\): /m);
    assert.match(conflict, /HTTP 409/);
    assert.match(conflict, /- name \(--name\)/);
    assert.match(notFound, /sup_missing.*HTTP 404/);
  });

  test('bad command lines fail before any request, exit 1', async () => {
    const cases: [string[], RegExp][] = [
      [['suppliers', 'list', '--bogus', 'x'], /unknown flag --bogus/],
      [['suppliers', 'get'], /expected <id>/],
      [['suppliers', 'get', 'a', 'b'], /expected <id>, got a b/],
      [['suppliers', 'update', 'sup_x'], /nothing to update/],
      [['suppliers', 'create', '--data', '{not json'], /--data: .*not valid JSON/],
      [['suppliers', 'create', '--data', '[1]'], /--data: .*JSON object/],
      [['suppliers', 'create', '--name'], /--name needs a value/],
      [['suppliers', 'frobnicate'], /list \| get \| create \| update/],
      [['keys', 'rotate', 'key_x'], /list <orgId> \| create <orgId> \| revoke <keyId>/],
      [['frobnicate'], /unknown command "frobnicate"/],
    ];
    for (const [args, message] of cases) {
      const r = await inProcess(args);
      assert.equal(r.code, 1, args.join(' '));
      assert.equal(r.stdout, '');
      assert.match(r.stderr, message);
      assert.match(r.stderr, /kaihub help admin/);
    }
  });

  test('flags map to the API fields: kebab-case, numbers, lists, --flag=value, --data underneath', async () => {
    const org = await t.admin('POST', '/organizations', { name: '플래그 기관', class: 'research' });
    const created = await inProcess([
      'keys',
      'create',
      org.body.id,
      '--allowed-models= exaone-cli , hcx-007 ,',
      '--data',
      '{"name": "from-data", "allowedModels": ["ignored"]}',
      '--json',
    ]);
    assert.equal(created.code, 0, created.stderr);
    const key = JSON.parse(created.stdout);
    assert.equal(key.name, 'from-data');
    assert.deepEqual(key.allowedModels, ['exaone-cli', 'hcx-007'], 'a flag overrides --data');

    const supplier = await t.admin('POST', '/suppliers', { name: '플래그 공급기업' });
    const notNumber = await inProcess(['products', 'update', 'prd_x', '--parameters', '7B']);
    assert.match(notNumber.stderr, /HTTP 404/, 'the hub, not the CLI, decides');
    const product = await t.admin('POST', '/products', {
      supplierId: supplier.body.id,
      model: 'flag-model',
      displayName: 'Flag',
      purposes: ['chat'],
      modality: 'text',
      contextWindow: 1024,
      priceInputPer1M: '1',
      priceOutputPer1M: '1',
      residency: 'foreign',
    });
    const bad = await inProcess(['products', 'update', product.body.id, '--parameters', '7B']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^ {2}- parameters \(--parameters\): .*number/m);
    const good = await inProcess([
      'products',
      'update',
      product.body.id,
      '--parameters',
      '7000000000',
      '--context-window',
      '8192',
      '--purposes',
      'code,reasoning',
      '--price-output-per-1m',
      '0.5',
    ]);
    assert.equal(good.code, 0, good.stderr);
    assert.match(good.stdout, /^parameters\s+7000000000$/m);
    const stored = (await t.admin('GET', `/products/${product.body.id}`)).body;
    assert.equal(stored.parameters, 7_000_000_000);
    assert.equal(stored.contextWindow, 8192);
    assert.deepEqual(stored.purposes, ['code', 'reasoning']);
    assert.equal(stored.priceOutputPer1M, '0.5');
  });

  test('a wrong or missing token, and a hub that is not running, are one clear line and exit 1', async () => {
    const port = await closedPort();
    const [wrongFlag, down] = await Promise.all([
      fails(['suppliers', 'list', '--token', 'wrong-token-0123456789']),
      fails(['suppliers', 'list', '--url', `http://127.0.0.1:${port}`]),
    ]);
    const wrongEnv = await inProcess(['orgs', 'list'], {
      ...env,
      KAIHUB_ADMIN_TOKEN: 'wrong-token-0123456789',
    });
    const missing = await inProcess(['orgs', 'list'], { KAIHUB_URL: t.url });
    assert.equal(wrongEnv.code, 1);
    assert.equal(missing.code, 1);
    for (const stderr of [wrongFlag, wrongEnv.stderr])
      assert.match(stderr, /토큰이 필요합니다.*kaihub admin-token reset.*HTTP 401/);
    assert.match(missing.stderr, /KAIHUB_ADMIN_TOKEN/);
    assert.match(down, new RegExp(`127\\.0\\.0\\.1:${port}.*refused`));
    for (const stderr of [wrongFlag, missing.stderr, down])
      assert.equal(stderr.trimEnd().split('\n').length, 1, stderr);
  });

  test('--url and --token override the environment; help prints the commands', async () => {
    const port = await closedPort();
    const list = await inProcess(['orgs', 'list', '--json', '--url', t.url, '--token', ADMIN_TOKEN], {
      KAIHUB_URL: `http://127.0.0.1:${port}`,
      KAIHUB_ADMIN_TOKEN: 'wrong-token-0123456789',
    });
    assert.equal(list.code, 0, list.stderr);
    assert.ok(Array.isArray(JSON.parse(list.stdout).data));
    const [help, resourceHelp] = await Promise.all([
      run(['help', 'admin']),
      inProcess(['products', 'create', '--help']),
    ]);
    for (const r of [help, resourceHelp]) {
      assert.equal(r.code, 0);
      assert.match(r.stdout, /kaihub products/);
      assert.match(r.stdout, /--price-input-per-1m/);
      assert.match(r.stdout, /KAIHUB_ADMIN_TOKEN/);
    }
  });
});
