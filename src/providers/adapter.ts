/**
 * The contract between the hub and one supplier protocol. Everything crossing it is in OpenAI's
 * wire shapes (the hub's canonical format); an adapter translates to and from its protocol and knows
 * nothing about keys, organisations or money.
 */
export interface UpstreamTarget {
  deploymentId: string;
  baseUrl: string;
  apiKey: string | null;
  upstreamModel: string;
  /**
   * A supplier admin set `baseUrl`: connect only to public addresses and the networks the operator
   * allows (providers/network.ts). Absent or false: the operator set it, and it is trusted as it is.
   */
  publicOnly?: boolean;
}

export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
}

/** A JSON object in OpenAI's shape; the HTTP layer validates requests, adapters own their fields. */
export type JsonObject = Record<string, unknown>;

export interface CallOptions {
  signal: AbortSignal;
  headersTimeoutMs: number;
  /**
   * Longest silence allowed once the headers arrived (between two chunks of a stream, or of a body):
   * a longer one ends the call as a `timeout`. 0 or absent: none (the total timeout still bounds it).
   */
  idleTimeoutMs?: number;
  /**
   * Extra request headers for the upstream (W3C `traceparent` / `tracestate` when tracing is on);
   * absent on the common path.
   */
  headers?: Record<string, string>;
}

export interface CompletedCall {
  /** OpenAI-shaped response body; `model` is rewritten to the product id by the caller. */
  body: JsonObject;
  /** The upstream's own counts; null when it gave none. */
  usage: TokenUsage | null;
}

export type ChatStreamPart =
  /** A `chat.completion.chunk` to forward as it is (the caller rewrites `model`). */
  | { type: 'chunk'; chunk: JsonObject }
  /** Usage as the upstream reported it; `chunk` is the chunk that carried it. */
  | { type: 'usage'; usage: TokenUsage; chunk: JsonObject }
  | { type: 'done' };

/**
 * The request fields an adapter passes to its supplier, per operation (OpenAI names). The one list:
 * the adapter's translation reads only these, and the call layer tells the client which of its
 * fields were ignored. Anything else a client sends never leaves the hub.
 */
export interface AdapterParams {
  readonly chat: ReadonlySet<string>;
  readonly embeddings: ReadonlySet<string>;
}

export interface ProviderAdapter {
  readonly name: string;
  /** The fields this adapter passes on (`AdapterParams`), fixed for the adapter, not per target. */
  readonly params: AdapterParams;
  /**
   * The request features (`providers/features.ts`) this adapter can express for a target, as bits.
   * Read once per deployment when the catalog snapshot is built, never per request.
   */
  features(target: UpstreamTarget): number;
  chat(target: UpstreamTarget, request: JsonObject, options: CallOptions): Promise<CompletedCall>;
  /**
   * Resolves once the upstream accepted the call (status and headers received), so that failures
   * before the first byte can still become a clean error response, then yields parts as they arrive.
   */
  chatStream(
    target: UpstreamTarget,
    request: JsonObject,
    options: CallOptions,
  ): Promise<AsyncIterable<ChatStreamPart>>;
  embeddings(target: UpstreamTarget, request: JsonObject, options: CallOptions): Promise<CompletedCall>;
  /** Frees what the adapter holds (an in-process model); called once on shutdown. */
  close?(): Promise<void>;
}

export type UpstreamFailure =
  /** The upstream answered with an error status. */
  | 'http'
  /** No connection, or it broke before the response started. */
  | 'connect'
  | 'timeout'
  /** The upstream answered something that is not its protocol, or broke off a stream. */
  | 'protocol'
  /** Our client went away and we cancelled the call. */
  | 'cancelled';

export class UpstreamError extends Error {
  override name = 'UpstreamError';
  constructor(
    readonly kind: UpstreamFailure,
    message: string,
    readonly details: {
      status?: number;
      type?: string;
      code?: string | null;
      param?: string | null;
      retryAfter?: string;
    } = {},
  ) {
    super(message);
  }

  static isInstance(error: unknown): error is UpstreamError {
    return error instanceof UpstreamError;
  }
}
