import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';
import { type ExecChrt, liftThread } from './thread-priority.ts';

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
    assert.equal(
      await until(() => policyOf(pid, pid), SCHED_IDLE, 5_000),
      SCHED_IDLE,
      'the thread that asked is SCHED_IDLE',
    );
    const others = readdirSync(`/proc/${pid}/task`)
      .map(Number)
      .filter((t) => t !== pid);
    assert.ok(others.length > 0);
    for (const t of others) assert.equal(policyOf(pid, t), SCHED_OTHER, `thread ${t} is untouched`);
  } finally {
    child.kill();
  }
});

/** Why a real thread cannot be lifted here, or false. */
const cannotLift =
  process.platform !== 'linux' || !hasChrt
    ? 'needs Linux and chrt (util-linux)'
    : process.getuid?.() !== 0
      ? 'needs root (CAP_SYS_NICE) to leave SCHED_IDLE'
      : false;

const IDLE_19 = { policy: SCHED_IDLE, nice: 19 };
const OTHER_0 = { policy: SCHED_OTHER, nice: 0 };

test('a thread lifted while someone waits for it runs SCHED_OTHER at nice 0, and in the gaps again once no one has waited for a while', {
  skip: cannotLift,
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
  skip: cannotLift,
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

const SETPRIV = '/usr/bin/setpriv';

test('without CAP_SYS_NICE a lift leaves the thread in the gaps, says so once and starts no chrt', {
  skip:
    process.platform !== 'linux' || !hasChrt
      ? 'needs Linux and chrt (util-linux)'
      : !existsSync(SETPRIV)
        ? `needs ${SETPRIV} (util-linux) to drop CAP_SYS_NICE`
        : process.getuid?.() !== 0
          ? 'needs root, to drop CAP_SYS_NICE from a process that has it'
          : false,
}, async () => {
  // the lift as a hub without the capability would do it: on its own thread, still root (the checkout
  // need not be readable by anyone else) but without CAP_SYS_NICE, in any set it could regain it from
  const child = spawn(
    SETPRIV,
    [
      '--inh-caps=-sys_nice',
      '--bounding-set=-sys_nice',
      '--',
      process.execPath,
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      `import { execFileSync } from 'node:child_process';
       import { readFileSync } from 'node:fs';
       import { liftThread, runInTheGaps } from ${JSON.stringify(new URL('./thread-priority.ts', import.meta.url).href)};
       const scheduling = () => {
         const stat = readFileSync('/proc/thread-self/stat', 'utf8');
         const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
         return { policy: Number(f[38]), nice: Number(f[16]) };
       };
       const capEff = BigInt('0x' + /CapEff:\\s*([0-9a-f]+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]);
       const thread = await runInTheGaps();
       const before = scheduling();
       let chrtOther;
       try {
         execFileSync(${JSON.stringify(['/usr/bin/chrt', '/bin/chrt'].find((p) => existsSync(p)))}, ['--other', '--pid', '0', String(thread)], { stdio: 'pipe', env: { LC_ALL: 'C' } });
         chrtOther = 'allowed';
       } catch (error) {
         chrtOther = String(error.stderr);
       }
       const refusals = [];
       const lift = liftThread(thread, { quietMs: 50, onRefused: (reason) => refusals.push(reason) });
       for (let i = 0; i < 3; i++) { lift.waiting(true); lift.waiting(false); }
       await new Promise((resolve) => setTimeout(resolve, 300));
       process.stdout.write(JSON.stringify({
         sysNice: (capEff >> 23n) & 1n ? 'effective' : 'dropped',
         chrtOther, before, after: scheduling(), refusals, changes: lift.changes,
       }));`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'], timeout: 20_000 },
  );
  let out = '';
  child.stdout!.on('data', (chunk) => {
    out += chunk;
  });
  const [code] = await once(child, 'exit');
  assert.equal(code, 0, out);
  const seen = JSON.parse(out);
  assert.equal(seen.sysNice, 'dropped', 'the child has no CAP_SYS_NICE');
  assert.match(seen.chrtOther, /Operation not permitted/, 'and really cannot leave SCHED_IDLE');
  assert.deepEqual(seen.before, IDLE_19, 'an unprivileged thread may go into the gaps');
  assert.deepEqual(seen.after, IDLE_19, 'and is left there');
  assert.equal(seen.refusals.length, 1, `told once: ${seen.refusals}`);
  assert.equal(seen.changes, 0, 'no chrt started');
});

/** A `chrt` that ends when the test says so; `renice` records the nice values set. */
function fakeChrt(throwing: (call: number) => Error | undefined = () => undefined) {
  const calls: { flag: string; end(error?: object | null, stderr?: string): void }[] = [];
  const exec: ExecChrt = (_file, args, _options, callback) => {
    const error = throwing(calls.length);
    calls.push({ flag: args[0]!, end: (e = null, stderr = '') => callback(e as never, '', stderr) });
    if (error) throw error;
  };
  const nices: number[] = [];
  const renice = (_thread: number, nice: number) => {
    nices.push(nice);
  };
  return { calls, exec, renice, nices, flags: () => calls.map((c) => c.flag) };
}

/** Until `read()` is true, for 2 s at most. */
async function untilTrue(read: () => boolean): Promise<boolean> {
  return until(read, true, 2_000);
}

const THREAD = 424_242;

for (const lastToEnd of ['the lowering', 'the lift']) {
  test(`a lift wanted while a lowering runs starts at once, and the lift wins (${lastToEnd} ending last)`, async () => {
    const fake = fakeChrt();
    const lift = liftThread(THREAD, {
      quietMs: 30,
      chrt: '/usr/bin/chrt',
      exec: fake.exec,
      renice: fake.renice,
    });
    try {
      lift.waiting(true);
      assert.deepEqual(fake.flags(), ['--other']);
      fake.calls[0]!.end();
      lift.waiting(false);
      assert.ok(await untilTrue(() => fake.calls.length === 2), 'lowered after the quiet while');
      assert.deepEqual(fake.flags(), ['--other', '--idle']);
      // the lowering has not ended when the next wait begins: its callback could not run while the
      // waiter's thread sleeps, so the lift may not wait for it
      lift.waiting(true);
      assert.deepEqual(fake.flags(), ['--other', '--idle', '--other'], 'the lift started at once');
      assert.deepEqual(fake.nices, [0, 19, 0], 'its nice value at once too');
      const [lowering, lifting] = [fake.calls[1]!, fake.calls[2]!];
      if (lastToEnd === 'the lowering') {
        lifting.end();
        lowering.end();
      } else {
        lowering.end();
        lifting.end();
      }
      // which of the two the kernel saw last is not known: the wanted one is set once more
      assert.deepEqual(fake.flags(), ['--other', '--idle', '--other', '--other']);
      fake.calls[3]!.end();
      lift.waiting(false);
      assert.equal(fake.calls.length, 4, 'nothing more while lifted');
    } finally {
      lift.close();
    }
  });
}

test('a thread put in the gaps by the lift itself: --idle first, and a wait meanwhile lifts it at once', () => {
  const fake = fakeChrt();
  const applied: boolean[] = [];
  const lift = liftThread(THREAD, {
    inTheGaps: true,
    chrt: '/usr/bin/chrt',
    exec: fake.exec,
    renice: fake.renice,
    onApplied: (lifted) => applied.push(lifted),
  });
  try {
    assert.deepEqual(fake.flags(), ['--idle']);
    lift.waiting(true);
    assert.deepEqual(fake.flags(), ['--idle', '--other']);
    fake.calls[0]!.end();
    fake.calls[1]!.end();
    assert.deepEqual(fake.flags(), ['--idle', '--other', '--other']);
    fake.calls[2]!.end();
    assert.deepEqual(applied, [true]);
  } finally {
    lift.close();
  }
});

test('a spawn that throws is a failed attempt: the waiter hears nothing of it, and the next wait tries again', () => {
  const enomem = Object.assign(new Error('spawn ENOMEM'), { code: 'ENOMEM' });
  const fake = fakeChrt((call) => (call === 0 ? enomem : undefined));
  const refusals: string[] = [];
  const failures: string[] = [];
  const lift = liftThread(THREAD, {
    chrt: '/usr/bin/chrt',
    exec: fake.exec,
    renice: fake.renice,
    onRefused: (reason) => refusals.push(reason),
    onFailed: (reason) => failures.push(reason),
  });
  try {
    assert.doesNotThrow(() => lift.waiting(true));
    lift.waiting(false);
    assert.deepEqual(refusals, []);
    assert.equal(lift.failures, 1, String(failures));
    assert.match(failures[0]!, /ENOMEM/);
    lift.waiting(true);
    assert.deepEqual(fake.flags(), ['--other', '--other'], 'tried again: nothing was left in flight');
    fake.calls[1]!.end();
    lift.waiting(false);
  } finally {
    lift.close();
  }
});

test('a failure that keeps happening is heard once every failureReportMs, with how many failed since', async () => {
  const fake = fakeChrt();
  const heard: { reason: string; failures: number }[] = [];
  const lift = liftThread(THREAD, {
    chrt: '/usr/bin/chrt',
    exec: fake.exec,
    renice: fake.renice,
    failureReportMs: 150,
    onFailed: (reason, failures) => heard.push({ reason, failures }),
  });
  const failOnce = () => {
    lift.waiting(true);
    fake.calls
      .at(-1)!
      .end(
        Object.assign(new Error('Command failed'), { code: 1 }),
        "chrt: failed to set pid 424242's policy: Resource temporarily unavailable\n",
      );
    lift.waiting(false);
  };
  try {
    for (let i = 0; i < 4; i++) failOnce();
    assert.equal(lift.failures, 4);
    assert.equal(fake.calls.length, 4, 'each wait still tried again');
    assert.deepEqual(
      heard.map((h) => h.failures),
      [1],
      'the first is heard at once, the next three not within the window',
    );
    assert.match(heard[0]!.reason, /Resource temporarily unavailable/);
    await sleep(200);
    failOnce();
    assert.deepEqual(
      heard.map((h) => h.failures),
      [1, 4],
      'after the window: this one and the three not heard',
    );
  } finally {
    lift.close();
  }
});

test('only a refusal for want of CAP_SYS_NICE stops the lifting; a timeout, EAGAIN or ESRCH is tried again at the next wait', () => {
  const fake = fakeChrt();
  const refusals: { reason: string; lifting: boolean }[] = [];
  const lift = liftThread(THREAD, {
    chrt: '/usr/bin/chrt',
    exec: fake.exec,
    renice: fake.renice,
    onRefused: (reason, lifting) => refusals.push({ reason, lifting }),
  });
  try {
    // chrt killed at its timeout, then chrt unable to fork
    lift.waiting(true);
    fake.calls[0]!.end(Object.assign(new Error('Command failed'), { killed: true, signal: 'SIGTERM' }));
    lift.waiting(false);
    lift.waiting(true);
    fake.calls[1]!.end(
      Object.assign(new Error('Command failed'), { code: 1 }),
      "chrt: failed to set pid 424242's policy: Resource temporarily unavailable\n",
    );
    lift.waiting(false);
    // the thread is gone: ESRCH from chrt
    lift.waiting(true);
    fake.calls[2]!.end(
      Object.assign(new Error('Command failed'), { code: 1 }),
      "chrt: failed to set pid 424242's policy: No such process\n",
    );
    lift.waiting(false);
    assert.equal(lift.failures, 3);
    assert.equal(refusals.length, 0);
    // no permission: once, and never again
    lift.waiting(true);
    assert.equal(fake.calls.length, 4, 'each wait tried again');
    fake.calls[3]!.end(
      Object.assign(new Error('Command failed'), { code: 1 }),
      "chrt: failed to set pid 424242's policy: Operation not permitted\n",
    );
    lift.waiting(false);
    lift.waiting(true);
    assert.equal(fake.calls.length, 4, 'no chrt after a refusal');
    assert.equal(refusals.length, 1);
    assert.equal(refusals[0]!.lifting, true);
    assert.match(refusals[0]!.reason, /Operation not permitted/);
  } finally {
    lift.close();
  }

  // setpriority: ESRCH is tried again, EACCES refuses
  const fake2 = fakeChrt();
  const refused2: string[] = [];
  const failed2: string[] = [];
  let code = 'ESRCH';
  const lift2 = liftThread(THREAD, {
    chrt: '/usr/bin/chrt',
    exec: fake2.exec,
    renice: () => {
      throw Object.assign(new Error('A system error occurred'), { code: 'ERR_SYSTEM_ERROR', info: { code } });
    },
    onRefused: (reason) => refused2.push(reason),
    onFailed: (reason) => failed2.push(reason),
  });
  try {
    lift2.waiting(true);
    lift2.waiting(false);
    assert.deepEqual(refused2, []);
    assert.equal(failed2.length, 1);
    code = 'EACCES';
    lift2.waiting(true);
    lift2.waiting(false);
    lift2.waiting(true);
    assert.equal(refused2.length, 1, 'refused once');
    assert.equal(failed2.length, 1);
    assert.equal(fake2.calls.length, 0);
  } finally {
    lift2.close();
  }
});
