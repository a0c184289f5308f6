import { execFile } from 'node:child_process';
import { existsSync, readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';

const CHRT_PATHS = ['/usr/bin/chrt', '/bin/chrt'];
/** How long a `chrt` may take; it only makes one system call. */
const CHRT_TIMEOUT_MS = 5_000;

// by absolute path: under `npm start` PATH begins with node_modules/.bin, where a package could put a `chrt`
function chrtPath(): string | undefined {
  return process.platform === 'linux' ? CHRT_PATHS.find((path) => existsSync(path)) : undefined;
}

/** The calling thread's id (Linux: the name of `/proc/thread-self`), or undefined where there is none. */
export function currentThreadId(): number | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    return Number(readlinkSync('/proc/thread-self').split('/').at(-1));
  } catch {
    return undefined;
  }
}

/** `setpriority(2)` on one thread (Linux keeps nice values per thread); false when not permitted. */
function setNice(thread: number, nice: number): boolean {
  try {
    setPriority(thread, nice);
    return true;
  } catch {
    return false;
  }
}

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
 *
 * Resolves, once `chrt` has done what it could, with the thread's id (Linux), for `liftThread`: a
 * lift that came before it would be undone by it.
 */
export function runInTheGaps(): Promise<number | undefined> {
  try {
    setPriority(19);
  } catch {
    // not permitted or not supported: the thread runs at normal priority
  }
  const thread = currentThreadId();
  const chrt = chrtPath();
  if (thread === undefined || chrt === undefined) return Promise.resolve(thread);
  return new Promise((resolve) => {
    execFile(chrt, ['--idle', '--pid', '0', String(thread)], { timeout: CHRT_TIMEOUT_MS }, () => {
      // not permitted: nice 19 it is
      resolve(thread);
    });
  });
}

export interface ThreadLift {
  /**
   * `true`: someone has begun to wait for the thread (it holds what they need): it is lifted, if it
   * is not already. `false`: that wait has ended.
   */
  waiting(begun: boolean): void;
  /** How many times the thread's policy was changed (tests: no process is started per wait). */
  readonly changes: number;
  /** Stops lowering it later; the thread is left as it is (it is about to end). */
  close(): void;
}

/**
 * Priority inheritance, by hand, for a thread that runs in the gaps (`runInTheGaps`): while another
 * thread waits for something it holds (the journal applier inside a transaction, holding SQLite's
 * write lock), a SCHED_IDLE holder gets a core only when every other thread leaves one — under a
 * load from elsewhere, maybe not for seconds — and the waiter waits that long. Lifted, it runs
 * SCHED_OTHER at nice 0, a fair share against that load, and lets go.
 *
 * It is lowered again (SCHED_IDLE, nice 19) once no one has waited for `quietMs`, and `stillWaited`
 * (those who wait without calling `waiting`, such as transactions still on timers) says no one does:
 * under repeated contention it stays lifted instead of starting `chrt` for each wait. At most one
 * `chrt` runs at a time; a change wanted meanwhile follows it.
 *
 * Leaving SCHED_IDLE and lowering a nice value need CAP_SYS_NICE: without it nothing changes, `onRefused`
 * hears it once and no further attempt is made. Without `chrt`, only the nice value moves.
 */
export function liftThread(
  thread: number,
  {
    quietMs = 1_000,
    stillWaited = () => false,
    onRefused = () => {},
  }: { quietMs?: number; stillWaited?: () => boolean; onRefused?: (reason: string) => void } = {},
): ThreadLift {
  const chrt = chrtPath();
  /** Wanted: lifted. */
  let lifted = false;
  /** What the last `chrt` that succeeded set. */
  let liftedPolicy = false;
  let inFlight = false;
  let waits = 0;
  let lastWait = 0;
  let timer: NodeJS.Timeout | undefined;
  let refused = false;
  let closed = false;
  let changes = 0;

  function refuse(reason: string): void {
    if (refused) return;
    refused = true;
    clearTimeout(timer);
    onRefused(reason);
  }

  /** One `chrt` at a time, towards what is wanted when it ends. */
  function applyPolicy(): void {
    if (inFlight || closed || refused || chrt === undefined || liftedPolicy === lifted) return;
    inFlight = true;
    const target = lifted;
    changes++;
    execFile(
      chrt,
      [target ? '--other' : '--idle', '--pid', '0', String(thread)],
      { timeout: CHRT_TIMEOUT_MS },
      (error, _stdout, stderr) => {
        inFlight = false;
        if (error) {
          refuse(`chrt: ${String(stderr).trim() || error.message}`);
          return;
        }
        liftedPolicy = target;
        applyPolicy();
      },
    );
  }

  function lowerLater(delayMs: number): void {
    timer = setTimeout(lowerIfQuiet, delayMs);
    timer.unref();
  }

  function lowerIfQuiet(): void {
    timer = undefined;
    if (closed || refused || !lifted) return;
    if (waits > 0 || stillWaited()) {
      lastWait = performance.now();
      lowerLater(quietMs);
      return;
    }
    const quiet = performance.now() - lastWait;
    if (quiet < quietMs) {
      lowerLater(quietMs - quiet);
      return;
    }
    lifted = false;
    // the nice value first: between the two the thread is SCHED_OTHER at nice 19, never above
    setNice(thread, 19);
    applyPolicy();
  }

  return {
    waiting(begun) {
      if (closed || refused) return;
      waits = Math.max(0, waits + (begun ? 1 : -1));
      lastWait = performance.now();
      if (begun && !lifted) {
        // at once (a system call): where chrt is missing, the thread is SCHED_OTHER and this is the lift
        if (!setNice(thread, 0)) {
          refuse('setpriority: not permitted');
          return;
        }
        lifted = true;
        applyPolicy();
      }
      if (lifted && timer === undefined) lowerLater(quietMs);
    },
    get changes() {
      return changes;
    },
    close() {
      closed = true;
      clearTimeout(timer);
    },
  };
}
