import { closeSync, openSync, readdirSync, readSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { openSqlite, stepAsideFor } from '../storage/sqlite.ts';
import { niceInTheGaps } from '../thread-priority.ts';
import type { ApplierReply, ApplierRequest } from './file-journal.ts';
import { applyUsageRecords, lineToRecord, setAsideUsage, type UsageRecord } from './usage-journal.ts';

/**
 * The worker side of the file journal: reads what was appended since last time and inserts it into
 * `usage_events` in large transactions, off the request path. It applies its own hub's files, and
 * the files of processes that are gone (a crash left them); a file is deleted once fully applied and
 * no longer written. Files of other live hubs on the same database are theirs to apply.
 */
// the applier runs in the gaps instead of taking a core from the event loop that answers requests:
// nice 19 here, at once; its SCHED_IDLE is set by the hub, which has its id before the applier does
// anything and lifts it while a hub transaction waits for its lock (decision 0038). One owner orders
// every chrt on the thread: an --idle of its own, run late by a starved thread, could undo a lift.
{
  const thread = niceInTheGaps();
  if (thread !== undefined) report({ type: 'thread', id: thread });
}

const data = workerData as {
  dir: string;
  databasePath: string;
  own: string[];
  current: string;
  applyIntervalMs: number;
  /** The hub connection's transactions waiting for the write lock (storage/sqlite.ts `lockWaiters`). */
  lockWaiters: Int32Array | null;
};
// a worker of its own: waiting on its thread for an admin write's lock stops nothing else
const db = openSqlite(data.databasePath, { asyncWaitMs: 0 });
let own = new Set(data.own);
let current = data.current;
const offsets = new Map<string, number>();
const READ_CHUNK = 4 * 1024 * 1024;
/**
 * Records a transaction. Between transactions the applier steps aside for an admin write waiting on
 * the hub's connection (decision 0032), which so waits for at most one of them (≈ 7–11 ms of CPU)
 * instead of everything that arrived in an interval (≈ 1,000 records under load).
 */
const RECORDS_A_TRANSACTION = 250;
const STEP_ASIDE_MAX_MS = 100;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === 'EPERM';
  }
}

/** A complete line that is not a usage record (a torn or foreign write): set aside, never retried. */
interface UnreadableLine {
  offset: number;
  line: string;
  reason: string;
}

/** Complete lines appended after `from`; a partial last line waits for the rest of its write. */
function readNew(
  path: string,
  from: number,
): { records: UsageRecord[]; unreadable: UnreadableLine[]; next: number; size: number } {
  const size = statSync(path).size;
  const records: UsageRecord[] = [];
  const unreadable: UnreadableLine[] = [];
  let next = from;
  if (size <= from) return { records, unreadable, next, size };
  const fd = openSync(path, 'r');
  try {
    let carry = '';
    let position = from;
    const buffer = Buffer.allocUnsafe(READ_CHUNK);
    while (position < size) {
      const n = readSync(fd, buffer, 0, Math.min(READ_CHUNK, size - position), position);
      if (n === 0) break;
      position += n;
      const text = carry + buffer.toString('utf8', 0, n);
      const lastNewline = text.lastIndexOf('\n');
      if (lastNewline === -1) {
        carry = text;
        continue;
      }
      let lineStart = position - n - Buffer.byteLength(carry);
      for (const line of text.slice(0, lastNewline).split('\n')) {
        if (line) {
          try {
            records.push(lineToRecord(line));
          } catch (error) {
            unreadable.push({ offset: lineStart, line, reason: `unreadable journal line: ${String(error)}` });
          }
        }
        lineStart += Buffer.byteLength(line) + 1;
      }
      carry = text.slice(lastNewline + 1);
      next = position - Buffer.byteLength(carry);
    }
  } finally {
    closeSync(fd);
  }
  return { records, unreadable, next, size };
}

async function applyFile(name: string, finished: boolean): Promise<void> {
  const path = join(data.dir, name);
  const from = offsets.get(name) ?? 0;
  const { records, unreadable, next, size } = readNew(path, from);
  for (const u of unreadable) {
    const requestId = `unreadable:${name}:${u.offset}`;
    await setAsideUsage(db, requestId, `journal ${name}`, u.reason, u.line.slice(0, 100_000));
    report({ type: 'rejected', requestId, reason: u.reason });
  }
  // a record the database refuses is set aside inside; a database failure throws: retried next time
  // from the file's last offset, and what was applied before it is skipped (by request id)
  for (let i = 0; i < records.length; i += RECORDS_A_TRANSACTION) {
    if (data.lockWaiters) stepAsideFor(data.lockWaiters, STEP_ASIDE_MAX_MS);
    const rejected = await applyUsageRecords(
      db,
      records.slice(i, i + RECORDS_A_TRANSACTION),
      `journal ${name}`,
    );
    for (const r of rejected) report({ type: 'rejected', requestId: r.requestId, reason: r.reason });
  }
  offsets.set(name, next);
  // a trailing partial line of a finished file is a write that never completed: no client saw it
  if (finished && (next === size || !own.has(name))) {
    unlinkSync(path);
    offsets.delete(name);
    own.delete(name);
  }
}

async function applyAll(closing: boolean): Promise<void> {
  const names = readdirSync(data.dir).filter((n) => /^usage-\d+-[0-9a-f]+\.jsonl$/.test(n));
  for (const name of names) {
    const mine = own.has(name);
    const pid = Number(name.split('-')[1]);
    if (!mine && processAlive(pid)) continue;
    await applyFile(name, !mine || name !== current || closing);
  }
}

function report(reply: ApplierReply): void {
  parentPort!.postMessage(reply);
}

let running: Promise<boolean> = Promise.resolve(true);
/** One apply after the ones before it; false when it failed (reported, and retried at the next one). */
function schedule(closing = false): Promise<boolean> {
  running = running.then(() =>
    applyAll(closing).then(
      () => true,
      (error: unknown) => {
        const reply: ApplierReply = {
          type: 'error',
          message: `usage journal apply failed: ${String(error)}`,
        };
        parentPort!.postMessage(reply);
        return false;
      },
    ),
  );
  return running;
}

const timer = setInterval(() => void schedule(), data.applyIntervalMs);
void schedule();

parentPort!.on('message', async (m: ApplierRequest) => {
  if (m.type === 'files') {
    own = new Set(m.own);
    current = m.current;
    return;
  }
  const ok = await schedule(m.type === 'close');
  if (m.type === 'close') {
    clearInterval(timer);
    await db.close();
  }
  const reply: ApplierReply = { type: 'applied', id: m.id, ok };
  parentPort!.postMessage(reply);
});
