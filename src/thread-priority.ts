import { execFile } from 'node:child_process';
import { existsSync, readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';

const CHRT_PATHS = ['/usr/bin/chrt', '/bin/chrt'];

/**
 * Lets the calling thread run only in the gaps the others leave. Linux keeps nice values and
 * scheduling policies per thread, so this lowers a worker thread and nothing else.
 *
 * Nice 19 first (every platform that has it), then, on Linux, SCHED_IDLE through `chrt`, which
 * Node cannot set itself: a nice-19 thread that has just been given a core keeps it for its slice
 * even when the event loop wakes up on that core, and on 2 cores the journal applier then took
 * throughput from the event loop (docs/benchmarks.md); a SCHED_IDLE thread is preempted at once. Without `chrt` (or
 * permission), nice 19 stays.
 *
 * Threads a thread creates inherit its policy: call this before the thread starts anything that makes
 * threads shared with the rest of the process (the applier's libsql and libuv pool are made by the main
 * thread first).
 */
export function runInTheGaps(): void {
  try {
    setPriority(19);
  } catch {
    // not permitted or not supported: the thread runs at normal priority
  }
  if (process.platform !== 'linux') return;
  let thread: string;
  try {
    thread = readlinkSync('/proc/thread-self').split('/').at(-1)!;
  } catch {
    return;
  }
  // by absolute path: under `npm start` PATH begins with node_modules/.bin, where a package could put a `chrt`
  const chrt = CHRT_PATHS.find((path) => existsSync(path));
  if (chrt === undefined) return;
  execFile(chrt, ['--idle', '--pid', '0', thread], { timeout: 5_000 }, () => {
    // not permitted: nice 19 it is
  });
}
