import type { Caller } from '../accounts/key-cache.ts';
import type { RoutableProduct } from '../catalog/catalog-snapshot.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { costOf } from './money.ts';
import type { UsageAttempt, UsageJournal, UsageRecord, UsageSource, UsageStatus } from './usage-journal.ts';

/** What a request's usage record says of who asked for what; fixed before the upstream call ends. */
export interface MeterBase {
  requestId: string;
  startedAtMs: number;
  /** performance.now() when the request arrived, for latency. */
  startedAt: number;
  caller: Caller;
  /** The product that served (a fallback's, when one answered). */
  product: RoutableProduct;
  endpoint: UsageRecord['endpoint'];
  stream: boolean;
  /** The upstream calls, when more than one answering at once (see `UsageRecord.attempts`). */
  attempts: UsageAttempt[] | undefined;
  /** The voucher admission held funds on (`UsageRecord.voucherId`). */
  voucherId: string | null;
}

/**
 * How the request ended. Kept apart from `MeterBase` on purpose: merging the two with an object
 * spread followed by more properties (`{ ...base, status, … }`) makes V8 11 create a fresh hidden
 * class for every property added, on every request — measured as ≈ 10 maps and descriptor arrays a
 * request, promoted to the old generation, which made the young-generation pauses 5× longer.
 */
export interface MeterOutcome {
  firstTokenAt: number | null;
  deploymentId: string | null;
  status: UsageStatus;
  httpStatus: number;
  errorCode: string | null;
  promptTokens: number;
  completionTokens: number;
  usageSource: UsageSource;
  /** Why the counts are an estimate although the upstream reported some (billing/usage-check.ts). */
  usageNote: string | null;
  /** Whether the tokens are charged: only requests that delivered their answer (or part of it). */
  chargeable: boolean;
}

/**
 * Turns the outcome of one request into its usage record, with the cost computed from the product's
 * prices at the time of the call, and makes it durable. The caller awaits this before it lets the
 * response complete.
 */
export class Meter {
  constructor(
    private readonly journal: UsageJournal,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
  ) {}

  async record(base: MeterBase, outcome: MeterOutcome): Promise<UsageRecord> {
    const now = performance.now();
    const { product } = base;
    const costMicroKrw = outcome.chargeable
      ? costOf(outcome.promptTokens, outcome.completionTokens, product.prices)
      : 0n;
    const record: UsageRecord = {
      requestId: base.requestId,
      createdAtMs: base.startedAtMs,
      organizationId: base.caller.organizationId,
      apiKeyId: base.caller.keyId,
      productId: product.id,
      deploymentId: outcome.deploymentId,
      model: product.model,
      endpoint: base.endpoint,
      stream: base.stream,
      status: outcome.status,
      httpStatus: outcome.httpStatus,
      errorCode: outcome.errorCode,
      promptTokens: outcome.promptTokens,
      completionTokens: outcome.completionTokens,
      usageSource: outcome.usageSource,
      priceInputMicroPer1M: product.prices.inputMicroPer1M,
      priceOutputMicroPer1M: product.prices.outputMicroPer1M,
      costMicroKrw,
      latencyMs: Math.round(now - base.startedAt),
      ttftMs: outcome.firstTokenAt === null ? null : Math.round(outcome.firstTokenAt - base.startedAt),
      usageNote: outcome.usageNote,
      voucherId: base.voucherId,
    };
    if (base.attempts) record.attempts = base.attempts;
    await this.journal.append(record);
    this.observe(record, now - base.startedAt, outcome.firstTokenAt, base.startedAt, outcome.chargeable);
    return record;
  }

  private observe(
    record: UsageRecord,
    latencyMs: number,
    firstTokenAt: number | null,
    startedAt: number,
    chargeable: boolean,
  ): void {
    const m = this.metrics;
    const product = record.model;
    m.requestDuration.labels(product, record.endpoint).observe(latencyMs / 1000);
    if (firstTokenAt !== null) m.timeToFirstToken.labels(product).observe((firstTokenAt - startedAt) / 1000);
    if (chargeable) {
      m.tokens.labels(product, 'prompt').inc(record.promptTokens);
      m.tokens.labels(product, 'completion').inc(record.completionTokens);
      // prom-client counters are doubles: exact up to 2^53 µ₩ (9 billion KRW) per process lifetime
      m.cost.labels(product).inc(Number(record.costMicroKrw));
    }
    if (this.logger.isLevelEnabled('info')) {
      this.logger.info(
        {
          requestId: record.requestId,
          organizationId: record.organizationId,
          keyId: record.apiKeyId,
          model: record.model,
          deploymentId: record.deploymentId,
          endpoint: record.endpoint,
          stream: record.stream,
          status: record.status,
          httpStatus: record.httpStatus,
          promptTokens: record.promptTokens,
          completionTokens: record.completionTokens,
          costMicroKrw: record.costMicroKrw.toString(),
          latencyMs: record.latencyMs,
          ttftMs: record.ttftMs,
        },
        'request',
      );
    }
  }
}
