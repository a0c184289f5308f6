import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Allowance, type AllowanceOwner, DEFAULT_ALLOWANCE_SETTINGS } from './shared-allowances.ts';

/**
 * The x-ratelimit headers of calls admitted from an allowance, against what a call alone would have
 * seen from Redis's bucket (the same calls through Redis: test/redis/allowances.test.ts).
 */

const owner: AllowanceOwner = {
  giveBack: async () => true,
  extend() {},
  charged: async () => {},
  done() {},
};

/** A call of 10 prompt tokens and at most 5 more: 15 tokens, one request. */
const call = { estimatedPromptTokens: 10, maxCompletionTokens: 5 } as never;

/**
 * An allowance of rate limits alone (no money held) of `calls` calls' worth, taken at `takenAt` from
 * a key's buckets of 6,000 requests and 60,000 tokens a minute that held `requests` and `tokens` when
 * the script ran; its reply came at `levelsAt`.
 */
function allowance(
  calls: number,
  requests: number,
  tokens: number,
  takenAt: number,
  levelsAt: number,
  of: AllowanceOwner = owner,
) {
  return new Allowance(of, DEFAULT_ALLOWANCE_SETTINGS, {
    id: 'req_a',
    key: 'o\u0000k\u0000p',
    organizationId: 'o',
    shared: {} as never,
    limits: null,
    holdId: '',
    voucher: null,
    voucherHeld: 0n,
    walletHeld: 0n,
    buckets: [
      { key: 'rl:k:r:k', capacity: 6_000, scope: 'key', kind: 'requests' },
      { key: 'rl:k:t:k', capacity: 60_000, scope: 'key', kind: 'tokens' },
    ],
    units: [calls, calls * 15],
    levels: [requests - calls, tokens - calls * 15],
    size: calls,
    takenAt,
    levelsAt,
  });
}

function remaining(a: Allowance, now: number): [number, number] {
  const headers = a.admit(call, now)!.responseHeaders!;
  return [Number(headers['x-ratelimit-remaining-requests']), Number(headers['x-ratelimit-remaining-tokens'])];
}

test('calls from an allowance of a full bucket, slower than it refills, see what a call alone sees: never more than the limit less the call', () => {
  const a = allowance(8, 6_000, 60_000, 1_000, 1_000);
  // a call alone finds the bucket full again each time (a request refills every 10 ms) and takes its share
  for (let i = 0; i < 8; i++) assert.deepEqual(remaining(a, 1_000 + i * 100), [5_999, 59_985], `call ${i}`);
});

test('the headers count the refill from when the levels came back from Redis, not from before the script was sent', () => {
  // the script ran somewhere between 1,000 and 1,050: its levels may hold the refill until 1,050 already
  const a = allowance(8, 3_000, 30_000, 1_000, 1_050);
  assert.deepEqual(remaining(a, 1_000), [2_999, 29_985]);
  // 10 ms after the reply: at most one request and 10 tokens refilled since the levels were read
  assert.deepEqual(remaining(a, 1_060), [2_999, 29_980]);
});

test('a charge the ledger could not take (the journal gave up) leaves the hold to its lease, with no unhandled rejection', async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    const sent: boolean[] = [];
    let done = false;
    const a = allowance(8, 6_000, 60_000, 1_000, 1_000, {
      ...owner,
      done: () => {
        done = true;
      },
      giveBack: async (_allowance, r) => {
        sent.push(r.last);
        return true;
      },
      charged: () => Promise.reject(new Error('usage journal: the charges could not be applied')),
    });
    a.admit(call, 1_000)!.settle({
      requestId: 'req_b',
      costMicroKrw: 100n,
      promptTokens: 10,
      completionTokens: 5,
    } as never);
    a.retire();
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(unhandled, []);
    assert.ok(sent.length > 0 && !sent.includes(true), 'the hold is not removed: its call was never charged');
    // and the allowance ends: it does not stay among the draining ones, flushed by the sweeper for ever
    assert.ok(done, 'the allowance is done once its last give-back is sent');
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});
