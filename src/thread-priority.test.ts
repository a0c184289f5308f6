import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';
import { liftThread } from './thread-priority.ts';

const SCHED_OTHER = 0;
const SCHED_IDLE = 5;
const hasChrt = ['/usr/bin/chrt', '/bin/chrt'].some((p) => existsSync(p));

/** Fields of one thread's stat from the third on (proc(5)), past the command name, which may hold spaces. */
function statOf(pid: number, thread: number): string[] {
  const stat = readFileSync(`/proc/${pid}/task/${thread}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** Scheduling policy of one thread (`policy`, field 41). */
const policyOf = (pid: number, thread: number) => Number(statOf(pid, thread)[38]);
/** Scheduling policy and nice value (field 19) of one thread. */
const schedulingOf = (pid: number, thread: number) => {
  const fields = statOf(pid, thread);
  return { policy: Number(fields[38]), nice: Number(fields[16]) };
};

/** Polls `read` every 10 ms until it equals `want`, for `ms` at most; the last value read. */
async function until<T>(read: () => T, want: T, ms: number): Promise<T> {
  const deadline = performance.now() + ms;
  let value = read();
  while (!isDeepStrictEqual(value, want) && performance.now() < deadline) {
    await sleep(10);
    value = read();
  }
  return value;
}

/** A process whose main thread runs in the gaps, as the journal applier's thread does. */
function processInTheGaps() {
  return spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      `import { runInTheGaps } from ${JSON.stringify(new URL('./thread-priority.ts', import.meta.url).href)};
         runInTheGaps();
         setTimeout(() => {}, 20_000);`,
    ],
    { stdio: 'ignore' },
  );
}

test('a thread that runs in the gaps becomes SCHED_IDLE on Linux, and the other threads of its process do not', {
  skip: process.platform !== 'linux' || !hasChrt ? 'needs Linux and chrt (util-linux)' : false,
}, async () => {
  // a process whose main thread asks for it; its V8 and libuv threads are the others
  const child = processInTheGaps();
  try {
    const pid = child.pid!;
    let main = SCHED_OTHER;
    for (let i = 0; i < 250 && main !== SCHED_IDLE; i++) {
      await sleep(20);
      main = policyOf(pid, pid);
    }
    assert.equal(main, SCHED_IDLE, 'the thread that asked is SCHED_IDLE');
    const others = readdirSync(`/proc/${pid}/task`)
      .map(Number)
      .filter((t) => t !== pid);
    assert.ok(others.length > 0);
    for (const t of others) assert.equal(policyOf(pid, t), SCHED_OTHER, `thread ${t} is untouched`);
  } finally {
    child.kill();
  }
});

const IDLE_19 = { policy: SCHED_IDLE, nice: 19 };
const OTHER_0 = { policy: SCHED_OTHER, nice: 0 };

test('a thread lifted while someone waits for it runs SCHED_OTHER at nice 0, and in the gaps again once no one has waited for a while', {
  skip:
    process.platform !== 'linux' || !hasChrt
      ? 'needs Linux and chrt (util-linux)'
      : process.getuid?.() !== 0
        ? 'needs root (CAP_SYS_NICE) to leave SCHED_IDLE'
        : false,
}, async () => {
  const child = processInTheGaps();
  const pid = child.pid!;
  const lift = liftThread(pid, { quietMs: 300 });
  try {
    assert.deepEqual(await until(() => schedulingOf(pid, pid), IDLE_19, 5_000), IDLE_19, 'in the gaps');
    lift.waiting(true);
    assert.deepEqual(await until(() => schedulingOf(pid, pid), OTHER_0, 2_000), OTHER_0, 'lifted');
    // waits that come and go while it is lifted change nothing: no process started for each
    const changes = lift.changes;
    for (let i = 0; i < 100; i++) {
      lift.waiting(false);
      lift.waiting(true);
    }
    lift.waiting(false);
    assert.equal(lift.changes, changes);
    await sleep(150);
    assert.deepEqual(schedulingOf(pid, pid), OTHER_0, 'still lifted within quietMs of the last wait');
    assert.deepEqual(await until(() => schedulingOf(pid, pid), IDLE_19, 2_000), IDLE_19, 'lowered again');
    assert.equal(lift.changes, changes + 1, 'one change up, one down');
  } finally {
    lift.close();
    child.kill();
  }
});

test('a thread that waits are still counted for stays lifted past quietMs', {
  skip:
    process.platform !== 'linux' || !hasChrt
      ? 'needs Linux and chrt (util-linux)'
      : process.getuid?.() !== 0
        ? 'needs root (CAP_SYS_NICE) to leave SCHED_IDLE'
        : false,
}, async () => {
  const child = processInTheGaps();
  const pid = child.pid!;
  let waiters = 1;
  const lift = liftThread(pid, { quietMs: 100, stillWaited: () => waiters > 0 });
  try {
    assert.deepEqual(await until(() => schedulingOf(pid, pid), IDLE_19, 5_000), IDLE_19);
    lift.waiting(true);
    lift.waiting(false);
    assert.deepEqual(await until(() => schedulingOf(pid, pid), OTHER_0, 2_000), OTHER_0);
    await sleep(400);
    assert.deepEqual(schedulingOf(pid, pid), OTHER_0, 'a transaction still waits on timers');
    waiters = 0;
    assert.deepEqual(await until(() => schedulingOf(pid, pid), IDLE_19, 2_000), IDLE_19);
  } finally {
    lift.close();
    child.kill();
  }
});

test('without CAP_SYS_NICE a lift leaves the thread in the gaps, says so once and starts no chrt', {
  skip:
    process.platform !== 'linux' || !hasChrt
      ? 'needs Linux and chrt (util-linux)'
      : process.getuid?.() !== 0
        ? 'needs root, to start a process as an unprivileged user'
        : false,
}, async () => {
  // the lift as a hub without the capability would do it: on its own thread, as user nobody
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      `import { readFileSync } from 'node:fs';
       import { liftThread, runInTheGaps } from ${JSON.stringify(new URL('./thread-priority.ts', import.meta.url).href)};
       const scheduling = () => {
         const stat = readFileSync('/proc/thread-self/stat', 'utf8');
         const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
         return { policy: Number(f[38]), nice: Number(f[16]) };
       };
       const thread = await runInTheGaps();
       const before = scheduling();
       const refusals = [];
       const lift = liftThread(thread, { quietMs: 50, onRefused: (reason) => refusals.push(reason) });
       for (let i = 0; i < 3; i++) { lift.waiting(true); lift.waiting(false); }
       await new Promise((resolve) => setTimeout(resolve, 300));
       process.stdout.write(JSON.stringify({ before, after: scheduling(), refusals, changes: lift.changes }));`,
    ],
    { uid: 65534, gid: 65534, stdio: ['ignore', 'pipe', 'inherit'], timeout: 20_000 },
  );
  let out = '';
  child.stdout!.on('data', (chunk) => {
    out += chunk;
  });
  const [code] = await once(child, 'exit');
  assert.equal(code, 0, out);
  const seen = JSON.parse(out);
  assert.deepEqual(seen.before, IDLE_19, 'an unprivileged thread may go into the gaps');
  assert.deepEqual(seen.after, IDLE_19, 'and is left there');
  assert.equal(seen.refusals.length, 1, `told once: ${seen.refusals}`);
  assert.equal(seen.changes, 0, 'no chrt started');
});
