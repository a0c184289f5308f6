import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { runAdminInProcess } from '../helpers/cli.ts';
import {
  CRITERIA,
  computeSupplier,
  must,
  organization,
  person,
  TestClock,
  TRACKS,
} from '../helpers/compute.ts';
import { ADMIN_TOKEN, startTestHub, type TestHub } from '../helpers/hub.ts';

/**
 * `kaihub compute …` against a running hub (docs/compute.md): a pool, a call, an application through
 * review and selection, the allocation's hand-over and usage, a field-named refusal pointing at its
 * flag, and the supplier's statement as a file on standard output.
 */
describe('kaihub compute', () => {
  const clock = new TestClock(Date.parse('2026-03-02T10:00:00+09:00'));
  let t: TestHub;
  let env: Record<string, string>;
  const kaihub = async (...args: string[]) => {
    const r = await runAdminInProcess(['compute', ...args], env);
    assert.equal(r.code, 0, `kaihub compute ${args.join(' ')}: ${r.stderr}`);
    return r;
  };
  const json = async (...args: string[]) => JSON.parse((await kaihub(...args, '--json')).stdout);

  before(async () => {
    t = await startTestHub({ KAIHUB_COMPUTE_RECONCILE_MS: '0' }, { hub: { compute: { clock: clock.now } } });
    env = { KAIHUB_URL: t.url, KAIHUB_TOKEN: ADMIN_TOKEN };
  });
  after(() => t.close());

  test('pools, calls, applications, selection, allocations and statements from the command line', async () => {
    const supplierId = await computeSupplier(t);
    const pool = await json(
      'pools',
      'create',
      '--supplier-id',
      supplierId,
      '--name',
      'A100 대전',
      '--gpu-model',
      'A100',
      '--tf-per-gpu',
      '312',
      '--gpu-count',
      '8',
      '--region',
      'non_capital',
      '--price-per-gpu-hour-krw',
      '2000',
    );
    assert.equal(pool.provisioner, 'manual');
    assert.match((await kaihub('pools', 'list')).stdout, /A100 대전 .* non_capital/);

    const body = JSON.stringify({
      tracks: TRACKS,
      reviewCriteria: CRITERIA,
      bonuses: { nonCapitalRegion: 5 },
    });
    const c = await json(
      'calls',
      'create',
      '--name',
      'CLI 공모',
      '--starts-on',
      '2026-03-01',
      '--ends-on',
      '2026-06-30',
      '--pool-ids',
      pool.id,
      '--eligible-classes',
      'sme,research',
      '--max-grant-days',
      '90',
      '--capacity-gpus',
      '8',
      '--data',
      body,
    );
    const evaluator = await person(t, 'evaluator');
    await kaihub('calls', 'update', c.id, '--evaluator-ids', evaluator.userId);

    const org = await organization(t);
    // 320 TF on a 312-TF A100: two GPUs
    const app = await json(
      'applications',
      'create',
      c.id,
      '--organization-id',
      org,
      '--track-id',
      'tf',
      '--pool-id',
      pool.id,
      '--unit',
      'tf',
      '--quantity',
      '320',
      '--starts-on',
      '2026-03-03',
      '--ends-on',
      '2026-04-30',
      '--purpose',
      'fine_tuning',
      '--applicant-region',
      'non_capital',
      '--plan',
      '한국어 의료 모델 미세조정',
    );
    assert.equal(app.gpus, 2);
    const refused = await runAdminInProcess(
      ['compute', 'applications', 'update', app.id, '--quantity', '200'],
      env,
    );
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /quantity \(--quantity\): track tf grants 160 or 320 TF/);
    await kaihub('applications', 'submit', app.id);
    const scored = await runAdminInProcess(
      [
        'compute',
        'applications',
        'score',
        app.id,
        '--data',
        '{"scores": {"impact": 90, "readiness": 80}}',
        '--token',
        evaluator.token,
      ],
      env,
    );
    assert.equal(scored.code, 0, scored.stderr);

    const preview = await kaihub('calls', 'select', c.id, '--dry-run');
    assert.match(preview.stdout, /selected/);
    assert.match(preview.stdout, /dry run/);
    assert.equal((await must(t, 'GET', `/compute/applications/${app.id}`)).status, 'submitted');
    const run = await json('calls', 'select', c.id);
    assert.equal(run.decisions[0].decision, 'selected');
    assert.equal(run.decisions[0].score, 90);

    clock.set('2026-03-03T09:00:00+09:00');
    await kaihub('reconcile');
    const allocationId = run.decisions[0].allocationId;
    assert.match((await kaihub('allocations', 'list', '--pool-id', pool.id)).stdout, /provisioning/);
    await kaihub('allocations', 'handover', allocationId);
    await kaihub('allocations', 'report', allocationId, '--day', '2026-03-03', '--gpu-hours', '12.5');
    const usage = await json('allocations', 'usage', allocationId);
    assert.equal(usage.totals.chargedKrw, '25000');

    await must(t, 'POST', '/settlements', { month: '2026-03' });
    const csv = await runAdminInProcess(
      ['compute', 'statement', '2026-03', supplierId, '--format', 'csv'],
      env,
    );
    assert.equal(csv.code, 0, csv.stderr);
    assert.match(csv.stdout, /A100 대전,A100,/);
    assert.match(csv.stdout, /공급가액 Supply value \(KRW\),25000/);
    const xlsx = await runAdminInProcess(
      ['compute', 'statement', '2026-03', supplierId, '--format', 'xlsx'],
      env,
    );
    assert.equal(xlsx.bytes.subarray(0, 2).toString(), 'PK');

    const help = await runAdminInProcess(['compute', 'nonsense'], env);
    assert.equal(help.code, 1);
    assert.match(help.stderr, /pools \| calls \| applications \| allocations/);
  });
});
