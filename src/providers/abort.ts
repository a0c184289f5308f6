import { UpstreamError } from './adapter.ts';

/**
 * Why an aborted call stopped, as the error the hub answers with. The hub aborts a call for two
 * reasons: its total time ran out (the reason is a `TimeoutError`: 504, recorded as `timeout`), or the
 * client went away (anything else: `cancelled`, nobody left to answer).
 */
export function abortedCallError(signal: AbortSignal): UpstreamError {
  const reason = signal.reason as { name?: string } | undefined;
  return reason?.name === 'TimeoutError'
    ? new UpstreamError('timeout', 'upstream did not finish in time')
    : new UpstreamError('cancelled', 'the client closed the connection');
}
