import type { Database, Dialect, SqlExecutor, SqlValue } from '../storage/database.ts';
import { chargeUsage } from './ledger.ts';
import type { MicroKrw } from './money.ts';

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
    // The request id is the key: appending the same request twice (a replay after a crash) is a no-op.
    sql = `INSERT INTO usage_events (${COLUMNS}) VALUES ${new Array(rows).fill(tuple).join(', ')}
           ON CONFLICT (request_id) DO NOTHING RETURNING request_id`;
    insertSql.set(rows, sql);
  }
  return sql;
}

const ATTEMPT_TUPLE = '(?, ?, ?, ?, ?, ?, ?, ?, ?)';

const KST_OFFSET_MS = 9 * 3600_000;
const DAY_MS = 86_400_000;
const DAILY_TUPLE = '(?, ?, ?, ?, ?, ?, ?, ?, ?)';

/**
 * Adds records to `usage_daily` (migration 020): one row per Korean day, organisation, product, model
 * and key, upserted in key order so that two writers touching the same rows queue instead of
 * deadlocking.
 */
async function addToDailyUsage(db: SqlExecutor, records: readonly UsageRecord[]): Promise<void> {
  if (records.length === 0) return;
  const sums = new Map<
    string,
    { key: SqlValue[]; requests: number; prompt: number; completion: number; cost: bigint }
  >();
  for (const r of records) {
    const day = Math.floor((r.createdAtMs + KST_OFFSET_MS) / DAY_MS);
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
  for (let i = 0; i < rows.length; i += MAX_BATCH) {
    const batch = rows.slice(i, i + MAX_BATCH);
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
 * Inserts records and their attempts idempotently, at most MAX_BATCH rows a statement, and charges
 * them to the ledger (billing/ledger.ts). When any record has attempts or a cost, call this inside a
 * transaction so a record never lands without them or without its charge.
 */
export async function insertUsageRecords(
  db: SqlExecutor,
  records: readonly UsageRecord[],
  dialect: Dialect,
): Promise<void> {
  // only what this insert added counts in the daily rollup: a replayed record is there already
  const added = new Set<string>();
  for (let i = 0; i < records.length; i += MAX_BATCH) {
    const batch = records.slice(i, i + MAX_BATCH);
    for (const row of await db.all<{ request_id: string }>(
      batchInsertSql(batch.length),
      batch.flatMap(values),
    ))
      added.add(row.request_id);
  }
  await addToDailyUsage(
    db,
    records.filter((r) => added.has(r.requestId)),
  );
  const attempts: SqlValue[][] = [];
  for (const r of records) {
    if (!r.attempts) continue;
    r.attempts.forEach((a, n) => {
      attempts.push([
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
  for (let i = 0; i < attempts.length; i += MAX_BATCH) {
    const batch = attempts.slice(i, i + MAX_BATCH);
    await db.run(
      `INSERT INTO usage_attempts (request_id, attempt, created_at, product_id, model, deployment_id, outcome,
         http_status, duration_ms) VALUES ${new Array(batch.length).fill(ATTEMPT_TUPLE).join(', ')}
       ON CONFLICT (request_id, attempt) DO NOTHING`,
      batch.flat(),
    );
  }
  // a record already there was charged in the transaction that inserted it: only the new ones are charged
  await chargeUsage(
    db,
    dialect,
    records
      .filter((r) => added.has(r.requestId))
      .map((r) => ({
        requestId: r.requestId,
        createdAtMs: r.createdAtMs,
        organizationId: r.organizationId,
        productId: r.productId,
        voucherId: r.voucherId ?? null,
        costMicroKrw: r.costMicroKrw,
      })),
  );
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
 * read from `usage_events` (what usage queries call first, so this replica reads its own writes).
 */
export interface UsageJournal {
  append(record: UsageRecord): Promise<void>;
  sync(): Promise<void>;
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
 */
export async function applyUsageRecords(
  db: Database,
  records: readonly UsageRecord[],
  source: string,
): Promise<RejectedUsage[]> {
  try {
    await insertAtomically(db, records);
    return [];
  } catch (error) {
    if (records.length === 1 && !isRecordProblem(error)) throw error;
  }
  const rejected: RejectedUsage[] = [];
  for (const record of records) {
    try {
      await insertAtomically(db, [record]);
    } catch (error) {
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

/**
 * PostgreSQL: records are group-committed straight into `usage_events`. Those that arrive while a
 * write is in flight go together in the next multi-row insert, so under load one round trip serves
 * many requests while an idle hub still writes each record at once. The database is the journal:
 * any replica may die at any moment and lose nothing, because nothing lives on its own disk. A record
 * the database refuses is set aside (`usage_rejected`, reported through `onRejected`) and its batch
 * mates still land.
 */
export class DatabaseUsageJournal implements UsageJournal {
  private queue: Pending[] = [];
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly db: Database,
    private readonly onRejected: (rejected: RejectedUsage) => void = () => {},
  ) {}

  append(record: UsageRecord): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ record, resolve, reject });
      this.flushing ??= this.flush();
    });
  }

  async sync(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  async close(): Promise<void> {
    await this.sync();
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, MAX_BATCH);
      try {
        const rejected = await applyUsageRecords(
          this.db,
          batch.map((p) => p.record),
          'database journal',
        );
        for (const r of rejected) this.onRejected(r);
        for (const p of batch) p.resolve();
      } catch (error) {
        for (const p of batch) p.reject(error);
      }
    }
    this.flushing = undefined;
  }
}
