/**
 * A call layer in one process with nothing real underneath but the code under test: a scripted
 * adapter, an in-memory journal, counting admission, guard and observer. For the unit tests of
 * src/calls/ (the integration tests in test/ drive the real hub over HTTP).
 */
import type { Caller } from '../accounts/key-cache.ts';
import { Meter } from '../billing/meter.ts';
import type { UsageJournal, UsageRecord } from '../billing/usage-journal.ts';
import type { CatalogSnapshot, RoutableDeployment, RoutableProduct } from '../catalog/catalog-snapshot.ts';
import type { Admission, AdmissionDecision } from '../limits/admission.ts';
import { OrganizationConcurrency } from '../limits/concurrency.ts';
import { createLogger } from '../observability/logger.ts';
import { createMetrics } from '../observability/metrics.ts';
import type {
  CallOptions,
  ChatStreamPart,
  CompletedCall,
  JsonObject,
  ProviderAdapter,
  UpstreamTarget,
} from '../providers/adapter.ts';
import { ALL_FEATURES } from '../providers/features.ts';
import { Router } from '../routing/router.ts';
import { CallLayer, type CallSettings } from './call-layer.ts';
import type { Guard, GuardSession } from './guard.ts';
import type { CallObserver } from './observer.ts';

export const caller: Caller = {
  keyId: 'key_1',
  organizationId: 'org_1',
  organizationName: 'org',
  organizationClass: 'sme',
  allowedModels: null,
  fallbackModels: null,
  maxConcurrentRequests: null,
};

export function deployment(id: string, extra: Partial<RoutableDeployment> = {}): RoutableDeployment {
  return {
    id,
    adapter: 'scripted',
    baseUrl: 'http://x',
    apiKey: null,
    upstreamModel: `up-${id}`,
    weight: 1,
    priority: 0,
    features: ALL_FEATURES,
    maxConcurrent: 100,
    target: { deploymentId: id, baseUrl: 'http://x', apiKey: null, upstreamModel: `up-${id}` },
    ...extra,
  };
}

export function product(
  model: string,
  deployments: RoutableDeployment[],
  extra: Partial<RoutableProduct> = {},
) {
  const p: RoutableProduct = {
    id: `prd_${model}`,
    model,
    displayName: model,
    supplierId: 'sup',
    supplierName: 'sup',
    modality: 'text',
    residency: 'domestic',
    contextWindow: 8192,
    createdAtSeconds: 0,
    prices: { inputMicroPer1M: 1_000_000_000n, outputMicroPer1M: 3_000_000_000n },
    fallbackModels: [],
    routingStrategy: 'weighted',
    deployments,
    ...extra,
  };
  return p;
}

/** What the scripted adapter does for one call. */
export type Script =
  | { answer: string; usage?: { promptTokens: number; completionTokens: number } | null }
  | { throws: unknown }
  | {
      stream: string[];
      usage?: { promptTokens: number; completionTokens: number } | null;
      breakAfter?: number;
      delayMs?: number;
    };

export class ScriptedAdapter implements ProviderAdapter {
  readonly name = 'scripted';
  readonly params = {
    chat: new Set(['model', 'messages', 'stream', 'stream_options', 'max_tokens', 'n', 'tools']),
    embeddings: new Set(['model', 'input']),
  };
  readonly scripts: Script[] = [];
  calls = 0;
  /** The deployment of every call made, in order. */
  readonly deployments: string[] = [];
  features(_target: UpstreamTarget): number {
    return ALL_FEATURES;
  }
  private next(): Script {
    this.calls++;
    return this.scripts.shift() ?? { answer: 'ok', usage: { promptTokens: 5, completionTokens: 1 } };
  }
  async chat(target: UpstreamTarget, _request: JsonObject, _options: CallOptions): Promise<CompletedCall> {
    this.deployments.push(target.deploymentId);
    const s = this.next();
    if ('throws' in s) throw s.throws;
    if ('stream' in s) throw new Error('scripted a stream for a plain call');
    const usage = s.usage === undefined ? { promptTokens: 5, completionTokens: 1 } : s.usage;
    return {
      body: {
        id: 'chatcmpl-1',
        object: 'chat.completion',
        created: 1,
        model: target.upstreamModel,
        choices: [{ index: 0, message: { role: 'assistant', content: s.answer }, finish_reason: 'stop' }],
        ...(usage && {
          usage: { prompt_tokens: usage.promptTokens, completion_tokens: usage.completionTokens },
        }),
      },
      usage,
    };
  }
  async chatStream(target: UpstreamTarget, _request: JsonObject, options: CallOptions) {
    const s = this.next();
    if ('throws' in s) throw s.throws;
    if (!('stream' in s)) throw new Error('scripted a plain answer for a stream');
    return streamOf(target, s, options.signal);
  }
  async embeddings(
    _target: UpstreamTarget,
    _request: JsonObject,
    _options: CallOptions,
  ): Promise<CompletedCall> {
    const s = this.next();
    if ('throws' in s) throw s.throws;
    return {
      body: { object: 'list', data: [{ object: 'embedding', index: 0, embedding: [0.1] }], model: 'e' },
      usage: { promptTokens: 3, completionTokens: 0 },
    };
  }
}

async function* streamOf(
  target: UpstreamTarget,
  s: Extract<Script, { stream: string[] }>,
  signal: AbortSignal,
): AsyncGenerator<ChatStreamPart> {
  const { UpstreamError } = await import('../providers/adapter.ts');
  const chunk = (delta: JsonObject, finish: string | null = null): JsonObject => ({
    id: 'chatcmpl-s',
    object: 'chat.completion.chunk',
    created: 1,
    model: target.upstreamModel,
    choices: [{ index: 0, delta, finish_reason: finish }],
  });
  let i = 0;
  for (const piece of s.stream) {
    if (s.breakAfter !== undefined && i === s.breakAfter) throw new UpstreamError('protocol', 'broke off');
    if (s.delayMs) {
      await new Promise((resolve) => setTimeout(resolve, s.delayMs));
    }
    if (signal.aborted) {
      throw new UpstreamError(
        (signal.reason as { name?: string })?.name === 'TimeoutError' ? 'timeout' : 'cancelled',
        'aborted',
      );
    }
    yield { type: 'chunk', chunk: chunk({ content: piece }) };
    i++;
  }
  yield { type: 'chunk', chunk: chunk({}, 'stop') };
  const usage = s.usage === undefined ? { promptTokens: 5, completionTokens: s.stream.length } : s.usage;
  if (usage) {
    yield {
      type: 'usage',
      usage,
      chunk: {
        ...chunk({}),
        choices: [],
        usage: { prompt_tokens: usage.promptTokens, completion_tokens: usage.completionTokens },
      },
    };
  }
  yield { type: 'done' };
}

/** Counts every pair so a test can check that each opened thing closed exactly once. */
export class CountingObserver implements CallObserver {
  events: string[] = [];
  started = 0;
  ended = 0;
  stagesOpen = 0;
  attemptsOpen = 0;
  callStarted(): void {
    this.started++;
    this.events.push('call+');
  }
  stageStarted(_c: unknown, stage: string): void {
    this.stagesOpen++;
    this.events.push(`${stage}+`);
  }
  stageEnded(_c: unknown, stage: string, error: string | null): void {
    this.stagesOpen--;
    this.events.push(`${stage}-${error ? `(${error})` : ''}`);
  }
  attemptStarted(): void {
    this.attemptsOpen++;
    this.events.push('attempt+');
  }
  attemptEnded(): void {
    this.attemptsOpen--;
    this.events.push('attempt-');
  }
  firstToken(): void {
    this.events.push('first-token');
  }
  callEnded(_c: unknown, end: { httpStatus: number }): void {
    this.ended++;
    this.events.push(`call-(${end.httpStatus})`);
  }
}

export class CountingAdmission implements Admission {
  admitted = 0;
  settled: UsageRecord[] = [];
  released = 0;
  throws: unknown = undefined;
  refuse = false;
  refuseReroute = new Set<string>();
  admit(): AdmissionDecision {
    if (this.throws !== undefined) throw this.throws;
    if (this.refuse) return { admitted: false, status: 429, code: 'rate_limited', message: 'slow down' };
    this.admitted++;
    let done = false;
    const once = () => {
      if (done) throw new Error('ticket closed twice');
      done = true;
    };
    return {
      admitted: true,
      ticket: {
        reroute: (p) =>
          this.refuseReroute.has(p.model) ? { status: 403, code: 'residency', message: 'not allowed' } : null,
        settle: (record) => {
          once();
          this.settled.push(record);
        },
        release: () => {
          once();
          this.released++;
        },
      },
    };
  }
}

export class MemoryJournal implements UsageJournal {
  records: UsageRecord[] = [];
  failing: unknown = undefined;
  async append(record: UsageRecord): Promise<void> {
    if (this.failing !== undefined) throw this.failing;
    this.records.push(record);
  }
  async sync(): Promise<void> {}
  async syncAll(): Promise<void> {}
  async whenCharged(_requestId: string): Promise<void> {}
  async close(): Promise<void> {}
}

/** A guard whose every step can be told to throw; counts sessions begun and ended. */
export class TestGuard implements Guard {
  begun = 0;
  ended = 0;
  throwAt: 'begin' | 'completed' | 'chunk' | null = null;
  refuse = false;
  begin() {
    if (this.throwAt === 'begin') throw new Error('guard begin failed');
    if (this.refuse)
      return {
        refused: { status: 400, type: 'invalid_request_error', code: 'pii_blocked', message: 'blocked' },
      };
    this.begun++;
    const guard = this;
    const session: GuardSession = {
      request: { model: 'm', messages: [{ role: 'user', content: '[masked]' }] },
      completed(body) {
        if (guard.throwAt === 'completed') throw new Error('guard completed failed');
        return body;
      },
      chunk(chunk) {
        if (guard.throwAt === 'chunk') throw new Error('guard chunk failed');
        return chunk;
      },
      flush: () => null,
      end() {
        guard.ended++;
      },
    };
    return session;
  }
}

export function createKit(products: RoutableProduct[], settings: Partial<CallSettings> = {}) {
  const adapter = new ScriptedAdapter();
  const admission = new CountingAdmission();
  const observer = new CountingObserver();
  const journal = new MemoryJournal();
  const guard = new TestGuard();
  const metrics = createMetrics();
  const logger = createLogger('silent');
  const concurrency = new OrganizationConcurrency();
  const router = new Router({ retries: 1, baseDelayMs: 0, queueTimeoutMs: 200, random: () => 0 });
  const byModel = new Map(products.map((p) => [p.model, p]));
  const layer = new CallLayer({
    catalog: { byModel: (m: string) => byModel.get(m) } as unknown as CatalogSnapshot,
    adapters: new Map([['scripted', adapter]]),
    router,
    admission,
    guard,
    observer,
    meter: new Meter(journal, metrics, logger),
    metrics,
    logger,
    concurrency,
    settings: {
      upstreamHeadersTimeoutMs: 1000,
      upstreamTotalTimeoutMs: 2000,
      upstreamIdleTimeoutMs: 1000,
      streamDrainMs: 200,
      organizationMaxConcurrent: 100,
      largeRequestTokens: 8192,
      logContent: false,
      abandonedStreamGraceMs: 100,
      ...settings,
    },
  });
  let n = 0;
  const input = (body: JsonObject, operation: 'chat' | 'embeddings' = 'chat') => ({
    requestId: `req_${++n}`,
    caller,
    operation,
    body,
    startedAt: performance.now(),
    startedAtMs: Date.now(),
    traceparent: undefined,
    tracestate: undefined,
  });
  return { layer, adapter, admission, observer, journal, guard, metrics, concurrency, router, input };
}
