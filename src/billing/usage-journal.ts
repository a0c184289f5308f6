import type { Database, SqlValue } from '../storage/database.ts';
import type { MicroKrw } from './money.ts';

export type UsageStatus = 'ok' | 'upstream_error' | 'timeout' | 'cancelled' | 'rejected';
export type UsageSource = 'upstream' | 'estimate' | 'none';

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

const MAX_BATCH = 200;
const insertSql = new Map<number, string>();
function batchInsertSql(rows: number): string {
  let sql = insertSql.get(rows);
  if (!sql) {
    const tuple = `(${new Array(COLUMN_COUNT).fill('?').join(', ')})`;
    // The request id is the key: appending the same request twice (a retry after a crash) is a no-op.
    sql = `INSERT INTO usage_events (${COLUMNS}) VALUES ${new Array(rows).fill(tuple).join(', ')}
           ON CONFLICT (request_id) DO NOTHING`;
    insertSql.set(rows, sql);
  }
  return sql;
}

interface Pending {
  record: UsageRecord;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Appends usage records durably. `append` resolves only after the row is committed, and the hub
 * finishes a response only after that, so a response a client saw complete always has its record.
 *
 * SQLite: a local write costs microseconds, so each record is its own insert. PostgreSQL: a round
 * trip costs far more, so records that arrive while a write is in flight are committed together in
 * the next multi-row insert (group commit): under load, one round trip serves many requests.
 */
export class UsageJournal {
  private queue: Pending[] = [];
  private flushing = false;

  constructor(private readonly db: Database) {}

  append(record: UsageRecord): Promise<void> {
    if (this.db.dialect === 'sqlite') return this.db.run(batchInsertSql(1), values(record)).then(() => {});
    return new Promise((resolve, reject) => {
      this.queue.push({ record, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, MAX_BATCH);
      try {
        await this.db.run(
          batchInsertSql(batch.length),
          batch.flatMap((p) => values(p.record)),
        );
        for (const p of batch) p.resolve();
      } catch (error) {
        for (const p of batch) p.reject(error);
      }
    }
    this.flushing = false;
  }
}
