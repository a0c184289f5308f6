import { z } from 'zod';
import { DAY_MS, dayIndex, dayStartMs, dayText, KST_OFFSET_MS } from '../kst.ts';
import type { Database, SqlValue } from '../storage/database.ts';
import { dateOrTimestamp, parseInput } from '../validation.ts';
import { formatKrw } from './money.ts';

const usageQuery = z.strictObject({
  organizationId: z.string().min(1).optional(),
  productId: z.string().min(1).optional(),
  keyId: z.string().min(1).optional(),
  from: dateOrTimestamp.optional(),
  /** Exclusive. */
  to: dateOrTimestamp.optional(),
  groupBy: z.enum(['day', 'product', 'key', 'organization']).optional(),
});

export interface UsageTotals {
  requests: number;
  promptTokens: number;
  completionTokens: number;
  costKrw: string;
  costMicroKrw: string;
}

export interface UsageRow extends UsageTotals {
  day?: string;
  productId?: string;
  model?: string;
  keyId?: string;
  organizationId?: string;
}

const GROUPS = {
  day: { select: 'day_number', by: 'day_number' },
  product: { select: 'product_id, model', by: 'product_id, model' },
  key: { select: 'api_key_id', by: 'api_key_id' },
  organization: { select: 'organization_id', by: 'organization_id' },
} as const;

function totals(r: Record<string, unknown>): UsageTotals {
  const micro = BigInt((r.cost as string | null) ?? '0');
  return {
    requests: Number(r.requests ?? 0),
    promptTokens: Number(r.prompt_tokens ?? 0),
    completionTokens: Number(r.completion_tokens ?? 0),
    costKrw: formatKrw(micro),
    costMicroKrw: micro.toString(),
  };
}

/**
 * Whose usage a caller may read (docs/roles.md): records of these organisations, or of these
 * products; undefined reads everything (the operator).
 */
export interface UsageScope {
  organizationIds: readonly string[];
  productIds: readonly string[];
}

function scopeWhere(scope: UsageScope | undefined, where: string[], params: SqlValue[]): void {
  if (!scope) return;
  const any: string[] = [];
  const list = (ids: readonly string[]) => ids.map(() => '?').join(', ');
  if (scope.organizationIds.length > 0) any.push(`organization_id IN (${list(scope.organizationIds)})`);
  if (scope.productIds.length > 0) any.push(`product_id IN (${list(scope.productIds)})`);
  where.push(any.length > 0 ? `(${any.join(' OR ')})` : '1 = 0');
  params.push(...scope.organizationIds, ...scope.productIds);
}

/**
 * The KST days wholly inside [from, to): those are read from `usage_daily`; the rest of the range
 * (a partial first or last day, when the range is given to the millisecond) from the raw records.
 */
function wholeDays(
  from: number | undefined,
  to: number | undefined,
): { first: number | null; end: number | null } {
  // the first day that begins at or after `from`; the day `to` falls in, which begins at or before it
  const first = from === undefined ? null : Math.ceil((from + KST_OFFSET_MS) / DAY_MS);
  const end = to === undefined ? null : dayIndex(to);
  return { first, end };
}

/**
 * Aggregates usage; every money figure is an exact sum of integer micro-won. Whole days come from the
 * daily rollup (migration 020), kept in the records' own transaction, so a query over months reads a
 * few thousand rows however many millions of records there are; the partial days at the edges of a
 * range given to the millisecond come from the records themselves.
 */
export async function queryUsage(
  db: Database,
  input: unknown,
  scope?: UsageScope,
): Promise<{ rows: UsageRow[]; totals: UsageTotals }> {
  const q = parseInput(usageQuery, input);
  const common: string[] = [];
  const commonParams: SqlValue[] = [];
  scopeWhere(scope, common, commonParams);
  const add = (sql: string, value: SqlValue | undefined) => {
    if (value === undefined) return;
    common.push(sql);
    commonParams.push(value);
  };
  add('organization_id = ?', q.organizationId);
  add('product_id = ?', q.productId);
  add('api_key_id = ?', q.keyId);

  const { first, end } = wholeDays(q.from, q.to);
  // rollup rows: whole days inside the range
  const dailyWhere = [...common];
  const dailyParams = [...commonParams];
  if (first !== null) {
    dailyWhere.push('day_number >= ?');
    dailyParams.push(first);
  }
  if (end !== null) {
    dailyWhere.push('day_number < ?');
    dailyParams.push(end);
  }
  // raw rows: inside the range but outside those whole days
  const rawWhere = [...common];
  const rawParams = [...commonParams];
  if (q.from !== undefined) {
    rawWhere.push('created_at >= ?');
    rawParams.push(q.from);
  }
  if (q.to !== undefined) {
    rawWhere.push('created_at < ?');
    rawParams.push(q.to);
  }
  const edges: string[] = [];
  if (first !== null) {
    edges.push('created_at < ?');
    rawParams.push(dayStartMs(first));
  }
  if (end !== null) {
    edges.push('created_at >= ?');
    rawParams.push(dayStartMs(end));
  }
  const emptyDays = first !== null && end !== null && end <= first;
  const where = (parts: string[]) => (parts.length > 0 ? `WHERE ${parts.join(' AND ')}` : '');
  let source: string;
  let params: SqlValue[];
  const rawSelect = `SELECT (created_at + ${KST_OFFSET_MS}) / ${DAY_MS} AS day_number, organization_id, product_id,
      model, api_key_id, 1 AS requests, prompt_tokens, completion_tokens, cost_micro_krw FROM usage_events`;
  if (emptyDays) {
    // the range lies within one day: the records alone
    source = `${rawSelect} ${where(rawWhere)}`;
    params = rawParams.slice(0, rawParams.length - edges.length);
  } else {
    const dailySelect = `SELECT day_number, organization_id, product_id, model, api_key_id, requests, prompt_tokens,
        completion_tokens, cost_micro_krw FROM usage_daily ${where(dailyWhere)}`;
    source =
      edges.length === 0
        ? dailySelect
        : `${dailySelect} UNION ALL ${rawSelect} ${where([...rawWhere, `(${edges.join(' OR ')})`])}`;
    params = edges.length === 0 ? dailyParams : [...dailyParams, ...rawParams];
  }
  const measures = `SUM(requests) AS requests, SUM(prompt_tokens) AS prompt_tokens,
    SUM(completion_tokens) AS completion_tokens, CAST(SUM(cost_micro_krw) AS TEXT) AS cost`;
  const total = await db.get<Record<string, unknown>>(`SELECT ${measures} FROM (${source}) u`, params);
  let rows: UsageRow[] = [];
  if (q.groupBy) {
    const group = GROUPS[q.groupBy];
    const raw = await db.all<Record<string, unknown>>(
      `SELECT ${group.select}, ${measures} FROM (${source}) u GROUP BY ${group.by} ORDER BY ${group.by}`,
      params,
    );
    rows = raw.map((r) => {
      const row: UsageRow = totals(r);
      if (q.groupBy === 'day') row.day = dayText(Number(r.day_number));
      if (q.groupBy === 'product') Object.assign(row, { productId: r.product_id, model: r.model });
      if (q.groupBy === 'key') row.keyId = r.api_key_id as string;
      if (q.groupBy === 'organization') row.organizationId = r.organization_id as string;
      return row;
    });
  }
  return { rows, totals: totals(total ?? {}) };
}

const eventsQuery = z.strictObject({
  organizationId: z.string().min(1).optional(),
  requestId: z.string().min(1).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

/** Individual usage records, newest first: for audits and for finding one request by its id. */
export async function listUsageEvents(db: Database, input: unknown, scope?: UsageScope) {
  const q = parseInput(eventsQuery, input);
  const where: string[] = [];
  const params: SqlValue[] = [];
  scopeWhere(scope, where, params);
  if (q.organizationId) {
    where.push('organization_id = ?');
    params.push(q.organizationId);
  }
  if (q.requestId) {
    where.push('request_id = ?');
    params.push(q.requestId);
  }
  const rows = await db.all<Record<string, unknown>>(
    `SELECT request_id, created_at, organization_id, api_key_id, product_id, deployment_id, model, endpoint, stream,
            status, http_status, error_code, prompt_tokens, completion_tokens, usage_source, usage_note,
            CAST(cost_micro_krw AS TEXT) AS cost, latency_ms, ttft_ms,
            CAST(price_input_micro_per_1m AS TEXT) AS price_in, CAST(price_output_micro_per_1m AS TEXT) AS price_out
       FROM usage_events ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY created_at DESC, request_id DESC LIMIT ${q.limit}`,
    params,
  );
  const attempts = await attemptsOf(
    db,
    rows.map((r) => r.request_id as string),
  );
  return rows.map((r) => ({
    requestId: r.request_id as string,
    createdAt: new Date(Number(r.created_at)).toISOString(),
    organizationId: r.organization_id as string,
    keyId: r.api_key_id as string,
    productId: r.product_id as string,
    deploymentId: (r.deployment_id as string | null) ?? null,
    model: r.model as string,
    endpoint: r.endpoint as string,
    stream: Number(r.stream) === 1,
    status: r.status as string,
    httpStatus: Number(r.http_status),
    errorCode: (r.error_code as string | null) ?? null,
    promptTokens: Number(r.prompt_tokens),
    completionTokens: Number(r.completion_tokens),
    usageSource: r.usage_source as string,
    usageNote: (r.usage_note as string | null) ?? null,
    costKrw: formatKrw(BigInt(r.cost as string)),
    costMicroKrw: r.cost as string,
    // The prices this call was charged at: those in force when it was admitted (docs/billing.md).
    priceInputPer1M: formatKrw(BigInt(r.price_in as string)),
    priceOutputPer1M: formatKrw(BigInt(r.price_out as string)),
    latencyMs: Number(r.latency_ms),
    ttftMs: r.ttft_ms === null || r.ttft_ms === undefined ? null : Number(r.ttft_ms),
    attempts: attempts.get(r.request_id as string) ?? servedAtOnce(r),
  }));
}

export interface AttemptView {
  attempt: number;
  productId: string;
  model: string;
  deploymentId: string;
  outcome: string;
  httpStatus: number | null;
  /** Null for a request served by its first attempt: only the record's latency was kept. */
  durationMs: number | null;
}

/**
 * A request without attempt rows was served by its first attempt (see migration 004): that attempt
 * is the record. A record the upstream never accepted without rows predates attempts: none shown.
 */
function servedAtOnce(r: Record<string, unknown>): AttemptView[] {
  const deploymentId = r.deployment_id as string | null;
  if (deploymentId === null || Number(r.http_status) !== 200) return [];
  return [
    {
      attempt: 1,
      productId: r.product_id as string,
      model: r.model as string,
      deploymentId,
      outcome: 'ok',
      httpStatus: null,
      durationMs: null,
    },
  ];
}

async function attemptsOf(db: Database, requestIds: readonly string[]): Promise<Map<string, AttemptView[]>> {
  const byRequest = new Map<string, AttemptView[]>();
  if (requestIds.length === 0) return byRequest;
  const rows = await db.all<Record<string, unknown>>(
    `SELECT request_id, attempt, product_id, model, deployment_id, outcome, http_status, duration_ms
       FROM usage_attempts WHERE request_id IN (${requestIds.map(() => '?').join(', ')})
      ORDER BY request_id, attempt`,
    [...requestIds],
  );
  for (const r of rows) {
    const id = r.request_id as string;
    let list = byRequest.get(id);
    if (!list) {
      list = [];
      byRequest.set(id, list);
    }
    list.push({
      attempt: Number(r.attempt),
      productId: r.product_id as string,
      model: r.model as string,
      deploymentId: r.deployment_id as string,
      outcome: r.outcome as string,
      httpStatus: r.http_status === null || r.http_status === undefined ? null : Number(r.http_status),
      durationMs: Number(r.duration_ms),
    });
  }
  return byRequest;
}

const rejectedQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

/**
 * Usage records the database refused (or journal lines it could not read), newest first: set aside
 * so that every later record still lands, kept whole for an operator to examine and correct.
 */
export async function listRejectedUsage(db: Database, input: unknown) {
  const q = parseInput(rejectedQuery, input);
  const rows = await db.all<Record<string, unknown>>(
    `SELECT request_id, rejected_at, source, reason, record FROM usage_rejected
      ORDER BY rejected_at DESC, request_id DESC LIMIT ${q.limit}`,
  );
  return rows.map((r) => ({
    requestId: r.request_id as string,
    rejectedAt: new Date(Number(r.rejected_at)).toISOString(),
    source: r.source as string,
    reason: r.reason as string,
    record: r.record as string,
  }));
}
