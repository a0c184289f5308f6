import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

const SCHED_OTHER = 0;
const SCHED_IDLE = 5;
const hasChrt = ['/usr/bin/chrt', '/bin/chrt'].some((p) => existsSync(p));

/** Scheduling policy of one thread, from /proc (proc(5): `policy` is field 41 of stat). */
function policyOf(pid: number, thread: number): number {
  const stat = readFileSync(`/proc/${pid}/task/${thread}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[38]);
}

test('a thread that runs in the gaps becomes SCHED_IDLE on Linux, and the other threads of its process do not', {
  skip: process.platform !== 'linux' || !hasChrt ? 'needs Linux and chrt (util-linux)' : false,
}, async () => {
  // a process whose main thread asks for it; its V8 and libuv threads are the others
  const child = spawn(
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
