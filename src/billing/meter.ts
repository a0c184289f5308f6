import type { Caller } from '../accounts/key-cache.ts';
import type { RoutableProduct } from '../catalog/catalog-snapshot.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { costOf } from './money.ts';
import type { UsageAttempt, UsageJournal, UsageRecord, UsageSource, UsageStatus } from './usage-journal.ts';

export interface MeterInput {
  requestId: string;
  startedAtMs: number;
  /** performance.now() when the request arrived, for latency. */
  startedAt: number;
  firstTokenAt: number | null;
  caller: Caller;
  product: RoutableProduct;
  deploymentId: string | null;
  endpoint: UsageRecord['endpoint'];
  stream: boolean;
  status: UsageStatus;
  httpStatus: number;
  errorCode: string | null;
  promptTokens: number;
  completionTokens: number;
  usageSource: UsageSource;
  /** Whether the tokens are charged: only requests that delivered their answer (or part of it). */
  chargeable: boolean;
  /** The upstream calls, when more than one answering at once (see `UsageRecord.attempts`). */
  attempts?: UsageAttempt[];
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

  async record(input: MeterInput): Promise<UsageRecord> {
    const now = performance.now();
    const { product } = input;
    const costMicroKrw = input.chargeable
      ? costOf(input.promptTokens, input.completionTokens, product.prices)
      : 0n;
    const record: UsageRecord = {
      requestId: input.requestId,
      createdAtMs: input.startedAtMs,
      organizationId: input.caller.organizationId,
      apiKeyId: input.caller.keyId,
      productId: product.id,
      deploymentId: input.deploymentId,
      model: product.model,
      endpoint: input.endpoint,
      stream: input.stream,
      status: input.status,
      httpStatus: input.httpStatus,
      errorCode: input.errorCode,
      promptTokens: input.promptTokens,
      completionTokens: input.completionTokens,
      usageSource: input.usageSource,
      priceInputMicroPer1M: product.prices.inputMicroPer1M,
      priceOutputMicroPer1M: product.prices.outputMicroPer1M,
      costMicroKrw,
      latencyMs: Math.round(now - input.startedAt),
      ttftMs: input.firstTokenAt === null ? null : Math.round(input.firstTokenAt - input.startedAt),
    };
    if (input.attempts) record.attempts = input.attempts;
    await this.journal.append(record);
    this.observe(record, now - input.startedAt, input);
    return record;
  }

  private observe(record: UsageRecord, latencyMs: number, input: MeterInput): void {
    const m = this.metrics;
    const product = record.model;
    m.requestDuration.labels(product, record.endpoint).observe(latencyMs / 1000);
    if (input.firstTokenAt !== null)
      m.timeToFirstToken.labels(product).observe((input.firstTokenAt - input.startedAt) / 1000);
    if (input.chargeable) {
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
