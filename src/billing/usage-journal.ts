import { dayIndex } from '../kst.ts';
import { isStorageBusy } from '../storage/busy.ts';
import type { Database, Dialect, SqlExecutor, SqlValue } from '../storage/database.ts';
import { insertNew } from '../storage/insert-new.ts';
import { rowBatches } from '../storage/row-batches.ts';
import { chargeUsage } from './ledger.ts';
import type { MicroKrw } from './money.ts';
import { type ChargerSettings, Progress, UsageCharger } from './usage-charger.ts';

export type UsageStatus = 'ok' | 'upstream_error' | 'timeout' | 'cancelled' | 'rejected';
export type UsageSource = 'upstream' | 'estimate' | 'none';

/**
 * One upstream call made for a request. `outcome` is how the call itself ended before any answer
 * reached the client: `ok` (the deployment accepted it: the usage record says how the answer ended),
 * or the failure: `connect`, `timeout`, `http` (with `httpStatus`), `protocol`, `cancelled`.
 */
export interface UsageAttempt {
  productId: string;
  model: string;
  deploymentId: string;
  outcome: 'ok' | 'connect' | 'timeout' | 'http' | 'protocol' | 'cancelled';
  httpStatus: number | null;
  durationMs: number;
}

/** One metered request: the journal's row, and what settlement will read. */
export interface UsageRecord {
  requestId: string;
  createdAtMs: number;
  organizationId: string;
  apiKeyId: string;
  productId: string;
  deploymentId: string | null;
  model: string;
  endpoint: 'chat.completions' | 'embeddings';
  stream: boolean;
  status: UsageStatus;
  httpStatus: number;
  errorCode: string | null;
  promptTokens: number;
  completionTokens: number;
  usageSource: UsageSource;
  priceInputMicroPer1M: MicroKrw;
  priceOutputMicroPer1M: MicroKrw;
  costMicroKrw: MicroKrw;
  latencyMs: number;
  ttftMs: number | null;
  /**
   * Why the counts are the hub's estimate although the upstream reported some (its counts were not
   * plausible: see billing/usage-check.ts); null otherwise.
   */
  usageNote: string | null;
  /**
   * Every upstream call, in order, when there was more than one that answered at once (see migration
   * 004); absent when the first attempt served, which the record itself describes.
   */
  attempts?: UsageAttempt[];
  /**
   * The voucher the call was admitted against (limits/budget-holds.ts); the ledger charges its share
   * when the record is applied. null or absent (lines journaled before vouchers): the wallet pays.
   */
  voucherId?: string | null;
}

const COLUMNS = `request_id, created_at, organization_id, api_key_id, product_id, deployment_id, model, endpoint,
  stream, status, http_status, error_code, prompt_tokens, completion_tokens, usage_source,
  price_input_micro_per_1m, price_output_micro_per_1m, cost_micro_krw, latency_ms, ttft_ms, usage_note, voucher_id`;
const COLUMN_COUNT = 22;

function values(r: UsageRecord): SqlValue[] {
  return [
    r.requestId,
    r.createdAtMs,
    r.organizationId,
    r.apiKeyId,
    r.productId,
    r.deploymentId,
    r.model,
    r.endpoint,
    r.stream ? 1 : 0,
    r.status,
    r.httpStatus,
    r.errorCode,
    r.promptTokens,
    r.completionTokens,
    r.usageSource,
    r.priceInputMicroPer1M,
    r.priceOutputMicroPer1M,
    r.costMicroKrw,
    r.latencyMs,
    r.ttftMs,
    // lines journaled before the column existed have none
    r.usageNote ?? null,
    r.voucherId ?? null,
  ];
}

export const MAX_BATCH = 200;
const insertSql = new Map<number, string>();
function batchInsertSql(rows: number): string {
  let sql = insertSql.get(rows);
  if (!sql) {
    const tuple = `(${new Array(COLUMN_COUNT).fill('?').join(', ')})`;
    // The request id is the key: appending the same request twice (a replay after a crash) adds nothing.
    sql = `INSERT INTO usage_events (${COLUMNS}) VALUES ${new Array(rows).fill(tuple).join(', ')}`;
    insertSql.set(rows, sql);
  }
  return sql;
}

const ATTEMPT_TUPLE = '(?, ?, ?, ?, ?, ?, ?, ?, ?)';

function attemptRows(records: readonly UsageRecord[]): SqlValue[][] {
  const rows: SqlValue[][] = [];
  for (const r of records) {
    if (!r.attempts) continue;
    r.attempts.forEach((a, n) => {
      rows.push([
        r.requestId,
        n + 1,
        r.createdAtMs,
        a.productId,
        a.model,
        a.deploymentId,
        a.outcome,
        a.httpStatus,
        a.durationMs,
      ]);
    });
  }
  return rows;
}

/** What posting a record needs of it: its daily sums and its charge. */
export type PostableUsage = Pick<
  UsageRecord,
  | 'requestId'
  | 'createdAtMs'
  | 'organizationId'
  | 'apiKeyId'
  | 'productId'
  | 'model'
  | 'promptTokens'
  | 'completionTokens'
  | 'costMicroKrw'
  | 'voucherId'
>;

const DAILY_TUPLE = '(?, ?, ?, ?, ?, ?, ?, ?, ?)';

/**
 * Adds records to `usage_daily` (migration 020): one row per Korean day, organisation, product, model
 * and key, upserted in key order so that two writers touching the same rows queue instead of
 * deadlocking.
 */
async function addToDailyUsage(db: SqlExecutor, records: readonly PostableUsage[]): Promise<void> {
  if (records.length === 0) return;
  const sums = new Map<
    string,
    { key: SqlValue[]; requests: number; prompt: number; completion: number; cost: bigint }
  >();
  for (const r of records) {
    const day = dayIndex(r.createdAtMs);
    const id = `${day}\u0000${r.organizationId}\u0000${r.productId}\u0000${r.model}\u0000${r.apiKeyId}`;
    let s = sums.get(id);
    if (s === undefined) {
      s = {
        key: [day, r.organizationId, r.productId, r.model, r.apiKeyId],
        requests: 0,
        prompt: 0,
        completion: 0,
        cost: 0n,
      };
      sums.set(id, s);
    }
    s.requests++;
    s.prompt += r.promptTokens;
    s.completion += r.completionTokens;
    s.cost += r.costMicroKrw;
  }
  const rows = [...sums.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, s]) => s);
  for (const batch of rowBatches(rows, MAX_BATCH)) {
    await db.run(
      `INSERT INTO usage_daily (day_number, organization_id, product_id, model, api_key_id, requests, prompt_tokens,
         completion_tokens, cost_micro_krw) VALUES ${new Array(batch.length).fill(DAILY_TUPLE).join(', ')}
       ON CONFLICT (day_number, organization_id, product_id, model, api_key_id) DO UPDATE SET
         requests = usage_daily.requests + excluded.requests,
         prompt_tokens = usage_daily.prompt_tokens + excluded.prompt_tokens,
         completion_tokens = usage_daily.completion_tokens + excluded.completion_tokens,
         cost_micro_krw = usage_daily.cost_micro_krw + excluded.cost_micro_krw`,
      batch.flatMap((s) => [...s.key, s.requests, s.prompt, s.completion, s.cost]),
    );
  }
}

/**
 * Posts what follows from records newly inserted into `usage_events`: their daily sums (`usage_daily`)
 * and their charges to the ledger (billing/ledger.ts, with the voucher alerts they raise), inside the
 * caller's transaction. Each record must be posted exactly once: by the transaction that inserts it
 * (`insertUsageRecords`, SQLite), or by the one that claims it from `usage_uncharged`
 * (billing/usage-charger.ts, PostgreSQL; decision 0021).
 */
export async function postUsage(
  tx: SqlExecutor,
  dialect: Dialect,
  records: readonly PostableUsage[],
): Promise<void> {
  if (records.length === 0) return;
  await addToDailyUsage(tx, records);
  await chargeUsage(
    tx,
    dialect,
    records.map((r) => ({
      requestId: r.requestId,
      createdAtMs: r.createdAtMs,
      organizationId: r.organizationId,
      productId: r.productId,
      voucherId: r.voucherId ?? null,
      costMicroKrw: r.costMicroKrw,
    })),
  );
}

/**
 * Inserts records and their attempts idempotently, at most MAX_BATCH rows a statement, and posts them
 * (daily sums, ledger charges: `postUsage`). When any record has attempts or a cost, call this inside
 * a transaction so a record never lands without them or without its charge.
 */
export async function insertUsageRecords(
  db: SqlExecutor,
  records: readonly UsageRecord[],
  dialect: Dialect,
): Promise<void> {
  // only what this insert added is posted: a replayed record was posted by the insert that added it
  const added = new Set<string>();
  for (const batch of rowBatches(records, MAX_BATCH)) {
    for (const id of await insertNew(
      db,
      dialect,
      'request_id',
      batchInsertSql(batch.length),
      batch.flatMap(values),
      batch.map((r) => r.requestId),
    ))
      added.add(id);
  }
  const attempts = attemptRows(records);
  for (const batch of rowBatches(attempts, MAX_BATCH)) {
    await db.run(
      `INSERT INTO usage_attempts (request_id, attempt, created_at, product_id, model, deployment_id, outcome,
         http_status, duration_ms) VALUES ${new Array(batch.length).fill(ATTEMPT_TUPLE).join(', ')}
       ON CONFLICT (request_id, attempt) DO NOTHING`,
      batch.flat(),
    );
  }
  await postUsage(
    db,
    dialect,
    records.filter((r) => added.has(r.requestId)),
  );
}

const recordSql = new Map<number, string>();

/**
 * PostgreSQL (decision 0021): records, their attempts and their rows in `usage_uncharged` in one
 * statement — one round trip and one commit, which is all a response waits for. Returns the request ids
 * it added (a replayed record adds nothing: it was queued for its charge when it was first inserted).
 * The charge, daily sums and alerts are posted right after, off the response path (usage-charger.ts).
 */
export async function recordForCharging(db: SqlExecutor, records: readonly UsageRecord[]): Promise<string[]> {
  // not a RangeError: that would read as the records' own fault (isRecordProblem) and set them aside
  if (records.length > MAX_BATCH) throw new Error(`at most ${MAX_BATCH} records a statement`);
  const attempts = attemptRows(records);
  let sql = attempts.length === 0 ? recordSql.get(records.length) : undefined;
  if (sql === undefined) {
    const tuple = `(${new Array(COLUMN_COUNT).fill('?').join(', ')})`;
    sql = `WITH added AS (
        INSERT INTO usage_events (${COLUMNS}) VALUES ${new Array(records.length).fill(tuple).join(', ')}
        ON CONFLICT (request_id) DO NOTHING RETURNING request_id
      )${
        attempts.length === 0
          ? ''
          : `, attempts AS (
        INSERT INTO usage_attempts (request_id, attempt, created_at, product_id, model, deployment_id, outcome,
          http_status, duration_ms) VALUES ${new Array(attempts.length).fill(ATTEMPT_TUPLE).join(', ')}
        ON CONFLICT (request_id, attempt) DO NOTHING
      )`
      }
      INSERT INTO usage_uncharged (request_id, recorded_at)
        SELECT request_id, CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT) FROM added
      RETURNING request_id`;
    // the common shape (no attempts) is cached; one with attempts is rare and varies
    if (attempts.length === 0) recordSql.set(records.length, sql);
  }
  const params = records.flatMap(values);
  for (const a of attempts) params.push(...a);
  const rows = await db.all<{ request_id: string }>(sql, params);
  return rows.map((r) => r.request_id);
}

/** One record as one JSON line (money as decimal strings), for the file journal. */
export function recordToLine(r: UsageRecord): string {
  // no replacer function: JSON.stringify calls one for every key, a measurable cost per request
  return `${JSON.stringify({
    ...r,
    priceInputMicroPer1M: r.priceInputMicroPer1M.toString(),
    priceOutputMicroPer1M: r.priceOutputMicroPer1M.toString(),
    costMicroKrw: r.costMicroKrw.toString(),
  })}\n`;
}

export function lineToRecord(line: string): UsageRecord {
  const r = JSON.parse(line) as UsageRecord & Record<string, unknown>;
  r.priceInputMicroPer1M = BigInt(r.priceInputMicroPer1M as unknown as string);
  r.priceOutputMicroPer1M = BigInt(r.priceOutputMicroPer1M as unknown as string);
  r.costMicroKrw = BigInt(r.costMicroKrw as unknown as string);
  return r;
}

/**
 * Where usage records go, durably, before a response completes. `append` resolves once the record
 * would survive the process being killed; `sync` resolves once every record appended so far can be
 * read from `usage_events` and is posted — charged to the ledger, in the daily sums, its alerts raised
 * (what usage queries and budget holds call first, so this replica reads its own writes); `syncAll`
 * also posts what other replicas recorded and have not posted yet (decision 0021: closing a month or a
 * programme, and reads that must show every call a client saw complete).
 */
export interface UsageJournal {
  append(record: UsageRecord): Promise<void>;
  sync(): Promise<void>;
  syncAll(): Promise<void>;
  /**
   * Resolves once the charge of a record this replica appended is in the ledger, posted by any replica
   * (PostgreSQL: shared holds settle then, decision 0021). SQLite's journal: at once, as before.
   */
  whenCharged(requestId: string): Promise<void>;
  close(): Promise<void>;
}

/** A usage record the database would not take, set aside in `usage_rejected`. */
export interface RejectedUsage {
  requestId: string;
  reason: string;
}

/**
 * Whether a failed insert is the record's own fault (a value the schema refuses: a CHECK, a number out
 * of range, a malformed value) rather than the database's (down, busy, out of disk). Only the former is
 * set aside; the latter is retried, so a database outage never sends good records to the side table.
 */
export function isRecordProblem(error: unknown): boolean {
  if (error instanceof RangeError || error instanceof TypeError) return true;
  const code = String((error as { code?: unknown } | null)?.code ?? '');
  // PostgreSQL: class 22 (data exception, e.g. 22003 numeric out of range) and 23 (integrity)
  if (/^2[23][0-9A-Z]{3}$/.test(code)) return true;
  return /^SQLITE_(CONSTRAINT|MISMATCH|TOOBIG|RANGE)/.test(code);
}

function reasonOf(error: unknown): string {
  return String((error as Error)?.message ?? error).slice(0, 500);
}

/** Sets one record (or an unreadable journal line) aside, once; the request id is the key. */
export async function setAsideUsage(
  db: SqlExecutor,
  requestId: string,
  source: string,
  reason: string,
  record: string,
): Promise<void> {
  await db.run(
    `INSERT INTO usage_rejected (request_id, rejected_at, source, reason, record) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (request_id) DO NOTHING`,
    [requestId, Date.now(), source, reason.slice(0, 500), record],
  );
}

/** The records, their attempts, their daily sums and their charges land together or not at all. */
function insertAtomically(db: Database, records: readonly UsageRecord[]): Promise<void> {
  return db.transaction((tx) => insertUsageRecords(tx, records, db.dialect));
}

/**
 * Applies records in one transaction; when that fails, row by row, each in its own transaction, and a
 * row the database refuses for its own values is set aside in `usage_rejected` instead of blocking
 * every record after it (one answer with `prompt_tokens: 1e300` once stopped the SQLite applier for
 * ever; on PostgreSQL a count of 3e9 dropped a whole group-commit batch of other organisations'
 * records). Throws when the database itself fails: the caller retries the same records later.
 * `insert` makes a group of records durable all or nothing: by default with their charges.
 */
export async function applyUsageRecords(
  db: Database,
  records: readonly UsageRecord[],
  source: string,
  insert: (db: Database, records: readonly UsageRecord[]) => Promise<void> = insertAtomically,
): Promise<RejectedUsage[]> {
  try {
    await insert(db, records);
    return [];
  } catch (error) {
    if (records.length === 1 && !isRecordProblem(error)) throw error;
  }
  const rejected: RejectedUsage[] = [];
  let applied = 0;
  for (const record of records) {
    try {
      await insert(db, [record]);
      applied++;
    } catch (error) {
      // "busy" tells a caller nothing was applied (a 503 to send again): not so once rows before it were
      if (applied > 0 && isStorageBusy(error))
        throw new Error(`usage records partly applied (${applied} of ${records.length}): ${String(error)}`);
      if (!isRecordProblem(error)) throw error;
      const reason = reasonOf(error);
      await setAsideUsage(db, record.requestId, source, reason, recordToLine(record).trimEnd());
      rejected.push({ requestId: record.requestId, reason });
    }
  }
  return rejected;
}

interface Pending {
  record: UsageRecord;
  resolve: () => void;
  reject: (error: unknown) => void;
}

const DONE = Promise.resolve();

/**
 * The database as the journal: records are group-committed straight into `usage_events`. Those that
 * arrive while a write is in flight go together in the next multi-row insert, so under load one round
 * trip serves many requests while an idle hub still writes each record at once. Any replica may die at
 * any moment and lose nothing, because nothing lives on its own disk. A record the database refuses is
 * set aside (`usage_rejected`, reported through `onRejected`) and its batch mates still land.
 *
 * On PostgreSQL a response waits for one statement only — the records, their attempts and their rows
 * in `usage_uncharged` — and a `UsageCharger` posts their charges right after, off the response path
 * (decision 0021). On SQLite (in memory: a file database has the file journal) the records are posted
 * in the transaction that inserts them, as before.
 */
export class DatabaseUsageJournal implements UsageJournal {
  private queue: Pending[] = [];
  private flushing: Promise<void> | undefined;
  private appended = 0;
  private readonly flushed = new Progress();
  private readonly charger: UsageCharger | null;

  constructor(
    private readonly db: Database,
    private readonly onRejected: (rejected: RejectedUsage) => void = () => {},
    onError: (message: string, error: unknown) => void = () => {},
    charging: Partial<ChargerSettings> = {},
  ) {
    this.charger = db.dialect === 'postgres' ? new UsageCharger(db, onRejected, onError, charging) : null;
  }

  append(record: UsageRecord): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ record, resolve, reject });
      this.appended++;
      this.flushing ??= this.flush();
    });
  }

  async sync(): Promise<void> {
    // a group commit that never pauses under load must not keep `sync` waiting: only what came before
    await this.flushed.until(this.appended);
    await this.charger?.sync();
  }

  async syncAll(): Promise<void> {
    await this.flushed.until(this.appended);
    await this.charger?.syncAll();
  }

  whenCharged(requestId: string): Promise<void> {
    return this.charger === null ? DONE : this.charger.whenCharged(requestId);
  }

  /** Records this replica made durable whose charge is not posted yet (a metric). */
  unchargedCount(): number {
    return this.charger?.unchargedCount() ?? 0;
  }

  async close(): Promise<void> {
    await this.flushed.until(this.appended);
    await this.charger?.close();
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, MAX_BATCH);
      try {
        const records = batch.map((p) => p.record);
        let rejected: RejectedUsage[];
        const charger = this.charger;
        if (charger === null) {
          rejected = await applyUsageRecords(this.db, records, 'database journal');
        } else {
          rejected = await applyUsageRecords(this.db, records, 'database journal', async (db, some) => {
            // queued for their charge before any append resolves: a settle asks for it right after
            charger.add(await recordForCharging(db, some));
          });
        }
        for (const r of rejected) this.onRejected(r);
        for (const p of batch) p.resolve();
      } catch (error) {
        for (const p of batch) p.reject(error);
      }
      this.flushed.advance(batch.length);
    }
    this.flushing = undefined;
  }
}
