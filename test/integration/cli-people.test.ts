import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type CliRun, runAdminInProcess, runKaihub } from '../helpers/cli.ts';
import { ADMIN_TOKEN, startTestHub, type TestHub } from '../helpers/hub.ts';

/**
 * The CLI for people, audit, catalogue files and re-sealing, as an operator and as a person with a
 * personal access token (KAIHUB_TOKEN).
 */

const FIXTURE = fileURLToPath(new URL('../fixtures/catalog-small.json', import.meta.url));

const inProcess = (args: string[], env: Record<string, string>): Promise<CliRun> =>
  runAdminInProcess(args, env);

describe('kaihub CLI: people, audit, catalogue, credentials', () => {
  let t: TestHub;
  let operator: Record<string, string>;
  let dir: string;

  const ok = async (args: string[], env = operator) => {
    const r = await inProcess(args, env);
    assert.equal(r.code, 0, `kaihub ${args.join(' ')}\n${r.stdout}\n${r.stderr}`);
    return args.includes('--json') ? JSON.parse(r.stdout) : r.stdout;
  };

  before(async () => {
    t = await startTestHub();
    operator = { KAIHUB_URL: t.url, KAIHUB_ADMIN_TOKEN: ADMIN_TOKEN };
    dir = mkdtempSync(join(tmpdir(), 'kaihub-cli-people-'));
  });
  after(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('users, memberships and tokens; a person signs in with KAIHUB_TOKEN and sees only their own', async () => {
    const [org, other] = await Promise.all([
      ok(['orgs', 'create', '--name', '가나다 주식회사', '--class', 'sme', '--json']),
      ok(['orgs', 'create', '--name', '다른 기관', '--class', 'public', '--json']),
    ]);
    const user = await ok(['users', 'create', '--name', '김관리', '--email', 'admin@ganada.kr', '--json']);
    const membership = await ok([
      'memberships',
      'add',
      user.id,
      '--role',
      'org_admin',
      '--organization-id',
      org.id,
      '--json',
    ]);
    assert.equal(membership.role, 'org_admin');
    const users = await ok(['users', 'list']);
    assert.match(
      users,
      new RegExp(`${user.id}\\s+김관리\\s+admin@ganada\\.kr\\s+active\\s+org_admin@${org.id}`),
    );

    // End to end, as typed: the token on stdout, the once-only warning on stderr.
    const env = { ...process.env, KAIHUB_URL: t.url, KAIHUB_ADMIN_TOKEN: ADMIN_TOKEN, KAIHUB_TOKEN: '' };
    const created = await runKaihub(['tokens', 'create', user.id, '--name', 'laptop', '--json'], env);
    assert.equal(created.code, 0, created.stderr);
    const token = JSON.parse(created.stdout);
    assert.match(token.token, /^kaihub-pat-/);
    assert.match(created.stderr, /한 번만|only this once/);

    const person = {
      KAIHUB_URL: t.url,
      KAIHUB_TOKEN: token.token,
      KAIHUB_ADMIN_TOKEN: 'wrong-token-0123456789',
    };
    const whoami = await ok(['whoami'], person);
    assert.match(whoami, /^roles\s+org_admin$/m, 'KAIHUB_TOKEN wins over KAIHUB_ADMIN_TOKEN');
    assert.match(whoami, /^name\s+김관리$/m);
    const orgs = await ok(['orgs', 'list'], person);
    assert.ok(orgs.includes(org.id) && !orgs.includes(other.id), 'only their organisation');
    await ok(['keys', 'create', org.id, '--name', 'app'], person);
    const foreign = await inProcess(['keys', 'create', other.id], person);
    assert.equal(foreign.code, 1);
    assert.equal(foreign.stdout, '');
    assert.match(foreign.stderr, /HTTP 404/);
    const forbidden = await inProcess(['suppliers', 'create', '--name', '몰래'], person);
    assert.match(forbidden.stderr, /권한이 없습니다.*HTTP 403/);

    const tokens = await ok(['tokens', 'list', user.id], person);
    assert.match(tokens, new RegExp(`${token.id}\\s+laptop\\s+${token.prefix}`));
    assert.ok(!tokens.includes(token.token));
    await ok(['tokens', 'revoke', token.id], person);
    const revoked = await inProcess(['whoami'], person);
    assert.equal(revoked.code, 1);
    assert.match(revoked.stderr, /HTTP 401/);

    const audit = await ok(['audit', '--actor-id', user.id, '--json']);
    assert.deepEqual(
      audit.data.map((e: any) => [e.action, e.entityType]),
      [
        ['revoke', 'personal_access_token'],
        ['create', 'api_key'],
      ],
    );
    const table = await ok(['audit', '--entity-id', membership.id]);
    assert.match(table, /operator-token\s+create\s+membership/);
    await ok(['memberships', 'remove', membership.id]);
    assert.match(await ok(['memberships', 'list', user.id]), /없음 \/ none/);
  });

  test('catalog export and import, dry run first; credentials reseal', async () => {
    const dry = await ok(['catalog', 'import', FIXTURE, '--dry-run']);
    assert.match(dry, /dry run: nothing changed/);
    assert.match(dry, /fixture-hcx, fixture-seed, fixture-gpt/);
    const report = await ok(['catalog', 'import', FIXTURE]);
    assert.match(report, /^가져왔습니다 \/ imported/);
    const exported = join(dir, 'catalog.json');
    writeFileSync(exported, await ok(['catalog', 'export']));
    const file = JSON.parse(readFileSync(exported, 'utf8'));
    assert.deepEqual(
      file.suppliers.flatMap((s: any) => s.products.map((p: any) => p.model)),
      ['fixture-hcx', 'fixture-seed', 'fixture-gpt'],
    );
    file.suppliers[0].products[0].priceInputPer1M = '1300';
    await ok([
      'products',
      'update',
      (await ok(['products', 'list', '--json'])).data[2].id,
      '--price-input-per-1m',
      '1',
    ]);
    file.suppliers[1].products[0].priceInputPer1M = '2000';
    writeFileSync(exported, JSON.stringify(file));
    const merged = await ok(['catalog', 'import', exported]);
    assert.match(merged, /갱신 updated fixture-hcx: priceInputPer1M/);
    assert.match(
      merged,
      /kept, changed by the operator: fixture-gpt\.priceInputPer1M = "1" \(파일 file: "2000"\)/,
    );
    assert.match(merged, /--overwrite/);

    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"version": 1,');
    const unreadable = await inProcess(['catalog', 'import', bad], operator);
    assert.equal(unreadable.code, 1);
    assert.match(unreadable.stderr, /cannot read as JSON/);

    const reseal = await ok(['credentials', 'reseal']);
    assert.match(reseal, /^현재 키 current key: [0-9a-f]{8}$/m);
  });
});
