import type { UsageAttempt, UsageRecord, UsageStatus } from '../billing/usage-journal.ts';
import type { RoutableProduct } from '../catalog/catalog-snapshot.ts';
import type { AdmissionRefusal } from '../limits/admission.ts';
import type { JsonObject, ProviderAdapter, UpstreamError } from '../providers/adapter.ts';
import { openAIUsage } from '../providers/openai-shapes.ts';
import type { Attempt } from '../routing/router.ts';
import type { CallError } from './errors.ts';
import type { CallOperation } from './observer.ts';

/**
 * Small facts a call derives from its parts for its answer, its record and its logs: the client error
 * of an admission refusal, the usage a client reads, the attempts a record keeps, statuses.
 */
export function admissionError(refusal: AdmissionRefusal): CallError {
  const headers: Record<string, string> = { ...refusal.headers };
  if (refusal.retryAfterSeconds !== undefined) headers['retry-after'] = String(refusal.retryAfterSeconds);
  return {
    status: refusal.status,
    // OpenAI answers an exhausted quota with 429 too, typed `insufficient_quota`: clients tell them apart by it
    type:
      refusal.type ??
      (refusal.status === 429 && refusal.code !== 'insufficient_quota'
        ? 'rate_limit_error'
        : 'insufficient_quota'),
    code: refusal.code,
    message: refusal.message,
    ...(Object.keys(headers).length > 0 && { headers }),
  };
}

/** Request fields the serving adapter does not pass on, comma-separated; null when none (common). */
export function ignoredParamsOf(
  adapter: ProviderAdapter,
  operation: CallOperation,
  body: JsonObject,
): string | null {
  const accepted = adapter.params[operation === 'chat' ? 'chat' : 'embeddings'];
  let ignored: string | null = null;
  for (const key in body) {
    if (!accepted.has(key)) ignored = ignored === null ? key : `${ignored}, ${key}`;
  }
  return ignored;
}

export function usageOf(operation: CallOperation, record: UsageRecord): JsonObject {
  if (operation === 'embeddings')
    return { prompt_tokens: record.promptTokens, total_tokens: record.promptTokens };
  return openAIUsage(record);
}

export function finishReasonsOf(answer: JsonObject): string[] | null {
  const choices = answer.choices;
  if (!Array.isArray(choices)) return null;
  const reasons: string[] = [];
  for (const c of choices) {
    const r = (c as { finish_reason?: unknown } | null)?.finish_reason;
    if (typeof r === 'string') reasons.push(r);
  }
  return reasons;
}

export function statusOf(error: UpstreamError): UsageStatus {
  if (error.kind === 'cancelled') return 'cancelled';
  if (error.kind === 'timeout') return 'timeout';
  return 'upstream_error';
}

export function kindOf(error: UpstreamError): string {
  return error.kind === 'http' ? String(error.details.status ?? 'http') : error.kind;
}

/** The upstream's own words, for the log only. */
export function describe(error: UpstreamError): string {
  const status = error.details.status;
  return `${error.kind}${status !== undefined ? ` ${status}` : ''}: ${error.message.slice(0, 500)}`;
}

/** The deployment a failure record names: the last one tried for the product asked. */
export function lastDeploymentOf(product: RoutableProduct, attempts: readonly Attempt[]): string | null {
  for (let i = attempts.length - 1; i >= 0; i--) {
    if (attempts[i]!.model === product.model) return attempts[i]!.deploymentId;
  }
  return null;
}

/**
 * The attempts to keep with the usage record: all of them, unless the first one served (then the
 * record itself is that attempt, and nothing extra is written on the common path).
 */
export function usageAttemptsOf(attempts: readonly Attempt[]): UsageAttempt[] | undefined {
  if (attempts.length === 0 || (attempts.length === 1 && attempts[0]!.error === null)) return undefined;
  return attempts.map((a) => ({
    productId: a.productId,
    model: a.model,
    deploymentId: a.deploymentId,
    outcome: a.error === null ? 'ok' : a.error.kind,
    httpStatus: a.error?.details.status ?? null,
    durationMs: Math.round(a.durationMs),
  }));
}
