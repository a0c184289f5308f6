import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Caller, CallerRateLimits } from '../accounts/key-cache.ts';
import type { UsageRecord } from '../billing/usage-journal.ts';
import type { RoutableProduct } from '../catalog/catalog-snapshot.ts';
import type { AdmissionRefusal, AdmissionRequest } from './admission.ts';
import { RateLimits, RateReservation, resetText } from './rate-limits.ts';

const limits = (l: Partial<CallerRateLimits>): CallerRateLimits => ({
  keyRequests: null,
  keyTokens: null,
  organizationRequests: null,
  organizationTokens: null,
  ...l,
});

function request(
  rateLimits: CallerRateLimits | null,
  prompt = 10,
  max: number | null = 90,
  keyId = 'key_1',
): AdmissionRequest {
  const caller: Caller = {
    keyId,
    organizationId: 'org_1',
    organizationName: 'o',
    organizationClass: 'sme',
    allowedModels: null,
    fallbackModels: null,
    maxConcurrentRequests: null,
    rateLimits,
  };
  return {
    requestId: 'r',
    caller,
    product: {} as RoutableProduct,
    estimatedPromptTokens: prompt,
    maxCompletionTokens: max,
  };
}

const used = (prompt: number, completion: number) =>
  ({ promptTokens: prompt, completionTokens: completion }) as UsageRecord;

test('a requests-per-minute limit lets a burst of its size through, then one call per 60/limit seconds', () => {
  let now = 1_000_000;
  const r = new RateLimits(() => now);
  const l = limits({ keyRequests: 3 });
  for (let i = 0; i < 3; i++) assert.ok(r.check(request(l)) instanceof RateReservation);
  const refused = r.check(request(l)) as AdmissionRefusal;
  assert.equal(refused.status, 429);
  assert.equal(refused.code, 'rate_limit_exceeded');
  assert.equal(refused.type, 'requests');
  assert.equal(refused.retryAfterSeconds, 20, 'one request refills in 60/3 s');
  assert.match(refused.message, /RPM 3/);
  assert.equal(refused.headers?.['x-ratelimit-remaining-requests'], '0');
  now += 19_999;
  assert.ok(!(r.check(request(l)) instanceof RateReservation));
  now += 1;
  assert.ok(r.check(request(l)) instanceof RateReservation);
});

test('tokens are counted as prompt + max_tokens, corrected to what the call used, and given back when nothing was charged', () => {
  const now = 5_000_000;
  const r = new RateLimits(() => now);
  const l = limits({ organizationTokens: 300 });
  const a = r.check(request(l, 10, 90)) as RateReservation;
  assert.equal(a.headers?.['x-ratelimit-remaining-tokens'], '200');
  const b = r.check(request(l, 10, 90)) as RateReservation;
  const c = r.check(request(l, 10, 90)) as RateReservation;
  assert.ok(b instanceof RateReservation && c instanceof RateReservation);
  const refused = r.check(request(l, 10, 90)) as AdmissionRefusal;
  assert.equal(refused.type, 'tokens');
  a.settle(used(10, 20)); // used 30 of its 100: 70 back
  b.release(); // failed: all 100 back
  const d = r.check(request(l, 10, 90)) as RateReservation;
  assert.equal(d.headers?.['x-ratelimit-remaining-tokens'], '70');
});

test('a request larger than the whole allowance is told to shrink, not to wait', () => {
  const r = new RateLimits(() => 0);
  const refused = r.check(request(limits({ keyTokens: 50 }), 10, 100)) as AdmissionRefusal;
  assert.equal(refused.retryAfterSeconds, undefined);
  assert.match(refused.message, /max_tokens/);
});

test('the key and the organisation are both held to their limits; a key’s own limit does not spend another’s', () => {
  const r = new RateLimits(() => 0);
  const l = limits({ keyRequests: 2, organizationRequests: 3 });
  assert.ok(r.check(request(l, 1, 1, 'key_a')) instanceof RateReservation);
  assert.ok(r.check(request(l, 1, 1, 'key_a')) instanceof RateReservation);
  assert.match((r.check(request(l, 1, 1, 'key_a')) as AdmissionRefusal).message, /this key/);
  assert.ok(r.check(request(l, 1, 1, 'key_b')) instanceof RateReservation);
  assert.match((r.check(request(l, 1, 1, 'key_b')) as AdmissionRefusal).message, /this organization/);
  assert.ok(r.check(request(null)) instanceof RateReservation, 'no limits: always admitted');
});

test('reset times read as OpenAI writes them', () => {
  assert.equal(resetText(20), '20ms');
  assert.equal(resetText(1000), '1s');
  assert.equal(resetText(1500), '1.5s');
  assert.equal(resetText(360_000), '6m0s');
});

test('buckets of keys gone quiet are forgotten: memory follows the keys in use, not every key ever seen', () => {
  let now = 1_000_000;
  const r = new RateLimits(() => now);
  const l = limits({ keyRequests: 60 });
  for (let i = 0; i < 9_999; i++) r.check(request(l, 10, 90, `key_${i}`));
  assert.equal(r.size, 9_999);
  now += 3 * 60_000;
  // the 10,000th new bucket sweeps the quiet ones; a key used within two minutes stays
  r.check(request(l, 10, 90, 'key_9998'));
  r.check(request(l, 10, 90, 'key_new'));
  assert.equal(r.size, 2);
});
