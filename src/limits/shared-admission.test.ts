import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Redis } from 'ioredis';
import type { Database } from '../storage/database.ts';
import { SharedAdmission } from './shared-admission.ts';

/**
 * Which unanswered settles are sent again (decision 0034), against a stand-in for the Redis client
 * (the paths with a real Redis: test/redis/unavailable.test.ts and scripts.test.ts).
 */

const silent = { error() {}, warn() {}, info() {}, debug() {} } as never;

/** A client whose script calls answer as `replies` says, one after the other; PING as `pingOk` says. */
function fakeRedis(replies: ((args: unknown[]) => Promise<unknown>)[]) {
  const calls: unknown[][] = [];
  const state = { pingOk: true, pings: 0 };
  const redis = {
    evalsha: (...args: unknown[]) => {
      calls.push(args);
      const reply = replies[calls.length - 1] ?? (() => Promise.resolve('0'));
      return reply(args);
    },
    eval: () => Promise.reject(new Error('not expected')),
    ping: () => {
      state.pings++;
      return state.pingOk ? Promise.resolve('PONG') : Promise.reject(new Error('Command timed out'));
    },
  };
  return { redis: redis as unknown as Redis, calls, state };
}

const replyError = (message: string) => Object.assign(new Error(message), { name: 'ReplyError' });

function admissionWith(redis: Redis) {
  return new SharedAdmission(
    redis,
    {} as Database,
    async () => {},
    { prefix: 'test:', leaseMs: 600_000 },
    silent,
  );
}

/** What `finish` reads of a ticket: a call holding `holdId` ('' = rate limits only). */
function ticket(holdId: string) {
  return {
    holdId,
    tokenBuckets: null,
    voucher: null,
    resendUntil: holdId === '' ? 0 : Date.now() + 60_000,
    shared: {
      holdsKey: 'test:{o}:holds',
      holdKey: 'test:{o}:hold',
      verKey: 'test:{o}:ver',
      walletKey: 'test:{o}:a:wallet:o',
      counterPrefix: 'test:{o}:a:',
      funds: { wallet: { id: 'wallet:o' } },
    },
  } as never;
}

const waitFor = async (done: () => boolean, ms = 2_000) => {
  for (const until = Date.now() + ms; !done() && Date.now() < until; )
    await new Promise((resolve) => setTimeout(resolve, 10));
};

/** The settle's last argument: '1' when sent again (the script answers 'dup' if its hold is gone). */
const sentAgain = (call: unknown[]) => call.at(-1);

test('a settle that timed out is sent again, marked so, once Redis answers a PING — not while it does not', async () => {
  const { redis, calls, state } = fakeRedis([() => Promise.reject(new Error('Command timed out'))]);
  const admission = admissionWith(redis);
  try {
    state.pingOk = false;
    admission.finish(ticket('req_a'), 0n, 100n, 0);
    await waitFor(() => state.pings >= 3);
    assert.equal(calls.length, 1, 'nothing sent again while the PING goes unanswered');
    state.pingOk = true;
    await waitFor(() => calls.length === 2);
    assert.equal(calls.length, 2);
    assert.equal(sentAgain(calls[0]!), '0');
    assert.equal(sentAgain(calls[1]!), '1');
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(calls.length, 2, 'answered: not sent a third time');
  } finally {
    await admission.close(50);
  }
});

test('a settle Redis refused without running it (BUSY, LOADING) is sent again; a failure of the script itself is not', async () => {
  const { redis, calls } = fakeRedis([
    () => Promise.reject(replyError('BUSY Redis is busy running a script.')),
    () => Promise.reject(replyError('LOADING Redis is loading the dataset in memory')),
    () => Promise.resolve('0'),
    () => Promise.reject(replyError('ERR user_script:12: attempt to compare nil with number')),
  ]);
  const admission = admissionWith(redis);
  try {
    admission.finish(ticket('req_busy'), 0n, 100n, 0);
    await waitFor(() => calls.length === 3);
    assert.equal(calls.length, 3, 'BUSY and LOADING: sent again until it ran');
    admission.finish(ticket('req_broken'), 0n, 100n, 0);
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.equal(calls.length, 4, 'a script error is not sent again');
  } finally {
    await admission.close(50);
  }
});

test('a settle of rate limits alone, or one that fails after close, is not sent again', async () => {
  const timedOut = () => Promise.reject(new Error('Command timed out'));
  const { redis, calls } = fakeRedis([timedOut, timedOut]);
  const admission = admissionWith(redis);
  admission.finish({ ...(ticket('') as object), tokenBuckets: ['test:{o}:b'] } as never, 0n, 0n, 5);
  await new Promise((resolve) => setTimeout(resolve, 400));
  assert.equal(calls.length, 1, 'no hold: nothing tells a second run from a first');
  await admission.close(50);
  admission.finish(ticket('req_late'), 0n, 100n, 0);
  await new Promise((resolve) => setTimeout(resolve, 400));
  assert.equal(calls.length, 2, 'closed: not sent again');
});
