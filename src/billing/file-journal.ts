import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { liftThread, type ThreadLift } from '../thread-priority.ts';
import { startWorker } from '../worker-heap.ts';
import { journalApplierModule } from './applier-bundle.ts';
import { type RejectedUsage, recordToLine, type UsageJournal, type UsageRecord } from './usage-journal.ts';

/** Past this size the journal moves to a new file, so applied files can be deleted. */
const ROTATE_BYTES = 64 * 1024 * 1024;

interface Pending {
  line: string;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export type ApplierRequest =
  | { type: 'apply'; id: number }
  | { type: 'files'; own: string[]; current: string }
  | { type: 'close'; id: number };
export type ApplierReply =
  /** `ok`: everything in the files when the request came is applied (false: an apply failed, retried later). */
  | { type: 'applied'; id: number; ok: boolean }
  | { type: 'error'; message: string }
  /** A line set aside in `usage_rejected`: reported, never retried. */
  | { type: 'rejected'; requestId: string; reason: string }
  /** The applier's thread, sent first, at nice 19: the hub makes it SCHED_IDLE and lifts it (`liftThread`). */
  | { type: 'thread'; id: number };

/** How long settles wait for their charges to be applied on SQLite before their holds wait for leases. */
const CHARGE_WAIT_MS = 60_000;
const noop = (): void => {};
/**
 * How long the applier stays lifted after the hub's last wait for its lock: under repeated contention
 * it stays up instead of a `chrt` for each wait, and a second of it at normal priority costs the event
 * loop a share of one core at most.
 */
const LIFT_QUIET_MS = 1_000;

/**
 * SQLite: usage records are appended to a journal file (JSON lines, one `write(2)` per turn of the
 * event loop for everything that arrived in it) and a worker thread applies them to `usage_events`
 * in large batches. A request waits for the write only, never for a SQLite commit or the fsync of a
 * WAL checkpoint, which take tens of milliseconds on a slow disk and, on the event loop, made every
 * request behind them wait too.
 *
 * Durability is the same as SQLite's own with synchronous=NORMAL: a written line is in the page
 * cache and survives the process being killed; after a crash the next start applies what the dead
 * process left (apply is idempotent by request id). See docs/metering.md.
 */
export class FileUsageJournal implements UsageJournal {
  private fd: number;
  private current: string;
  private readonly own: string[] = [];
  private written = 0;
  private pending: Pending[] = [];
  private scheduled = false;
  private readonly worker: Worker;
  private readonly waiting = new Map<number, (ok: boolean) => void>();
  /** The applier's thread, lifted while the hub waits for its lock (once its id is known). */
  private lift: ThreadLift | undefined;
  /** The applier thread has exited: nothing will answer a request again. */
  private workerGone = false;
  private nextId = 1;
  private closed = false;
  /** The apply under way for settles waiting for their charges, and the one after it (whenCharged). */
  private charging: Promise<void> | undefined;
  private chargingNext: Promise<void> | undefined;

  constructor(
    private readonly dir: string,
    databasePath: string,
    private readonly onError: (message: string) => void,
    private readonly applyIntervalMs = 200,
    private readonly onRejected: (rejected: RejectedUsage) => void = () => {},
    /** The hub connection's waiting writers, for the applier to step aside for (storage/sqlite.ts). */
    private readonly lockWaiters: Int32Array | null = null,
    /**
     * What is worth knowing, not an error: the applier cannot be lifted (info, once), a lift that failed
     * and is tried again (warn), the applier in the gaps (debug: tests wait for it).
     */
    private readonly onNotice: (message: string, level: 'debug' | 'info' | 'warn') => void = () => {},
  ) {
    mkdirSync(dir, { recursive: true });
    this.current = this.newFileName();
    this.fd = openSync(join(dir, this.current), 'a');
    this.own.push(this.current);
    // V8's own young generation, not npm start's (src/worker-heap.ts)
    this.worker = startWorker(journalApplierModule(), {
      workerData: { dir, databasePath, own: this.own, current: this.current, applyIntervalMs, lockWaiters },
    });
    this.worker.on('message', (m: ApplierReply) => {
      if (m.type === 'error') this.onError(m.message);
      else if (m.type === 'rejected') this.onRejected({ requestId: m.requestId, reason: m.reason });
      else if (m.type === 'thread') this.liftable(m.id);
      else {
        this.waiting.get(m.id)?.(m.ok);
        this.waiting.delete(m.id);
      }
    });
    this.worker.on('error', (error) => this.onError(String(error)));
    // a request the worker will never answer must not wait for ever (a settle, /funds, close)
    this.worker.on('exit', () => {
      this.workerGone = true;
      // its thread id may be another thread's next
      this.lift?.close();
      this.lift = undefined;
      for (const resolve of this.waiting.values()) resolve(false);
      this.waiting.clear();
    });
  }

  private liftable(thread: number): void {
    if (this.closed || this.workerGone) return;
    const waiters = this.lockWaiters;
    let inTheGaps = false;
    this.lift = liftThread(thread, {
      quietMs: LIFT_QUIET_MS,
      // it has made itself nice 19 only: its SCHED_IDLE is set here, so that one owner orders every chrt
      inTheGaps: true,
      // transactions still waiting on timers wait for the applier too
      stillWaited: waiters ? () => Atomics.load(waiters, 0) > 0 : undefined,
      onApplied: (lifted) => {
        if (lifted || inTheGaps) return;
        inTheGaps = true;
        this.onNotice(
          `journal applier thread ${thread} is SCHED_IDLE; lifted while the hub waits for its lock`,
          'debug',
        );
      },
      onRefused: (reason, lifting) =>
        this.onNotice(
          lifting
            ? `the journal applier stays SCHED_IDLE while the hub waits for its lock: lifting it needs CAP_SYS_NICE (${reason})`
            : `the journal applier stays at nice 19, not SCHED_IDLE, and is not lifted: ${reason}`,
          'info',
        ),
      onFailed: (reason, failures) =>
        this.onNotice(
          `changing the journal applier's priority failed${failures > 1 ? ` (${failures} times since the last report)` : ''}; tried again at the next wait: ${reason}`,
          'warn',
        ),
    });
  }

  /**
   * A transaction of the hub's connection has begun (`true`) or ended (`false`) sleeping for another
   * connection's write lock (storage/database.ts `lockWaitHook`): most likely the applier's, held inside
   * a transaction while the applier, SCHED_IDLE, waits for a core that a load from elsewhere does not
   * leave it. It is lifted meanwhile, so that it finishes and lets go — priority inheritance, by hand
   * (decision 0038).
   */
  hubWaiting(sleeping: boolean): void {
    this.lift?.waiting(sleeping);
  }

  private newFileName(): string {
    return `usage-${process.pid}-${randomBytes(6).toString('hex')}.jsonl`;
  }

  append(record: UsageRecord): Promise<void> {
    if (this.closed) return Promise.reject(new Error('usage journal is closed'));
    return new Promise((resolve, reject) => {
      this.pending.push({ line: recordToLine(record), resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.write());
      }
    });
  }

  /** One write for the whole group; resolves every record in it once the bytes are in the file. */
  private write(): void {
    this.scheduled = false;
    const group = this.pending;
    if (group.length === 0) return;
    this.pending = [];
    try {
      const data = Buffer.from(group.length === 1 ? group[0]!.line : group.map((p) => p.line).join(''));
      let offset = 0;
      while (offset < data.length) offset += writeSync(this.fd, data, offset);
      this.written += data.length;
      for (const p of group) p.resolve();
    } catch (error) {
      for (const p of group) p.reject(error);
      return;
    }
    if (this.written >= ROTATE_BYTES) this.rotate();
  }

  private rotate(): void {
    const next = this.newFileName();
    const fd = openSync(join(this.dir, next), 'a');
    closeSync(this.fd);
    this.fd = fd;
    this.current = next;
    this.own.push(next);
    this.written = fstatSync(fd).size;
    this.post({ type: 'files', own: [...this.own], current: next });
  }

  private post(message: ApplierRequest): void {
    this.worker.postMessage(message);
  }

  private request(type: 'apply' | 'close'): Promise<boolean> {
    if (this.workerGone) return Promise.resolve(false);
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.post({ type, id });
    });
  }

  async sync(): Promise<void> {
    await this.applyWritten();
  }

  /** Everything written so far applied (true), or an apply failed or the applier is gone (false). */
  private applyWritten(): Promise<boolean> {
    if (this.scheduled) this.write();
    return this.request('apply');
  }

  /**
   * The applier applies every file of this database whose process is gone, and a live hub's files are
   * its own to apply: on one SQLite file, this is as far as one process can see.
   */
  syncAll(): Promise<void> {
    return this.sync();
  }

  /**
   * Once the applier has applied everything written so far, this call's record with it: on SQLite a
   * record is charged in the transaction that applies it (decision 0021). Budget holds shared through
   * Redis wait for it before a hold becomes a charge. One apply at a time: every settle that asks while
   * one runs shares the next, which starts when it ends — a busy hub asks the applier for one apply
   * after another, never for one per call.
   */
  whenCharged(_requestId: string): Promise<void> {
    if (this.charging === undefined) {
      this.charging = this.applyForCharges().finally(() => {
        this.charging = undefined;
      });
      return this.charging;
    }
    if (this.chargingNext === undefined) {
      // after the one under way, whether it applied or not: these records need an apply of their own
      this.chargingNext = this.charging.then(noop, noop).then(() => {
        this.chargingNext = undefined;
        return this.whenCharged(_requestId);
      });
    }
    return this.chargingNext;
  }

  /**
   * Resolves once an apply succeeds, asked again every `applyIntervalMs` for a minute at most; rejects
   * then, or once the applier is gone: the charge is not in the ledger, and the hold waits for its lease
   * rather than becoming a charge the ledger does not have.
   */
  private async applyForCharges(): Promise<void> {
    const until = Date.now() + CHARGE_WAIT_MS;
    for (;;) {
      if (await this.applyWritten()) return;
      if (this.workerGone || this.closed || Date.now() >= until)
        throw new Error('usage journal: the charges could not be applied');
      await new Promise((resolve) => setTimeout(resolve, this.applyIntervalMs));
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.lift?.close();
    if (this.scheduled) this.write();
    closeSync(this.fd);
    await this.request('close');
    await this.worker.terminate();
  }
}
