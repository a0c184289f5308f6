import type { Database, SqlExecutor, SqlValue } from '../storage/database.ts';
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
   * Every upstream call, in order, when there was more than one that answered at once (see migration
   * 004); absent when the first attempt served, which the record itself describes.
   */
  attempts?: UsageAttempt[];
}

const COLUMNS = `request_id, created_at, organization_id, api_key_id, product_id, deployment_id, model, endpoint,
  stream, status, http_status, error_code, prompt_tokens, completion_tokens, usage_source,
  price_input_micro_per_1m, price_output_micro_per_1m, cost_micro_krw, latency_ms, ttft_ms`;
const COLUMN_COUNT = 20;

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
           ON CONFLICT (request_id) DO NOTHING`;
    insertSql.set(rows, sql);
  }
  return sql;
}

const ATTEMPT_TUPLE = '(?, ?, ?, ?, ?, ?, ?, ?, ?)';

/** Whether any of the records carries attempts (then the insert is two statements: one transaction). */
export function hasAttempts(records: readonly UsageRecord[]): boolean {
  return records.some((r) => r.attempts !== undefined && r.attempts.length > 0);
}

/**
 * Inserts records and their attempts idempotently, at most MAX_BATCH rows a statement. When any record
 * has attempts, call this inside a transaction so a record never lands without them.
 */
export async function insertUsageRecords(db: SqlExecutor, records: readonly UsageRecord[]): Promise<void> {
  for (let i = 0; i < records.length; i += MAX_BATCH) {
    const batch = records.slice(i, i + MAX_BATCH);
    await db.run(batchInsertSql(batch.length), batch.flatMap(values));
  }
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

interface Pending {
  record: UsageRecord;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * PostgreSQL: records are group-committed straight into `usage_events`. Those that arrive while a
 * write is in flight go together in the next multi-row insert, so under load one round trip serves
 * many requests while an idle hub still writes each record at once. The database is the journal:
 * any replica may die at any moment and lose nothing, because nothing lives on its own disk.
 */
export class DatabaseUsageJournal implements UsageJournal {
  private queue: Pending[] = [];
  private flushing: Promise<void> | undefined;

  constructor(private readonly db: Database) {}

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
        const records = batch.map((p) => p.record);
        if (hasAttempts(records)) await this.db.transaction((tx) => insertUsageRecords(tx, records));
        else await insertUsageRecords(this.db, records);
        for (const p of batch) p.resolve();
      } catch (error) {
        for (const p of batch) p.reject(error);
      }
    }
    this.flushing = undefined;
  }
}
