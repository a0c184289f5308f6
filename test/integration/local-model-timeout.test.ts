import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { writeTinyGguf } from '../fakes/tiny-gguf.ts';
import { type Catalog, seedCatalog, startTestHub, type TestHub } from '../helpers/hub.ts';

/**
 * The hub's total timeout firing while requests wait for a local model (one sequence, the rest
 * queued) is the hub's time-out, not a client that left: every client gets its answer, 504 for those
 * that ran out of time, and the usage records say `timeout`.
 */
const TIMEOUT_MS = 1000;
let dir: string;
let t: TestHub;
let catalog: Catalog;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kaihub-models-'));
  await writeTinyGguf(join(dir, 'tiny.gguf'));
  t = await startTestHub({
    KAIHUB_MODELS_DIR: dir,
    KAIHUB_LOCAL_THREADS: '1',
    KAIHUB_LOCAL_PARALLEL: '1',
    KAIHUB_UPSTREAM_TIMEOUT_MS: String(TIMEOUT_MS),
  });
  catalog = await seedCatalog(t, 'http://127.0.0.1:9');
  const chat = await t.admin('PATCH', `/deployments/${catalog.deploymentId}`, {
    adapter: 'local',
    baseUrl: 'local:',
    apiKey: null,
    upstreamModel: 'tiny.gguf',
  });
  assert.equal(chat.status, 200, JSON.stringify(chat.body));
});
after(async () => {
  await t?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** One chat request; `null` when no answer came at all within the hub's timeout and `graceMs` more. */
async function ask(
  i: number,
  stream: boolean,
  graceMs = 10_000,
): Promise<{ status: number; requestId: string } | null> {
  try {
    const res = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${catalog.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'hcx-test',
        messages: [{ role: 'user', content: `질문 ${i}` }],
        max_tokens: 128,
        stream,
      }),
      signal: AbortSignal.timeout(TIMEOUT_MS + graceMs),
    });
    await res.text();
    return { status: res.status, requestId: res.headers.get('x-request-id') ?? '' };
  } catch {
    return null;
  }
}

test('30 requests queued on one local sequence: each gets 200 or 504, none is recorded as client_closed', async () => {
  // load the model first (its first load can outlast the time-out; the load goes on regardless), so
  // the time-out below is spent waiting and generating, not loading
  const loadBy = performance.now() + 90_000;
  while ((await ask(0, false, 2000))?.status !== 200)
    assert.ok(performance.now() < loadBy, 'the tiny model answers within 90 s');
  const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => ask(i + 1, i % 3 === 0)));
  const unanswered = answers.filter((a) => a === null).length;
  assert.equal(unanswered, 0, `${unanswered} of 30 clients got no answer at all`);
  const statuses = answers.map((a) => a!.status);
  for (const status of statuses) assert.ok(status === 200 || status === 504, `status ${status}`);
  const timedOut = answers.filter((a) => a!.status === 504);
  assert.ok(timedOut.length > 0, 'the queue is long enough for the time-out to fire');

  const events = await t.admin('GET', `/usage/events?organizationId=${catalog.organizationId}&limit=100`);
  assert.equal(events.status, 200);
  const records = events.body.data as { requestId: string; status: string; errorCode: string | null }[];
  assert.equal(records.filter((r) => r.errorCode === 'client_closed').length, 0, 'recorded as client_closed');
  for (const answer of timedOut) {
    const record = records.find((r) => r.requestId === answer!.requestId);
    assert.equal(record?.status, 'timeout', `the record of ${answer!.requestId}`);
  }
});
