import { ReportThrottle } from '../observability/report-throttle.ts';
import type { Database, SqlExecutor } from '../storage/database.ts';
import {
  isRecordProblem,
  MAX_BATCH,
  type PostableUsage,
  postUsage,
  type RejectedUsage,
  setAsideUsage,
} from './usage-journal.ts';

/**
 * A count of things done, and promises of it reaching a target: `sync` waits for what came before it
 * only, so a stream of work that never pauses cannot keep it waiting.
 */
export class Progress {
  done = 0;
  private waiters: { target: number; resolve: () => void; reject: (error: unknown) => void }[] = [];

  until(target: number): Promise<void> {
    if (this.done >= target) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ target, resolve, reject }));
  }

  advance(n: number): void {
    this.done += n;
    if (this.waiters.length === 0) return;
    const still: typeof this.waiters = [];
    for (const w of this.waiters) {
      if (w.target <= this.done) w.resolve();
      else still.push(w);
    }
    this.waiters = still;
  }

  /** Everyone waiting is told of the failure (work goes on: a later `until` may succeed). */
  fail(error: unknown): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(error);
  }
}

export interface ChargerSettings {
  /**
   * A record still uncharged this long after it was recorded (by the database's clock) is charged by
   * any replica's sweep: its own replica died, or cannot reach the database.
   */
  orphanAfterMs: number;
  /** How often a replica looks for such records. */
  sweepIntervalMs: number;
  /** The first retry after a failed charge; doubled up to `maxRetryMs`. */
  retryBaseMs: number;
  maxRetryMs: number;
  /**
   * How long records wait for others to share their charge's transaction (unless a batch is full, or
   * someone waits in `sync`). A charge is a dozen round trips whatever its size: at 1,000 req/s,
   * charging each record as soon as the last charge ended made ≈ 1 transaction a request, and those
   * round trips were the hub's largest CPU cost on PostgreSQL (docs/benchmarks.md).
   */
  coalesceMs: number;
}

export const DEFAULT_CHARGER_SETTINGS: ChargerSettings = {
  orphanAfterMs: 2_000,
  sweepIntervalMs: 1_000,
  retryBaseMs: 100,
  maxRetryMs: 5_000,
  coalesceMs: 10,
};

const CLAIMED_COLUMNS = `e.request_id, e.created_at, e.organization_id, e.api_key_id, e.product_id, e.model,
  e.prompt_tokens, e.completion_tokens, CAST(e.cost_micro_krw AS TEXT) AS cost, e.voucher_id`;

interface ClaimedRow {
  request_id: string;
  created_at: number;
  organization_id: string;
  api_key_id: string;
  product_id: string;
  model: string;
  prompt_tokens: number;
  completion_tokens: number;
  cost: string;
  voucher_id: string | null;
}

function postable(r: ClaimedRow): PostableUsage {
  return {
    requestId: r.request_id,
    createdAtMs: Number(r.created_at),
    organizationId: r.organization_id,
    apiKeyId: r.api_key_id,
    productId: r.product_id,
    model: r.model,
    promptTokens: Number(r.prompt_tokens),
    completionTokens: Number(r.completion_tokens),
    costMicroKrw: BigInt(r.cost),
    voucherId: r.voucher_id,
  };
}

const claimSql = new Map<string, string>();

/**
 * Takes the rows of these request ids out of `usage_uncharged` and returns their records. The rows are
 * locked in request-id order first, so two claimers of overlapping ids queue instead of deadlocking;
 * a row another transaction claimed is waited for and then found gone (it committed) or — with
 * `skipLocked`, for sweeps that must not queue behind a replica's own charging — passed over.
 */
function claim(tx: SqlExecutor, ids: readonly string[], skipLocked: boolean): Promise<ClaimedRow[]> {
  const key = `${ids.length}:${skipLocked}`;
  let sql = claimSql.get(key);
  if (sql === undefined) {
    sql = `WITH claimed AS (
        DELETE FROM usage_uncharged WHERE request_id IN (
          SELECT request_id FROM usage_uncharged WHERE request_id IN (${ids.map(() => '?').join(', ')})
          ORDER BY request_id FOR UPDATE${skipLocked ? ' SKIP LOCKED' : ''})
        RETURNING request_id
      )
      SELECT ${CLAIMED_COLUMNS} FROM usage_events e JOIN claimed c ON c.request_id = e.request_id
      ORDER BY e.request_id`;
    claimSql.set(key, sql);
  }
  return tx.all<ClaimedRow>(sql, ids);
}

/** PostgreSQL's deadlock_detected and serialization_failure. */
const TRANSIENT = new Set(['40P01', '40001']);

const NOW_MS = 'CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)';

/**
 * PostgreSQL (decision 0021): posts — charges to the ledger, adds to the daily sums, raises voucher
 * alerts — the usage records that were made durable on their own (`recordForCharging`), right after,
 * off the response path. Exactly once whichever replica posts a record: its row in `usage_uncharged`
 * is deleted in the transaction that posts it, and the ledger's request id is unique besides.
 *
 * - This replica's records are charged as soon as they are recorded, in groups (one transaction for
 *   every record that arrived while the last one ran), retried with back-off while the database fails.
 * - At start, every record left uncharged is charged (a replica killed between a record and its
 *   charge, this one's previous life included) before `sync` resolves, so the first balance read sees it.
 * - Every `sweepIntervalMs`, records older than `orphanAfterMs` are charged by whichever replica gets
 *   them first (`FOR UPDATE SKIP LOCKED`): those of a replica that died and is not coming back.
 * - `syncAll` charges every record uncharged at the moment it is called, waiting for those another
 *   replica is charging: what closing a month or a programme does first.
 *
 * A record whose charge the database refuses for its own values (never seen: the ledger caps every
 * account) is set aside in `usage_rejected` with source `charge` — it stays in `usage_events`,
 * uncharged — so that one record cannot stop every other one's charge.
 */
export class UsageCharger {
  /** This replica's records waiting for their charge, oldest first. */
  private waiting: string[] = [];
  /** The same, and those in the charge under way: what `whenCharged` waits for. */
  private readonly uncharged = new Set<string>();
  private readonly onCharged = new Map<string, (() => void)[]>();
  private added = 0;
  private readonly charged = new Progress();
  private running = false;
  /** `sync` waits for the records added up to this count: charge them now, without gathering company. */
  private urgentUntil = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private batchTimer: NodeJS.Timeout | undefined;
  private retryMs: number;
  private recovery: Promise<void> | undefined;
  private recovered = false;
  private sweeping: Promise<void> | undefined;
  private readonly sweepTimer: NodeJS.Timeout;
  private readonly settings: ChargerSettings;
  /** A database outage at 1,000 req/s is one line a second, not a thousand. */
  private readonly reports = new ReportThrottle(1000);

  constructor(
    private readonly db: Database,
    private readonly onRejected: (rejected: RejectedUsage) => void,
    private readonly onError: (message: string, error: unknown) => void,
    settings: Partial<ChargerSettings> = {},
  ) {
    this.settings = { ...DEFAULT_CHARGER_SETTINGS, ...settings };
    this.retryMs = this.settings.retryBaseMs;
    // what the last process (or a dead replica) left: charged before anyone reads a balance here
    this.recover().catch((error: unknown) => this.report('usage charges left at start failed', error));
    this.sweepTimer = setInterval(() => {
      this.sweeping ??= this.sweep().finally(() => {
        this.sweeping = undefined;
      });
    }, this.settings.sweepIntervalMs);
    this.sweepTimer.unref();
  }

  /** Request ids this replica has just recorded (`usage_uncharged` has their rows): charge them. */
  add(ids: readonly string[]): void {
    if (ids.length === 0) return;
    for (const id of ids) {
      this.waiting.push(id);
      this.uncharged.add(id);
    }
    this.added += ids.length;
    this.schedule();
  }

  /** A charge soon: at once for a full batch, else once `coalesceMs` has gathered more records. */
  private schedule(): void {
    if (this.running || this.retryTimer !== undefined) return;
    if (this.waiting.length >= MAX_BATCH || this.settings.coalesceMs <= 0) {
      void this.run(); // clears a pending batch timer
      return;
    }
    if (this.batchTimer !== undefined) return;
    this.batchTimer = setTimeout(() => {
      this.batchTimer = undefined;
      void this.run();
    }, this.settings.coalesceMs);
    this.batchTimer.unref();
  }

  unchargedCount(): number {
    return this.uncharged.size;
  }

  /** Resolves once the record's charge is committed, by this replica or another. */
  whenCharged(requestId: string): Promise<void> {
    if (!this.uncharged.has(requestId)) return Promise.resolve();
    return new Promise((resolve) => {
      const list = this.onCharged.get(requestId);
      if (list === undefined) this.onCharged.set(requestId, [resolve]);
      else list.push(resolve);
    });
  }

  /**
   * Every record added so far is charged, and so is everything left uncharged when this process
   * started. Rejects when a charge fails (the database is down): the caller must not read balances
   * that may miss charges; charging goes on in the background.
   */
  async sync(): Promise<void> {
    const target = this.added;
    if (this.charged.done < target) {
      const reached = this.charged.until(target);
      // a charge waiting for its retry or for company is run now: the caller wants the answer
      if (this.retryTimer !== undefined) {
        clearTimeout(this.retryTimer);
        this.retryTimer = undefined;
      }
      this.urgentUntil = Math.max(this.urgentUntil, target);
      void this.run();
      await reached;
    }
    if (!this.recovered) await this.recover();
  }

  /** `sync`, then every record uncharged in the database now, whichever replica recorded it. */
  async syncAll(): Promise<void> {
    await this.sync();
    await this.chargeEverything();
  }

  async close(): Promise<void> {
    clearInterval(this.sweepTimer);
    await this.sweeping;
    try {
      await this.sync();
    } catch (error) {
      // left in usage_uncharged: the next start, or another replica, charges them
      this.report('usage charges at close failed', error);
    }
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (this.batchTimer !== undefined) clearTimeout(this.batchTimer);
    this.batchTimer = undefined;
  }

  private async run(): Promise<void> {
    if (this.running) return;
    this.running = true;
    if (this.batchTimer !== undefined) {
      clearTimeout(this.batchTimer);
      this.batchTimer = undefined;
    }
    try {
      while (this.waiting.length > 0) {
        const batch = this.waiting.slice(0, MAX_BATCH);
        try {
          await this.chargeIds(batch, false);
        } catch (error) {
          this.failed(error);
          return; // the retry timer runs it again
        }
        this.waiting.splice(0, batch.length);
        for (const id of batch) {
          this.uncharged.delete(id);
          const resolves = this.onCharged.get(id);
          if (resolves !== undefined) {
            this.onCharged.delete(id);
            for (const resolve of resolves) resolve();
          }
        }
        this.charged.advance(batch.length);
        this.retryMs = this.settings.retryBaseMs;
        // what arrived during this charge waits for company too, unless a `sync` waits for it
        if (this.charged.done >= this.urgentUntil && this.waiting.length < MAX_BATCH) break;
      }
    } finally {
      this.running = false;
    }
    if (this.waiting.length > 0) this.schedule();
  }

  private failed(error: unknown): void {
    this.report('usage charge failed; retrying', error);
    this.charged.fail(error);
    const delay = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, this.settings.maxRetryMs);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.run();
    }, delay);
    this.retryTimer.unref();
  }

  /**
   * Claims and posts these records in one transaction. A batch the database refuses for a record's own
   * values is split, and that record set aside; a failure of the database itself throws.
   */
  private async chargeIds(ids: readonly string[], skipLocked: boolean): Promise<void> {
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          await this.db.transaction(async (tx) => {
            // No fsync of its own: the records and their rows here are durable already, and a charge a
            // database crash loses takes its claim with it — the row is back and the charge is posted
            // again. Whatever depends on the charge durably (a close, a statement) commits after it,
            // and a commit flushes the log up to itself, this charge included.
            await tx.run('SET LOCAL synchronous_commit = off');
            const rows = await claim(tx, ids, skipLocked);
            await postUsage(tx, 'postgres', rows.map(postable));
          });
          return;
        } catch (error) {
          // chosen as a deadlock's victim, or a serialisation failure: nothing was posted, try again
          if (attempt >= 3 || !TRANSIENT.has(String((error as { code?: unknown })?.code))) throw error;
        }
      }
    } catch (error) {
      if (!isRecordProblem(error)) throw error;
      if (ids.length === 1) {
        await this.setAside(ids[0]!, error);
        return;
      }
      for (const id of ids) await this.chargeIds([id], skipLocked);
    }
  }

  private async setAside(requestId: string, error: unknown): Promise<void> {
    const reason = `charge refused: ${String((error as Error)?.message ?? error)}`.slice(0, 500);
    const claimed = await this.db.transaction(async (tx) => {
      const rows = await claim(tx, [requestId], false);
      if (rows.length === 0) return false;
      await setAsideUsage(tx, requestId, 'charge', reason, JSON.stringify(rows[0]));
      return true;
    });
    if (claimed) this.onRejected({ requestId, reason });
  }

  private recover(): Promise<void> {
    this.recovery ??= this.chargeEverything().then(
      () => {
        this.recovered = true;
      },
      (error: unknown) => {
        // tried again by the next `sync`
        this.recovery = undefined;
        throw error;
      },
    );
    return this.recovery;
  }

  /** Every record uncharged now, waiting for those being charged elsewhere. */
  private async chargeEverything(): Promise<void> {
    const ids = (
      await this.db.all<{ request_id: string }>('SELECT request_id FROM usage_uncharged ORDER BY request_id')
    ).map((r) => r.request_id);
    for (let i = 0; i < ids.length; i += MAX_BATCH) await this.chargeIds(ids.slice(i, i + MAX_BATCH), false);
  }

  /** Records a replica left uncharged for `orphanAfterMs`: whoever gets them first charges them. */
  private async sweep(): Promise<void> {
    try {
      // a bounded catch-up per tick: rows others hold are skipped, and may still be there next time
      for (let round = 0; round < 25; round++) {
        const ids = (
          await this.db.all<{ request_id: string }>(
            `SELECT request_id FROM usage_uncharged WHERE recorded_at < ${NOW_MS} - ? LIMIT ?`,
            [this.settings.orphanAfterMs, MAX_BATCH],
          )
        ).map((r) => r.request_id);
        if (ids.length === 0) break;
        await this.chargeIds(ids, true);
        if (ids.length < MAX_BATCH) break;
      }
    } catch (error) {
      this.report('usage charge sweep failed', error);
    }
  }

  private report(message: string, error: unknown): void {
    if (this.reports.take() > 0) this.onError(message, error);
  }
}
