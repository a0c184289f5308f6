import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  gpuInUse,
  gpuOf,
  parseAssocMgr,
  parseSacctJobs,
  parseSacctmgrAssociations,
  parseSshare,
} from './parse.ts';

// Recorded from Slurm 22.05 (Debian bookworm's slurm-wlm) on a single node with 8 fake H100s.
const fixture = (name: string) => readFileSync(new URL(`fixtures/${name}`, import.meta.url), 'utf8');

test('TRES lists: the gres/gpu limit, N = none, and what is in use', () => {
  assert.equal(gpuOf('billing=1,cpu=1,gres/gpu:h100=1,gres/gpu=1,node=1'), 1);
  assert.equal(gpuOf('gres/gpu=0'), 0);
  assert.equal(gpuOf('cpu=N(0),gres/gpu=N(0),gres/gpu:h100=N(0)'), null);
  assert.equal(gpuOf('cpu=4'), null);
  assert.equal(gpuOf('cpu=N(0),gres/gpu=2(1),gres/gpu:h100=N(0)'), 2);
  assert.equal(gpuInUse('cpu=N(0),gres/gpu=2(1),gres/gpu:h100=N(0)'), 1);
  assert.equal(gpuInUse('gres/gpu:h100=N(3)'), 0, 'gres/gpu:h100 is not gres/gpu');
});

test('sacctmgr show assoc: limits on the account row, users on theirs', () => {
  const accounts = parseSacctmgrAssociations(fixture('sacctmgr-show-assoc.txt'));
  assert.deepEqual(accounts.get('kh_x'), {
    account: 'kh_x',
    exists: true,
    gpus: 2,
    gpuMinutes: 600,
    users: ['root'],
  });
  assert.deepEqual(accounts.get('org_a'), {
    account: 'org_a',
    exists: true,
    gpus: 2,
    gpuMinutes: null,
    users: ['root'],
  });
});

test('scontrol show assoc_mgr: what the controller enforces, and what is used', () => {
  const accounts = parseAssocMgr(fixture('scontrol-assoc-mgr.txt'));
  const x = accounts.get('kh_x')!;
  assert.equal(x.gpus, 2);
  assert.equal(x.gpuMinutes, 600);
  assert.deepEqual(x.users, ['root']);
  assert.equal(x.gpusInUse, 0);
  assert.equal(accounts.get('org_a')!.gpuMinutes, null);
});

test('sacct -P -T: GPU-seconds within the window; jobs without GPU time are left out', () => {
  const jobs = parseSacctJobs(fixture('sacct-window.txt'));
  assert.deepEqual(jobs, [
    {
      jobId: '1',
      account: 'org_a',
      user: 'root',
      gpus: 1,
      gpuSeconds: 10,
      state: 'COMPLETED',
      startMs: Date.parse('2026-11-30T05:49:40Z'),
    },
  ]);
});

test('sshare: the budget and the GPU-minutes used against it, per account', () => {
  assert.deepEqual(parseSshare(fixture('sshare-grptresraw.txt')).get('kh_t'), {
    account: 'kh_t',
    gpuMinutesLimit: 600,
    gpuMinutesUsed: 2,
  });
});
