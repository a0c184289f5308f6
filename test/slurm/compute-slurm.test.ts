import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { voucherShare } from '../../src/billing/ledger.ts';
import { formatKrw } from '../../src/billing/money.ts';
import { dayIndex, dayText, kstDateStart } from '../../src/kst.ts';
import { as, call, computeSupplier, must, organization, person } from '../helpers/compute.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';
import { type SlurmCluster, slurmMissing, startSlurm } from './cluster.ts';

/**
 * GPU allocations pushed into a real single-node Slurm cluster (test/slurm/cluster.ts) by the `slurm`
 * provisioner (docs/compute.md "Slurm"), on the engine KAIHUB_TEST_DATABASE names. Skipped, with the
 * reason, where Slurm is not installed; .ci/run installs it and CI runs this suite.
 */
const missing = slurmMissing();

describe('GPU allocations in a real Slurm cluster', { skip: missing }, () => {
  let slurm: SlurmCluster;
  let t: TestHub;
  let poolId: string;
  let callId: string;
  /** The hub's clock: the wall clock, moved forward for the end of a period. */
  let offsetMs = 0;
  const clock = () => Date.now() + offsetMs;
  const today = dayText(dayIndex(Date.now()));

  before(async () => {
    slurm = await startSlurm();
    t = await startTestHub({ KAIHUB_COMPUTE_RECONCILE_MS: '0' }, { hub: { compute: { clock } } });
    const supplierId = await computeSupplier(t);
    poolId = (
      await must(t, 'POST', '/compute/pools', {
        supplierId,
        name: 'H100 테스트 클러스터',
        gpuModel: 'H100',
        tfPerGpu: 989,
        // more than the node's 8: each test has its own organisation, and its jobs are few and short
        gpuCount: 64,
        region: 'non_capital',
        // 3,600 KRW per GPU-hour: one won per GPU-second
        pricePerGpuHourKrw: '3600',
        provisioner: 'slurm',
        provisionerConfig: { cluster: slurm.name, slurmConf: slurm.slurmConf, timeoutMs: 10_000 },
      })
    ).id;
    callId = (
      await call(t, [poolId], {
        startsOn: today,
        endsOn: dayText(dayIndex(Date.now()) + 60),
        capacityGpus: 64,
        copayPercent: 20,
      })
    ).id;
  });
  after(async () => {
    await t?.close();
    await slurm?.stop();
  });

  /** An organisation granted `gpus` from today (to `endsOn`), through selection and the reconciler. */
  async function grant(
    gpus: number,
    over: { endsOn?: string; gpuHourBudget?: number } = {},
  ): Promise<{ organizationId: string; allocation: any }> {
    const organizationId = await organization(t);
    const a = await must(t, 'POST', `/compute/calls/${callId}/applications`, {
      organizationId,
      trackId: 'small',
      poolId,
      unit: 'gpu',
      quantity: gpus,
      startsOn: today,
      endsOn: over.endsOn ?? dayText(dayIndex(Date.now()) + 30),
      purpose: 'training',
      plan: 'Slurm 테스트',
      applicantRegion: 'capital',
      schedulerUsers: ['root'],
    });
    await must(t, 'POST', `/compute/applications/${a.id}/submit`);
    const selected = await must(t, 'POST', `/compute/applications/${a.id}/select`, {
      reason: '테스트 선정',
      ...(over.gpuHourBudget !== undefined && { gpuHourBudget: over.gpuHourBudget }),
    });
    await must(t, 'POST', '/compute/reconcile', { usage: false, checks: false, drift: false });
    return {
      organizationId,
      allocation: await must(t, 'GET', `/compute/allocations/${selected.allocationId}`),
    };
  }

  /** What slurmctld enforces for an account: `gres/gpu=<limit>` out of assoc_mgr. */
  async function controllerLimit(
    account: string,
  ): Promise<{ gpus: string; gpuMinutes: string; users: string[] }> {
    const text = await slurm.must('scontrol', [
      '-o',
      'show',
      'assoc_mgr',
      `accounts=${account}`,
      'flags=assoc',
    ]);
    const lines = text.split('\n').filter((l) => l.startsWith('ClusterName='));
    const own = lines.find((l) => / UserName= /.test(l)) ?? '';
    const pick = (field: string) => new RegExp(` ${field}=[^ ]*gres/gpu=([^,( ]+)`).exec(own)?.[1] ?? '';
    return {
      gpus: pick('GrpTRES'),
      gpuMinutes: pick('GrpTRESMins'),
      users: lines.flatMap((l) => /UserName=([^( ]+)\(/.exec(l)?.[1] ?? []),
    };
  }

  test('an allocation of 2 GPUs lets a 1-GPU job run and keeps a 4-GPU job pending for the limit', async () => {
    const { allocation } = await grant(2);
    assert.equal(allocation.status, 'active', JSON.stringify(allocation));
    assert.equal((await controllerLimit(allocation.schedulerAccount)).gpus, '2');
    const small = await slurm.submit(allocation.schedulerAccount, 1, 20);
    const big = await slurm.submit(allocation.schedulerAccount, 4, 20);
    assert.match(await slurm.waitFor(small, (s) => s.startsWith('RUNNING')), /^RUNNING/);
    assert.equal(await slurm.waitFor(big, (s) => s.includes('AssocGrpGRES')), 'PENDING AssocGrpGRES');
    const events = await must(t, 'GET', `/compute/allocations/${allocation.id}/events`);
    assert.ok(events.data.some((e: any) => e.kind === 'provisioned'));
    await slurm.run('scancel', [small, big]);
  });

  test('a GPU-hour budget is GrpTRESMins: a job that could pass it waits', async () => {
    const { allocation } = await grant(4, { gpuHourBudget: 1 });
    assert.equal(allocation.status, 'active', JSON.stringify(allocation));
    const limits = await controllerLimit(allocation.schedulerAccount);
    assert.equal(limits.gpus, '4');
    assert.equal(limits.gpuMinutes, '60');
    // 2 GPUs × 60 minutes = 120 GPU-minutes > 60: with `safe`, never started
    const over = await slurm.submit(allocation.schedulerAccount, 2, 20, 60);
    const within = await slurm.submit(allocation.schedulerAccount, 1, 20, 30);
    assert.equal(
      await slurm.waitFor(over, (s) => s.includes('AssocGrpGRESMinutes')),
      'PENDING AssocGrpGRESMinutes',
    );
    assert.match(await slurm.waitFor(within, (s) => s.startsWith('RUNNING')), /^RUNNING/);
    await slurm.run('scancel', [over, within]);
    await slurm.waitFor(within, (s) => s === '');
    // 4 GPUs for 16 s: a whole GPU-minute counted against the budget, as sshare (GrpTRESRaw) says
    const counted = await slurm.submit(allocation.schedulerAccount, 4, 16, 10);
    await slurm.waitFor(counted, (s) => s === '', 30_000);
    let budget: any;
    for (let i = 0; i < 30; i++) {
      budget = (await must(t, 'GET', `/compute/allocations/${allocation.id}/usage`)).schedulerBudget;
      if (budget?.usedGpuHours !== '0') break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(budget.gpuHourBudget, 1);
    assert.equal(budget.limitGpuMinutes, 60);
    assert.ok(Number(budget.usedGpuHours) >= 1 / 60, JSON.stringify(budget));
  });

  test('the GPU-hours the hub bills equal sacct’s', async () => {
    const { organizationId, allocation } = await grant(2);
    const account = allocation.schedulerAccount;
    const jobs = [await slurm.submit(account, 1, 3), await slurm.submit(account, 2, 2)];
    for (const j of jobs) await slurm.waitFor(j, (s) => s === '', 30_000);
    // sacct, read by the test itself: Σ GPUs × elapsed seconds of the account's jobs
    const lines = await slurm.must('sacct', [
      '-a',
      '-X',
      '-n',
      '-P',
      `--accounts=${account}`,
      // the KST day's start as UTC wall-clock time (sacct reads it in TZ=UTC): from 15:00 UTC the KST date is
      // already tomorrow's in UTC, and `${today}T00:00:00` asked for a window after now
      `--starttime=${new Date(kstDateStart(today)).toISOString().slice(0, 19)}`,
      '--format=JobIDRaw,ElapsedRaw,AllocTRES',
    ]);
    let sacctSeconds = 0;
    for (const line of lines.trim().split('\n')) {
      const [, elapsed, tres] = line.split('|');
      const gpus = Number(/gres\/gpu=(\d+)/.exec(tres ?? '')?.[1] ?? 0);
      sacctSeconds += gpus * Number(elapsed);
    }
    assert.ok(sacctSeconds >= 7, `the jobs ran (sacct: ${lines})`);

    const ingest = await must(t, 'POST', `/compute/pools/${poolId}/usage`, {});
    assert.equal(ingest.day, dayText(dayIndex(Date.now())));
    const usage = await must(t, 'GET', `/compute/allocations/${allocation.id}/usage`);
    assert.equal(usage.totals.gpuSeconds, sacctSeconds);
    assert.equal(usage.totals.billedGpuSeconds, sacctSeconds, 'billed = sacct');
    assert.deepEqual(usage.jobs.map((j: any) => j.jobId).sort(), [...jobs].sort());
    // one won per GPU-second; the programme pays 80 %, the organisation 20 %
    assert.equal(usage.totals.chargedKrw, String(sacctSeconds));
    const funds = await must(t, 'GET', `/organizations/${organizationId}/funds`);
    const cost = BigInt(sacctSeconds) * 1_000_000n;
    assert.equal(funds.walletKrw, formatKrw(-(cost - voucherShare(cost, 2000))));
    // read again: nothing new to charge
    await must(t, 'POST', `/compute/pools/${poolId}/usage`, {});
    assert.equal(
      (await must(t, 'GET', `/compute/allocations/${allocation.id}/usage`)).totals.chargedKrw,
      String(sacctSeconds),
    );
  });

  test('reclaim and the end of the period stop new jobs', async () => {
    // reclaim: the running job is stopped, a new one waits on a limit of zero
    const reclaimed = await grant(2);
    const running = await slurm.submit(reclaimed.allocation.schedulerAccount, 1, 60);
    await slurm.waitFor(running, (s) => s.startsWith('RUNNING'));
    const r = await must(t, 'POST', `/compute/allocations/${reclaimed.allocation.id}/reclaim`, {
      reason: '목적 외 사용 / used off-purpose',
    });
    assert.equal(r.status, 'reclaimed', JSON.stringify(r));
    assert.equal((await controllerLimit(reclaimed.allocation.schedulerAccount)).gpus, '0');
    await slurm.waitFor(running, (s) => s === '');
    const after = await slurm.submit(reclaimed.allocation.schedulerAccount, 1, 10);
    assert.equal(await slurm.waitFor(after, (s) => s.includes('AssocGrpGRES')), 'PENDING AssocGrpGRES');
    await slurm.run('scancel', [after]);

    // the end of the period: the reconciler takes the limit down the moment it passes
    const ending = await grant(1, { endsOn: today });
    assert.equal(ending.allocation.status, 'active');
    offsetMs = Date.parse(`${dayText(dayIndex(Date.now()) + 1)}T00:00:01+09:00`) - Date.now();
    try {
      const report = await must(t, 'POST', '/compute/reconcile', {
        usage: false,
        checks: false,
        drift: false,
      });
      assert.ok(report.ended.some((e: any) => e.allocationId === ending.allocation.id && e.ok));
    } finally {
      offsetMs = 0;
    }
    const ended = await must(t, 'GET', `/compute/allocations/${ending.allocation.id}`);
    assert.equal(ended.status, 'ended');
    assert.equal((await controllerLimit(ending.allocation.schedulerAccount)).gpus, '0');
    const late = await slurm.submit(ending.allocation.schedulerAccount, 1, 10);
    assert.equal(await slurm.waitFor(late, (s) => s.includes('AssocGrpGRES')), 'PENDING AssocGrpGRES');
    await slurm.run('scancel', [late]);
  });

  test('an association changed by hand is detected as drift and repaired', async () => {
    const { allocation } = await grant(2);
    const account = allocation.schedulerAccount;
    await slurm.must('sacctmgr', [
      '-i',
      'modify',
      'account',
      'where',
      `name=${account}`,
      `cluster=${slurm.name}`,
      'set',
      'GrpTRES=gres/gpu=8',
    ]);
    await slurm.must('sacctmgr', [
      '-i',
      'add',
      'user',
      'daemon',
      `account=${account}`,
      `cluster=${slurm.name}`,
    ]);
    let drift: any;
    for (let i = 0; i < 20; i++) {
      drift = (await must(t, 'GET', `/compute/pools/${poolId}/drift`)).data.find(
        (d: any) => d.account === account,
      );
      if (drift?.differences.length === 2) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(drift.differences, ['gpus', 'users']);
    assert.equal(drift.observed.gpus, 8);
    assert.deepEqual(drift.desired, { gpus: 2, gpuMinutes: null, users: ['root'] });
    // a compute supplier's admin sees their pool's drift; nobody else does
    const supplierAdmin = await person(t, 'supplier_admin', {
      supplierId: (await must(t, 'GET', `/compute/pools/${poolId}`)).supplierId,
    });
    assert.equal((await as(t, supplierAdmin.token, 'GET', `/compute/pools/${poolId}/drift`)).status, 200);
    assert.equal(
      (
        await as(
          t,
          (
            await person(t, 'org_admin', { organizationId: allocation.organizationId })
          ).token,
          'GET',
          `/compute/pools/${poolId}/drift`,
        )
      ).status,
      404,
    );

    const repaired = await must(t, 'POST', `/compute/pools/${poolId}/repair`, {});
    assert.ok(repaired.repaired.some((d: any) => d.account === account));
    const now = await controllerLimit(account);
    assert.equal(now.gpus, '2');
    assert.deepEqual(now.users, ['root']);
    assert.equal(
      (await must(t, 'GET', `/compute/pools/${poolId}/drift`)).data.filter((d: any) => d.account === account)
        .length,
      0,
    );
    const audit = await must(
      t,
      'GET',
      `/audit?entityType=compute_pool&action=repair_drift&entityId=${poolId}`,
    );
    assert.ok(audit.data.length >= 1);
  });

  test('with slurmdbd down: a clear error, nothing half-provisioned, nothing active; retried once it is back', async () => {
    await slurm.stopDbd();
    let allocationId: string;
    let account: string;
    try {
      const { allocation } = await grant(1);
      allocationId = allocation.id;
      account = allocation.schedulerAccount;
      assert.equal(allocation.status, 'provisioning');
      assert.match(allocation.provisioning.lastError, /Slurm is unreachable: sacctmgr/);
      assert.equal(allocation.provisioning.attempts, 1);
      assert.ok(allocation.provisioning.nextAttemptAt, 'a retry is planned');
      const now = await t.admin('POST', `/compute/allocations/${allocationId}/provision`);
      assert.equal(now.status, 503);
      assert.equal(now.body.error.code, 'scheduler_unavailable');
      assert.equal(now.body.allocation.status, 'provisioning');
    } finally {
      await slurm.startDbd();
    }
    // nothing of it reached Slurm
    const stored = await slurm.must('sacctmgr', [
      '-nP',
      'show',
      'assoc',
      'where',
      `account=${account!}`,
      'format=account',
    ]);
    assert.equal(stored.trim(), '');
    const retried = await must(t, 'POST', `/compute/allocations/${allocationId!}/provision`);
    assert.equal(retried.status, 'active');
    assert.equal((await controllerLimit(account!)).gpus, '1');
  });
});
