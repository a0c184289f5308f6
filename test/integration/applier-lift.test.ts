import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Sqlite from 'libsql';
import { testEngine } from '../helpers/databases.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';
import { captureLogs } from '../helpers/logs.ts';

const SCHED_OTHER = 0;
const SCHED_IDLE = 5;

/** Policy (field 41 of stat, proc(5)) and nice value (field 19) of one of this process's threads. */
function schedulingOf(thread: number): { policy: number; nice: number } {
  const stat = readFileSync(`/proc/self/task/${thread}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { policy: Number(fields[38]), nice: Number(fields[16]) };
}

function why(): string | false {
  if (testEngine() !== 'sqlite') return 'the journal applier is a thread of its own on SQLite only';
  if (process.platform !== 'linux') return 'scheduling policies per thread: Linux';
  if (!['/usr/bin/chrt', '/bin/chrt'].some((p) => existsSync(p))) return 'needs chrt (util-linux)';
  if (process.getuid?.() !== 0) return 'needs root (CAP_SYS_NICE) to leave SCHED_IDLE';
  return false;
}

describe('the journal applier while the hub waits for its lock', { skip: why() }, () => {
  let t: TestHub;
  let applier: number;

  before(async () => {
    // the hub says (at debug) once it has the applier's thread id and has put it in the gaps: from then
    // on it can lift it. Not /proc's SCHED_IDLE alone, which says nothing of what the hub knows
    const logs = captureLogs('debug');
    // 30 ms on timers, then asleep in SQLite's busy handler until 400 ms
    t = await startTestHub(
      { KAIHUB_DATABASE_LOCK_WAIT_MS: '400' },
      { logger: logs.logger, hub: { sqliteAsyncWaitMs: 30 } },
    );
    const liftable = /journal applier thread (\d+) is SCHED_IDLE/;
    const deadline = performance.now() + 5_000;
    let found = liftable.exec(logs.text());
    while (found === null && performance.now() < deadline) {
      await sleep(20);
      found = liftable.exec(logs.text());
    }
    assert.ok(found, 'the hub put the applier in the gaps within 5 s');
    applier = Number(found[1]);
  });
  after(async () => {
    await t?.close();
  });

  test('is lifted to SCHED_OTHER at nice 0 when a hub write has waited past the timers, and lowered again after', async () => {
    assert.deepEqual(schedulingOf(applier), { policy: SCHED_IDLE, nice: 19 }, 'in the gaps at first');
    const org = await t.admin('POST', '/organizations', { name: '우선순위기업', class: 'sme' });
    assert.equal(org.status, 201);
    assert.deepEqual(
      schedulingOf(applier),
      { policy: SCHED_IDLE, nice: 19 },
      'a write that had the lock lifts nothing',
    );

    // the lock held from outside for longer than the hub waits: the hub's thread sleeps for it (and
    // this test with it, in the same thread), so what the wait did is read as soon as it answers
    const holder = new Sqlite(t.database.location);
    let answered: number;
    try {
      holder.exec('BEGIN IMMEDIATE');
      const refused = await t.admin('POST', `/organizations/${org.body.id}/deposits`, { amountKrw: '10' });
      answered = performance.now();
      assert.equal(refused.status, 503);
      holder.exec('ROLLBACK');
    } finally {
      holder.close();
    }
    const during = schedulingOf(applier);
    assert.deepEqual(during, { policy: SCHED_OTHER, nice: 0 }, 'lifted while the hub waited');

    // a second of no waiting, and it is back in the gaps (bounded: 3 s)
    let now = schedulingOf(applier);
    while (now.policy !== SCHED_IDLE && performance.now() - answered < 3_000) {
      await sleep(20);
      now = schedulingOf(applier);
    }
    const lowered = performance.now() - answered;
    assert.deepEqual(now, { policy: SCHED_IDLE, nice: 19 }, 'lowered again');
    assert.ok(lowered >= 800, `only after a quiet while (${lowered.toFixed(0)} ms)`);

    const deposit = await t.admin('POST', `/organizations/${org.body.id}/deposits`, { amountKrw: '10' });
    assert.equal(deposit.status, 201);
  });
});
