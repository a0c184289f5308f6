import { type ExecFileException, execFile } from 'node:child_process';
import { existsSync, readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { ReportThrottle } from './observability/report-throttle.ts';

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

/** `setpriority(2)` on one thread (Linux keeps nice values per thread); throws as `os.setPriority` does. */
function setNice(thread: number, nice: number): void {
  setPriority(thread, nice);
}

/** The errno name of a failed system call (`os.setPriority` puts it in `info`, a spawn in `code`). */
function errorCode(error: unknown): unknown {
  const e = error as { code?: unknown; info?: { code?: unknown } } | null;
  return e?.info?.code ?? e?.code;
}

/**
 * Refused for want of a privilege (CAP_SYS_NICE): asking again will not help. A timeout, EAGAIN,
 * ENOMEM or ESRCH might. `chrt` runs with LC_ALL=C, so its message is strerror's English.
 */
function notPermitted(error: unknown, stderr = ''): boolean {
  const code = errorCode(error);
  return code === 'EPERM' || code === 'EACCES' || /Operation not permitted|Permission denied/.test(stderr);
}

/**
 * Nice 19 for the calling thread, at once (a system call); its id (Linux), for the thread that will
 * make it SCHED_IDLE (`liftThread` with `inTheGaps`) or undefined.
 */
export function niceInTheGaps(): number | undefined {
  try {
    setPriority(19);
  } catch {
    // not permitted or not supported: the thread runs at normal priority
  }
  return currentThreadId();
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
 * Resolves, once `chrt` has done what it could, with the thread's id (Linux). A thread that another
 * will lift (`liftThread`) calls `niceInTheGaps` instead and leaves the `chrt` to that one, which then
 * orders every change of its policy: this one's, finishing late, would undo a lift.
 */
export function runInTheGaps(): Promise<number | undefined> {
  const thread = niceInTheGaps();
  const chrt = chrtPath();
  if (thread === undefined || chrt === undefined) return Promise.resolve(thread);
  return new Promise((resolve) => {
    execFile(chrt, ['--idle', '--pid', '0', String(thread)], { timeout: CHRT_TIMEOUT_MS }, () => {
      // not permitted: nice 19 it is
      resolve(thread);
    });
  });
}

/** `execFile`, as `liftThread` calls it (tests put their own in). */
export type ExecChrt = (
  file: string,
  args: string[],
  options: { timeout: number; env: NodeJS.ProcessEnv },
  callback: (error: ExecFileException | null, stdout: string, stderr: string) => void,
) => unknown;

export interface LiftOptions {
  /** Lowered again once no one has waited for this long. */
  quietMs?: number;
  /** Those who wait without calling `waiting` (transactions still on timers). */
  stillWaited?: () => boolean;
  /**
   * The thread is not in the gaps yet (it called `niceInTheGaps`): its SCHED_IDLE is set here, first,
   * so that one owner orders every `chrt` on it.
   */
  inTheGaps?: boolean;
  /** A change was refused for want of CAP_SYS_NICE (`lifting`: a lift, else a lowering): told once, no more tries. */
  onRefused?: (reason: string, lifting: boolean) => void;
  /**
   * A change failed otherwise (a timeout, EAGAIN, ENOMEM, ESRCH): tried again at the next wait. Heard
   * at most once every `failureReportMs`, with how many failed since the last time it was heard
   * (this one included): a failure that keeps happening under contention is one line a minute.
   */
  onFailed?: (reason: string, failures: number) => void;
  /** 60 s. */
  failureReportMs?: number;
  /** A `chrt` set the policy (`lifted`: SCHED_OTHER, else SCHED_IDLE) and no other ran beside it. */
  onApplied?: (lifted: boolean) => void;
  /** Tests: `chrt`'s path (null: none), how it is started, and `setpriority`. */
  chrt?: string | null;
  exec?: ExecChrt;
  renice?: (thread: number, nice: number) => void;
}

export interface ThreadLift {
  /**
   * `true`: someone has begun to wait for the thread (it holds what they need): it is lifted, if it
   * is not already. `false`: that wait has ended. Never throws.
   */
  waiting(begun: boolean): void;
  /** How many `chrt` were started (tests: no process is started per wait). */
  readonly changes: number;
  /** Changes that failed and are tried again (not refusals). */
  readonly failures: number;
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
 * under repeated contention it stays lifted instead of starting `chrt` for each wait. One `chrt` runs
 * at a time and a change wanted meanwhile follows it — except a lift wanted while a lowering runs: it
 * starts at once, since the waiter is about to sleep and the callback that would start it could not
 * run before the sleep ends. Two `chrt` then run side by side, in an order not known; once both have
 * ended, the wanted policy is set once more.
 *
 * Leaving SCHED_IDLE and lowering a nice value need CAP_SYS_NICE: refused for want of it (EPERM,
 * EACCES), nothing changes, `onRefused` hears it once and no further attempt is made. Any other failure
 * (a timeout, EAGAIN, ENOMEM, ESRCH, a spawn that throws) goes to `onFailed` (once a minute at most)
 * and is tried again at the next wait (a lowering: after `quietMs`). Without `chrt`, only the nice
 * value moves.
 */
export function liftThread(
  thread: number,
  {
    quietMs = 1_000,
    stillWaited = () => false,
    inTheGaps = false,
    onRefused = () => {},
    onFailed = () => {},
    failureReportMs = 60_000,
    onApplied = () => {},
    chrt = chrtPath() ?? null,
    exec = execFile as unknown as ExecChrt,
    renice = setNice,
  }: LiftOptions = {},
): ThreadLift {
  /** Wanted: lifted. */
  let lifted = false;
  /** What the `chrt` that ended last set, when known (not after two ran side by side, nor before the first). */
  let applied: boolean | undefined = inTheGaps ? undefined : false;
  /** `chrt` under way, and what the last one started sets. */
  let running = 0;
  let runningTarget = false;
  /** Two ran side by side since `running` was last 0: what the thread has is not known. */
  let overlapped = false;
  /** A change failed (not refused): none is started until the next wait, or the lowering's retry. */
  let stalled = false;
  let waits = 0;
  let lastWait = 0;
  let timer: NodeJS.Timeout | undefined;
  let refused = false;
  let closed = false;
  let changes = 0;
  let failures = 0;
  const reports = new ReportThrottle(failureReportMs);

  function tell(listener: () => void): void {
    try {
      listener();
    } catch {
      // a listener's failure is not the waiter's
    }
  }

  function refuse(reason: string, lifting: boolean): void {
    if (refused) return;
    refused = true;
    clearTimeout(timer);
    tell(() => onRefused(reason, lifting));
  }

  /** Counted every time, heard at most once every `failureReportMs`. */
  function countFailure(reason: string): void {
    failures++;
    const count = reports.take();
    if (count > 0) tell(() => onFailed(reason, count));
  }

  function fail(reason: string): void {
    stalled = true;
    countFailure(reason);
    // a lowering that failed leaves it SCHED_OTHER (at nice 19): tried again after a quiet while
    if (!lifted && timer === undefined && !closed && !refused) lowerLater(quietMs);
  }

  function applyPolicy(): void {
    if (closed || refused || stalled || chrt === null) return;
    if (running > 0) {
      // a lift does not wait for a lowering under way: its callback would start the lift only once
      // the event loop runs again, and the waiter's thread is about to sleep
      if (!lifted || runningTarget) return;
      overlapped = true;
    } else if (applied === lifted) return;
    start(chrt, lifted);
  }

  function start(path: string, target: boolean): void {
    running++;
    runningTarget = target;
    changes++;
    const flag = target ? '--other' : '--idle';
    const ended = (error: unknown, stderr: string) => {
      running--;
      if (overlapped && running === 0) {
        overlapped = false;
        applied = undefined; // which of the two came last is not known: the wanted one is set again
      } else if (!error && !overlapped) {
        applied = target;
        tell(() => onApplied(target));
      }
      if (error) {
        const reason = `chrt ${flag}: ${stderr.trim() || (error as Error).message || String(error)}`;
        if (notPermitted(error, stderr)) refuse(reason, target);
        else fail(reason);
        return;
      }
      if (running === 0) applyPolicy();
    };
    try {
      exec(
        path,
        [flag, '--pid', '0', String(thread)],
        { timeout: CHRT_TIMEOUT_MS, env: { LC_ALL: 'C' } },
        (error, _stdout, stderr) => ended(error, String(stderr)),
      );
    } catch (error) {
      // a spawn can throw at once (ENOMEM, EAGAIN): a failed attempt like any other
      ended(error, '');
    }
  }

  function lowerLater(delayMs: number): void {
    timer = setTimeout(lowerIfQuiet, delayMs);
    timer.unref();
  }

  function lowerIfQuiet(): void {
    timer = undefined;
    if (closed || refused) return;
    if (lifted) {
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
      try {
        renice(thread, 19);
      } catch {
        // raising a nice value needs no privilege: the thread is gone, and so is the point
      }
    }
    stalled = false;
    applyPolicy();
  }

  function waiting(begun: boolean): void {
    if (closed || refused) return;
    waits = Math.max(0, waits + (begun ? 1 : -1));
    lastWait = performance.now();
    if (begun) {
      // a change that failed is tried again at each wait
      stalled = false;
      if (!lifted) {
        // at once (a system call): where chrt is missing, the thread is SCHED_OTHER and this is the lift
        try {
          renice(thread, 0);
        } catch (error) {
          const reason = `setpriority: ${(error as Error).message ?? String(error)}`;
          if (notPermitted(error)) refuse(reason, true);
          else fail(reason);
          return;
        }
        lifted = true;
      }
      applyPolicy();
    }
    if (lifted && timer === undefined) lowerLater(quietMs);
  }

  // the thread's SCHED_IDLE, first of the changes this one orders
  applyPolicy();

  return {
    waiting(begun) {
      try {
        waiting(begun);
      } catch (error) {
        // the waiter's transaction must not fail for it
        countFailure(`lift: ${String(error)}`);
      }
    },
    get changes() {
      return changes;
    },
    get failures() {
      return failures;
    },
    close() {
      closed = true;
      clearTimeout(timer);
    },
  };
}
