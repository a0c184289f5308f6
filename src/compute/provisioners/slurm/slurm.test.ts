import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SchedulerError } from '../provisioner.ts';
import { type CommandResult, run, type SlurmRunner } from './commands.ts';
import { SlurmProvisioner, slurmAccountName } from './slurm.ts';

/** A runner that records each command and answers from `answer` (default: success, no output). */
function recorder(answer: (command: string, args: readonly string[]) => Partial<CommandResult> = () => ({})) {
  const calls: string[] = [];
  const runner: SlurmRunner = async (command, args) => {
    calls.push(`${command} ${args.join(' ')}`);
    return { code: 0, stdout: '', stderr: '', ...answer(command, args) };
  };
  return { calls, runner };
}

const target = {
  account: 'kh_org_a',
  organizationId: 'org_a',
  gpus: 2,
  gpuMinutes: 600,
  users: ['kim', 'lee'],
  resetUsage: true,
};

test('a new grant: the account is made granting nothing, users added, usage reset, the limit raised last', async () => {
  const { calls, runner } = recorder();
  await new SlurmProvisioner(runner, { cluster: 'c1', cancelJobsAtEnd: true }).apply(target);
  assert.deepEqual(calls, [
    'sacctmgr -nP show assoc where cluster=c1 account=kh_org_a format=account,user,grptres,grptresmins',
    'sacctmgr -i add account kh_org_a cluster=c1 Description=kaihub org_a Organization=kaihub GrpTRES=gres/gpu=0',
    'sacctmgr -i add user kim account=kh_org_a cluster=c1',
    'sacctmgr -i add user lee account=kh_org_a cluster=c1',
    'sacctmgr -i modify account where name=kh_org_a cluster=c1 set RawUsage=0',
    'sacctmgr -i modify account where name=kh_org_a cluster=c1 set GrpTRES=gres/gpu=2 GrpTRESMins=gres/gpu=600',
  ]);
});

test('taking a grant back lowers the limit first; users stay; an account never made is left alone', async () => {
  const existing = 'kh_org_a||gres/gpu=2|gres/gpu=600\nkh_org_a|kim||\n';
  const { calls, runner } = recorder((command, args) =>
    command === 'sacctmgr' && args[1] === 'show' ? { stdout: existing } : {},
  );
  const slurm = new SlurmProvisioner(runner, { cluster: 'c1', cancelJobsAtEnd: true });
  await slurm.apply({ ...target, gpus: 0, gpuMinutes: null, resetUsage: false });
  assert.deepEqual(calls.slice(1), [
    'sacctmgr -i modify account where name=kh_org_a cluster=c1 set GrpTRES=gres/gpu=0 GrpTRESMins=gres/gpu=-1',
  ]);
  await slurm.stopJobs('kh_org_a');
  assert.equal(calls.at(-1), 'scancel --account=kh_org_a --clusters=c1');

  const nothing = recorder();
  await new SlurmProvisioner(nothing.runner, { cluster: 'c1', cancelJobsAtEnd: true }).apply({
    ...target,
    gpus: 0,
  });
  assert.equal(nothing.calls.length, 1, 'only the look');
});

test('users drift: a user added by hand is removed, a missing one added; "already so" answers count as done', async () => {
  const existing = 'kh_org_a||gres/gpu=2|gres/gpu=600\nkh_org_a|kim||\nkh_org_a|intruder||\n';
  const { calls, runner } = recorder((_command, args) => {
    if (args[1] === 'show') return { stdout: existing };
    if (args[1] === 'add') return { code: 1, stdout: ' Nothing new added.\n' };
    return {};
  });
  await new SlurmProvisioner(runner, { cluster: 'c1', cancelJobsAtEnd: true }).apply({
    ...target,
    resetUsage: false,
  });
  assert.deepEqual(calls.slice(1), [
    'sacctmgr -i add user lee account=kh_org_a cluster=c1',
    'sacctmgr -i remove user where name=intruder account=kh_org_a cluster=c1',
    'sacctmgr -i modify account where name=kh_org_a cluster=c1 set GrpTRES=gres/gpu=2 GrpTRESMins=gres/gpu=600',
  ]);
});

test('a cluster that does not answer is "unreachable"; a refusal says what Slurm said', async () => {
  const down: SlurmRunner = async () => ({
    code: 1,
    stdout: '',
    stderr:
      'sacctmgr: error: slurm_persist_conn_open_without_init: failed to open persistent connection to host:127.0.0.1:6819: Connection refused\n',
  });
  await assert.rejects(run(down, 'sacctmgr', ['-nP', 'show', 'assoc']), (e: unknown) => {
    assert.ok(e instanceof SchedulerError);
    assert.equal(e.unavailable, true);
    assert.match(e.message, /Slurm is unreachable: sacctmgr: slurm_persist_conn_open_without_init/);
    return true;
  });
  const refused: SlurmRunner = async () => ({
    code: 1,
    stdout: '',
    stderr: 'sacctmgr: error: Invalid input: GrpTRES\n',
  });
  await assert.rejects(
    run(refused, 'sacctmgr', ['-i', 'modify']),
    /Slurm refused: sacctmgr -i modify: Invalid input: GrpTRES/,
  );
});

test('account names: lowercase letters, digits and _', () => {
  assert.equal(slurmAccountName('kh_', 'org_0mx2ABC-d'), 'kh_org_0mx2abc_d');
});
