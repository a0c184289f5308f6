import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runAdminInProcess, runKaihub } from '../helpers/cli.ts';
import {
  referenceRuns,
  roundBody,
  roundInputs,
  type TeamFixture,
  type TeamPlan,
} from '../helpers/evaluation-round.ts';
import { ADMIN_TOKEN, startTestHub, type TestHub } from '../helpers/hub.ts';

/** `kaihub eval rounds …`, `kaihub eval arenas …`, `kaihub eval battles add` and `kaihub eval ratings`. */

describe('kaihub eval rounds, arenas, battles, ratings', () => {
  let t: TestHub;
  let env: Record<string, string>;
  let dir: string;
  let teams: TeamFixture[];

  const run = (args: string[]) => runAdminInProcess(['eval', ...args], env);
  const ok = async (args: string[]) => {
    const r = await run(args);
    assert.equal(r.code, 0, `kaihub eval ${args.join(' ')}\n${r.stdout}\n${r.stderr}`);
    return args.includes('--json') ? JSON.parse(r.stdout) : r.stdout;
  };
  const file = (name: string, content: unknown) => {
    const path = join(dir, name);
    writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
    return path;
  };

  before(async () => {
    t = await startTestHub({}, { hub: { runResults: referenceRuns } });
    env = { KAIHUB_URL: t.url, KAIHUB_ADMIN_TOKEN: ADMIN_TOKEN };
    dir = mkdtempSync(join(tmpdir(), 'kaihub-cli-eval-'));
    const must = async (path: string, body: unknown) => {
      const r = await t.admin('POST', path, body);
      assert.equal(r.status, 201, JSON.stringify(r.body));
      return r.body;
    };
    const supplier = await must('/suppliers', { name: 'CLI 공급기업' });
    teams = [];
    for (const [i, name] of ['가', '나', '다', '라'].entries()) {
      const org = await must('/organizations', { name: `${name} 팀`, class: 'large' });
      const product = await must('/products', {
        supplierId: supplier.id,
        model: `cli-model-${i}`,
        displayName: name,
        purposes: ['chat'],
        modality: 'text',
        contextWindow: 8192,
        priceInputPer1M: '1',
        priceOutputPer1M: '1',
        residency: 'domestic',
      });
      teams.push({
        organizationId: org.id,
        productId: product.id,
        name: `${name} 팀`,
        targetModel: 'global-a',
        parameters: (i + 1) * 1e10,
      });
    }
  });
  after(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a round from a file to its published result; refusals name the field', async () => {
    const round = await ok([
      'rounds',
      'create',
      '--file',
      file('round.json', roundBody(teams, { survivors: 2 })),
      '--json',
    ]);
    assert.equal(round.status, 'draft');
    await ok(['rounds', 'update', round.id, '--data', '{"name": "1차 평가 (CLI)"}']);
    assert.match(await ok(['rounds', 'open', round.id]), /open/);

    const plans: TeamPlan[] = [
      { percent: 98, expert: [90, 90, 91], user: [9, 9] },
      { percent: 95, expert: [80, 82, 81], user: [8, 8] },
      { percent: 85, expert: [70, 71, 72], user: [7, 7] },
      { percent: 97, expert: [88, 89, 87], user: [8.9, 8.9], independent: false },
    ];
    const inputs = roundInputs(teams, plans);
    await ok([
      'rounds',
      'references',
      round.id,
      '--file',
      file('refs.json', { references: inputs.references }),
    ]);
    // one score by flags, the rest from a file
    const [first, ...rest] = inputs.scores;
    const single = await ok([
      'rounds',
      'scores',
      round.id,
      '--organization-id',
      first!.organizationId,
      '--suite-id',
      first!.suiteId,
      '--score',
      String(first!.score),
      '--stderr',
      '0.5',
      '--n',
      '1000',
      '--unparsed',
      '2',
      '--note',
      '허브 측정',
      '--json',
    ]);
    assert.equal(single.data[0].score, first!.score);
    await ok(['rounds', 'scores', round.id, '--file', file('scores.json', { scores: rest })]);
    const members = await ok([
      'rounds',
      'members',
      round.id,
      '--file',
      file('members.json', { members: inputs.members }),
      '--json',
    ]);
    const ids = members.data.map((m: any) => m.id);
    await ok([
      'rounds',
      'panel-scores',
      round.id,
      '--file',
      file('panel.json', { scores: inputs.panelScores(ids) }),
    ]);
    for (const [i, team] of teams.entries()) {
      await ok([
        'rounds',
        'gate',
        round.id,
        '--gate-id',
        'independence',
        '--organization-id',
        team.organizationId,
        i === 3 ? '--failed' : '--passed',
        '--evidence',
        '학습 로그',
        '--reason',
        i === 3 ? '해외 모델 가중치 사용' : '독자 학습',
      ]);
    }

    const preview = await ok(['rounds', 'result', round.id]);
    assert.match(preview, /미리보기 \/ preview/);
    const closed = await ok(['rounds', 'close', round.id]);
    assert.match(closed, /실격 disqualified 라 팀: independence — 해외 모델 가중치 사용/);
    assert.match(closed, /생존 survives/);
    assert.match(closed, /탈락 eliminated/);
    await ok(['rounds', 'publish', round.id]);
    const listed = await ok(['rounds', 'list']);
    assert.match(listed, /1차 평가 \(CLI\)/);
    // as an operator runs it: bin/kaihub.mjs → main.ts → the admin command
    const child = await runKaihub(['eval', 'rounds', 'result', round.id, '--json'], {
      ...process.env,
      ...env,
    });
    assert.equal(child.code, 0, child.stderr);
    assert.equal(JSON.parse(child.stdout).publishedAt !== null, true);

    // refusals: the hub names the field; the CLI prints it and exits 1
    const wrong = await run([
      'rounds',
      'scores',
      round.id,
      '--organization-id',
      teams[1]!.organizationId,
      '--suite-id',
      'kmmlu',
      '--score',
      '1',
      '--note',
      'x',
    ]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /HTTP 409/);
    const draft = await ok(['rounds', 'create', '--data', JSON.stringify(roundBody(teams)), '--json']);
    await ok(['rounds', 'open', draft.id]);
    const badSuite = await run([
      'rounds',
      'scores',
      draft.id,
      '--organization-id',
      teams[1]!.organizationId,
      '--suite-id',
      'team-pick',
      '--score',
      '1',
      '--note',
      'x',
    ]);
    assert.equal(badSuite.code, 1);
    assert.match(badSuite.stderr, /scores\.0\.suiteId: team-pick is not one of this team’s suites/);
    const neither = await run(['rounds', 'gate', draft.id, '--gate-id', 'independence']);
    assert.equal(neither.code, 1);
    assert.match(neither.stderr, /--passed|--failed/);
    const badFile = await run(['rounds', 'create', '--file', join(dir, 'nothing.json')]);
    assert.equal(badFile.code, 1);
    assert.match(badFile.stderr, /ENOENT/);
  });

  test('an arena, battles from JSON lines, and ratings with intervals', async () => {
    const arena = await ok([
      'arenas',
      'create',
      '--name',
      'CLI 아레나',
      '--judge-model',
      'judge-x',
      '--json',
    ]);
    const lines = [
      ...Array.from({ length: 30 }, () => '{"a": "strong", "b": "weak", "outcome": "a"}'),
      ...Array.from({ length: 10 }, () => '{"a": "weak", "b": "strong", "outcome": "a"}'),
      '{"a": "weak", "b": "strong", "outcome": "tie"}',
      '',
    ].join('\n');
    const added = await ok(['battles', 'add', arena.id, '--file', file('battles.jsonl', lines), '--json']);
    assert.equal(added.recorded, 41);
    const table = await ok(['ratings', arena.id, '--bootstrap', '50']);
    assert.match(table, /41 battles, 50 bootstrap resamples/);
    assert.ok(table.indexOf('strong') < table.indexOf('weak'), table);
    assert.match(await ok(['arenas', 'list']), /CLI 아레나/);
    const open = await ok(['arenas', 'create', '--name', '공개 아레나', '--public', '--json']);
    assert.equal(open.public, true);
    assert.equal(open.judgeModel, null);
    const broken = await run([
      'battles',
      'add',
      arena.id,
      '--file',
      file('broken.jsonl', '{"a": "x"}\nnot json\n'),
    ]);
    assert.equal(broken.code, 1);
    assert.match(broken.stderr, /broken\.jsonl:2/);
  });
});
