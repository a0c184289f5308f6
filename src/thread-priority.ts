import { execFile } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';

/**
 * Lets the calling thread run only in the gaps the others leave. Linux keeps nice values and
 * scheduling policies per thread, so this lowers a worker thread and nothing else.
 *
 * Nice 19 first (every platform that has it), then, on Linux, SCHED_IDLE through `chrt`, which
 * Node cannot set itself: a nice-19 thread that has just been given a core keeps it for its slice
 * even when the event loop wakes up on that core, and on 2 cores the journal applier then delayed
 * the answers (docs/benchmarks.md); a SCHED_IDLE thread is preempted at once. Without `chrt` (or
 * permission), nice 19 stays.
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
  execFile('chrt', ['--idle', '--pid', '0', thread], { timeout: 5_000 }, () => {
    // no chrt here, or not permitted: nice 19 it is
  });
}
