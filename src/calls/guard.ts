import type { Caller } from '../accounts/key-cache.ts';
import type { RoutableProduct } from '../catalog/catalog-snapshot.ts';
import type { JsonObject } from '../providers/adapter.ts';
import type { CallError } from './errors.ts';
import type { ObservedCall } from './observer.ts';

/**
 * The guard seam: what may change a request before routing and the answer before the client sees
 * it (Korean PII masking and restoring, policies that block). One session per call that needs it;
 * the call layer ends every session it began, whatever happens.
 */
export interface Guard {
  /**
   * Placement bits (providers/features.ts) every deployment serving this caller's call to `product`
   * must have — where its data may go; absent or 0: anywhere.
   */
  placement?(caller: Caller, product: RoutableProduct): number;
  /**
   * Before routing. null: nothing to do for this call (the common path allocates nothing); a session;
   * or a refusal, which the client gets as it is (e.g. 400 naming the types of personal data found).
   */
  begin(call: ObservedCall): GuardSession | GuardRefusal | null | Promise<GuardSession | GuardRefusal | null>;
  /**
   * What of a request or an answer (as JSON text) may be written to a log or a trace: personal data
   * masked. Absent: the text as it is.
   */
  redact?(text: string): string;
}

export interface GuardRefusal {
  refused: CallError;
}

export interface GuardSession {
  /** The request the upstream gets (masked), or the client's own when nothing changed. */
  readonly request: JsonObject;
  /** A completed answer, before the client sees it (e.g. placeholders restored). */
  completed(body: JsonObject): JsonObject;
  /**
   * One streamed chunk, before the client sees it. May hold text back (a placeholder split across
   * chunks) and return null when nothing is to be sent yet.
   */
  chunk(chunk: JsonObject): JsonObject | null;
  /** The end of a stream: what was held back, as a last chunk, or null. */
  flush(): JsonObject | null;
  /** Once, when the call ends, whatever happened. */
  end(): void;
}

export function isRefusal(value: GuardSession | GuardRefusal): value is GuardRefusal {
  return (value as GuardRefusal).refused !== undefined;
}

/** The default: no guard, nothing changes. */
export const guardNothing: Guard = { begin: () => null };
