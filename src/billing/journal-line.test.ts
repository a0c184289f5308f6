import assert from 'node:assert/strict';
import { test } from 'node:test';
import { JOURNAL_LINE_FIELDS, lineToRecord, recordToLine, type UsageRecord } from './usage-journal.ts';

const full: UsageRecord = {
  requestId: 'req_0192a3b4c5d6e7f8a9b0c1d2e3f4a5b6',
  createdAtMs: 1_796_000_000_123,
  organizationId: 'org_"quoted"\\back\nline',
  apiKeyId: 'key_1',
  productId: 'prd_1',
  deploymentId: null,
  model: '하이퍼클로바-x \u2028 \u0000',
  endpoint: 'chat.completions',
  stream: true,
  status: 'ok',
  httpStatus: 200,
  errorCode: null,
  promptTokens: 12,
  completionTokens: 2_147_483_647,
  usageSource: 'estimate',
  priceInputMicroPer1M: 9_007_199_254_740_993n,
  priceOutputMicroPer1M: 0n,
  costMicroKrw: 123_456_789_012_345_678_901n,
  latencyMs: 7,
  ttftMs: 3,
  usageNote: 'upstream counts not plausible',
  attempts: [
    {
      productId: 'prd_1',
      model: 'm',
      deploymentId: 'dep_1',
      outcome: 'timeout',
      httpStatus: null,
      durationMs: 10,
    },
  ],
  voucherId: 'vch_1',
};

/** The line as it was written before (JSON.stringify of a copy with money as strings). */
function asBefore(r: UsageRecord): unknown {
  return JSON.parse(
    JSON.stringify({
      ...r,
      priceInputMicroPer1M: r.priceInputMicroPer1M.toString(),
      priceOutputMicroPer1M: r.priceOutputMicroPer1M.toString(),
      costMicroKrw: r.costMicroKrw.toString(),
    }),
  );
}

test('a journal line holds every field of a usage record, as JSON.stringify wrote it', () => {
  const line = recordToLine(full);
  assert.ok(line.endsWith('}\n') && !line.slice(0, -1).includes('\n'), 'one line');
  const parsed = JSON.parse(line) as Record<string, unknown>;
  assert.deepEqual(parsed, asBefore(full));
  assert.deepEqual(Object.keys(parsed).sort(), [...JOURNAL_LINE_FIELDS].sort());
  assert.deepEqual(lineToRecord(line), full, 'read back exactly, money included');
});

test('optional fields: absent stays absent, null stays null, and what is not finite is null', () => {
  const { attempts: _a, voucherId: _v, ...bare } = full;
  const parsed = JSON.parse(recordToLine(bare)) as Record<string, unknown>;
  assert.equal('attempts' in parsed, false);
  assert.equal('voucherId' in parsed, false);
  assert.deepEqual(parsed, asBefore(bare));
  assert.equal(
    (JSON.parse(recordToLine({ ...bare, voucherId: null })) as { voucherId: unknown }).voucherId,
    null,
  );
  const odd = { ...bare, latencyMs: Number.NaN, ttftMs: null, stream: false };
  assert.deepEqual(JSON.parse(recordToLine(odd)), asBefore(odd));
});
