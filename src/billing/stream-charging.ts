import type { TokenUsage } from '../providers/adapter.ts';
import type { UsageSource, UsageStatus } from './usage-journal.ts';

/** Why a streamed answer ended. */
export type StreamEnding =
  /** The upstream finished and the client got all of it. */
  | 'completed'
  /** The client went away (or an in-process caller stopped reading). */
  | 'client_closed'
  /** The hub's total time, or the upstream's silence past the idle timeout. */
  | 'timeout'
  /** The upstream broke off, or sent something that is not its protocol. */
  | 'upstream_failed';

export interface EndedStream {
  ending: StreamEnding;
  /** Whether any of the answer (text, reasoning, tool calls) reached the client. */
  delivered: boolean;
  promptEstimate: number;
  /** Estimate of the completion tokens handed to the client. */
  deliveredCompletionTokens: number;
  /** The upstream's own counts when they arrived (and were plausible): after a cancel, by draining. */
  upstreamUsage: TokenUsage | null;
}

export interface StreamCharge {
  chargeable: boolean;
  status: UsageStatus;
  promptTokens: number;
  completionTokens: number;
  usageSource: UsageSource;
}

/**
 * What a stream is charged, whichever way it ended. A stream that delivered any of its answer is
 * charged for what it delivered, whatever ended it — the client's cancel, the hub's total or idle
 * timeout (a slow reader included), or the upstream breaking off: the client has those tokens, and the
 * supplier bills them. Before this rule a client could read an answer until the total timeout and pay
 * nothing. The counts are the upstream's own when they arrived (a cancelled stream is drained for a
 * bounded time to get them; they then include what the upstream generated before it stopped), else the
 * prompt estimate and the estimate of the delivered text.
 *
 * A stream that delivered nothing is charged only when the client ended it (its prompt was read by the
 * model); when the upstream failed or timed out before any content, the client pays nothing.
 */
export function chargeEndedStream(s: EndedStream): StreamCharge {
  const status: UsageStatus =
    s.ending === 'completed'
      ? 'ok'
      : s.ending === 'client_closed'
        ? 'cancelled'
        : s.ending === 'timeout'
          ? 'timeout'
          : 'upstream_error';
  const chargeable = s.ending === 'completed' || s.ending === 'client_closed' || s.delivered;
  const usage = s.upstreamUsage;
  return {
    chargeable,
    status,
    promptTokens: usage ? usage.promptTokens : s.promptEstimate,
    completionTokens: usage ? usage.completionTokens : s.deliveredCompletionTokens,
    usageSource: usage ? 'upstream' : 'estimate',
  };
}
