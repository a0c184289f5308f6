import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chargeEndedStream } from './stream-charging.ts';

const base = { delivered: true, promptEstimate: 10, deliveredCompletionTokens: 4, upstreamUsage: null };

test('a completed stream is charged with the upstream counts, else the estimates', () => {
  assert.deepEqual(
    chargeEndedStream({
      ...base,
      ending: 'completed',
      upstreamUsage: { promptTokens: 12, completionTokens: 6 },
    }),
    {
      chargeable: true,
      status: 'ok',
      promptTokens: 12,
      completionTokens: 6,
      usageSource: 'upstream',
    },
  );
  assert.equal(chargeEndedStream({ ...base, ending: 'completed' }).usageSource, 'estimate');
});

test('a stream that delivered part of its answer is charged for it, whatever ended it', () => {
  for (const ending of ['client_closed', 'timeout', 'upstream_failed'] as const) {
    const charge = chargeEndedStream({ ...base, ending });
    assert.equal(charge.chargeable, true, ending);
    assert.equal(charge.promptTokens, 10);
    assert.equal(charge.completionTokens, 4);
  }
  assert.equal(chargeEndedStream({ ...base, ending: 'timeout' }).status, 'timeout');
  assert.equal(chargeEndedStream({ ...base, ending: 'client_closed' }).status, 'cancelled');
});

test('after a cancel, the counts drained from the upstream are used', () => {
  const charge = chargeEndedStream({
    ...base,
    ending: 'client_closed',
    upstreamUsage: { promptTokens: 11, completionTokens: 9 },
  });
  assert.deepEqual([charge.promptTokens, charge.completionTokens, charge.usageSource], [11, 9, 'upstream']);
});

test('nothing delivered: free when the upstream failed, the prompt charged when the client left', () => {
  const nothing = { ...base, delivered: false, deliveredCompletionTokens: 0 };
  assert.equal(chargeEndedStream({ ...nothing, ending: 'upstream_failed' }).chargeable, false);
  assert.equal(chargeEndedStream({ ...nothing, ending: 'timeout' }).chargeable, false);
  const left = chargeEndedStream({ ...nothing, ending: 'client_closed' });
  assert.equal(left.chargeable, true);
  assert.equal(left.completionTokens, 0);
});
