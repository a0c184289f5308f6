import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLogger } from '../../observability/logger.ts';
import { type Database, openDatabase } from '../../storage/database.ts';
import { migrate } from '../../storage/migrator.ts';
import type { ChatMessage } from '../suites/prompts.ts';
import { inlineDataOnly, loadSuite } from '../suites/suite-load.ts';
import { buildManifest, manifestHash } from './manifest.ts';
import type { Answer, ModelAsker } from './model-asker.ts';
import { RunExecutor } from './run-executor.ts';
import { RunStore } from './run-store.ts';

const logger = createLogger('silent');

function suiteOf(items: number) {
  const content = Array.from({ length: items }, (_, i) =>
    JSON.stringify({ id: `q${i}`, question: `문항 ${i}`, choices: ['아니오', '예'], answer: 1 }),
  ).join('\n');
  return loadSuite({ name: 'unit', data: { format: 'kaihub-mc', content } }, inlineDataOnly);
}

const itemOf = (messages: readonly ChatMessage[]) => Number(/문항 (\d+)/.exec(messages.at(-1)!.content)![1]);

/** A model that answers "B" (right) after `pauseMs`, or what `answer` says for an item. */
class ScriptedModel implements ModelAsker {
  readonly asked = new Map<number, number>();
  inFlight = 0;
  maxInFlight = 0;
  constructor(
    private readonly pauseMs = 1,
    private readonly answer: (item: number, attempt: number) => Answer | null = () => null,
  ) {}
  async ask(_model: string, messages: readonly ChatMessage[]): Promise<Answer> {
    const item = itemOf(messages);
    const attempt = (this.asked.get(item) ?? 0) + 1;
    this.asked.set(item, attempt);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    await sleep(this.pauseMs);
    this.inFlight--;
    return this.answer(item, attempt) ?? { ok: true, text: '정답: B', requestId: `req_${item}_${attempt}` };
  }
}

const refused = (status: number, retryable: boolean): Answer => ({
  ok: false,
  retryable,
  status,
  code: null,
  message: 'no',
  requestId: 'req_x',
});

describe('run executor', () => {
  let db: Database;
  let store: RunStore;
  beforeEach(async () => {
    db = await openDatabase(':memory:');
    await migrate(db);
    store = new RunStore(db);
  });
  afterEach(async () => {
    await db.close();
  });

  async function newRun(items: number, id = 'evr_unit'): Promise<string> {
    const suite = suiteOf(items);
    const manifest = buildManifest(suite, 'm');
    await db.transaction((tx) =>
      store.create(
        tx,
        {
          id,
          productId: 'prd_x',
          model: 'm',
          manifest,
          manifestHash: manifestHash(manifest),
          executor: 'hub',
          concurrency: 4,
          private: false,
          createdBy: 'test',
        },
        suite.prepared,
        Date.now(),
      ),
    );
    return id;
  }

  const executor = (model: ModelAsker, settings = { leaseMs: 60_000, retries: 3, retryBaseMs: 1 }) =>
    new RunExecutor(store, async () => model, settings, logger);

  test('asks every item once, never more at a time than the concurrency, and writes the result', async () => {
    const id = await newRun(40);
    const model = new ScriptedModel(3);
    const progress: number[] = [];
    const finished = await executor(model).work(id, {
      concurrency: 5,
      onProgress: (p) => progress.push(p.done),
    });
    assert.equal(finished?.status, 'completed');
    assert.equal(finished?.result?.overall.score, 1);
    assert.equal(model.asked.size, 40);
    for (const n of model.asked.values()) assert.equal(n, 1);
    assert.ok(model.maxInFlight <= 5 && model.maxInFlight >= 2, String(model.maxInFlight));
    assert.equal(progress.at(-1), 40);
  });

  test('retries retryable failures with backoff; a non-retryable one fails the item; a rerun asks only it', async () => {
    const id = await newRun(6);
    const model = new ScriptedModel(1, (item, attempt) => {
      if (item === 1 && attempt <= 2) return refused(429, true);
      if (item === 2) return refused(400, false);
      return null;
    });
    const finished = await executor(model).work(id, { concurrency: 2 });
    assert.equal(finished?.status, 'incomplete');
    assert.equal(model.asked.get(1), 3, 'two 429s, then an answer');
    assert.equal(model.asked.get(2), 1, 'a 400 is not retried');
    assert.deepEqual([finished?.result?.overall.n, finished?.result?.overall.failed], [5, 1]);
    const failed = await store.items(id, { status: 'failed', afterSeq: -1, limit: 10 });
    assert.match(failed[0]!.error!, /^400/);

    // the resumed run asks the failed item again, and only it
    await db.transaction((tx) => store.retryFailed(id, Date.now(), tx));
    const again = new ScriptedModel(1);
    const done = await executor(again).work(id, { concurrency: 2 });
    assert.equal(done?.status, 'completed');
    assert.deepEqual([...again.asked.keys()], [2]);
  });

  test('retries stop after the configured number', async () => {
    const id = await newRun(1);
    const model = new ScriptedModel(1, () => refused(503, true));
    const finished = await executor(model, { leaseMs: 60_000, retries: 2, retryBaseMs: 1 }).work(id, {
      concurrency: 1,
    });
    assert.equal(model.asked.get(0), 3);
    assert.equal(finished?.status, 'incomplete');
  });

  test('two executors on one run never ask the same item', async () => {
    const id = await newRun(60);
    const model = new ScriptedModel(2);
    const [a, b] = await Promise.all([
      executor(model).work(id, { concurrency: 4 }),
      executor(model).work(id, { concurrency: 4 }),
    ]);
    assert.equal(model.asked.size, 60);
    for (const [item, n] of model.asked) assert.equal(n, 1, `item ${item}`);
    // exactly one of them wrote the result
    assert.equal([a, b].filter((r) => r !== null).length, 1);
  });

  test("a dead worker's claims are taken over once their lease lapses, not before", async () => {
    const id = await newRun(3);
    // another worker claimed item 0 and died
    const claimed = await store.claim(id, 'dead-worker', { from: 0, to: 1 }, 1, 300, Date.now());
    assert.equal(claimed.length, 1);
    const model = new ScriptedModel(1);
    const started = Date.now();
    const finished = await executor(model, { leaseMs: 300, retries: 0, retryBaseMs: 1 }).work(id, {
      concurrency: 2,
    });
    assert.equal(finished?.status, 'completed');
    assert.equal(model.asked.get(0), 1);
    assert.ok(Date.now() - started >= 250, 'item 0 waited for the lease to lapse');
  });

  test('stopping: what is being asked is answered and written, the rest stays pending for a resume', async () => {
    const id = await newRun(20);
    const model = new ScriptedModel(20);
    const stop = new AbortController();
    setTimeout(() => stop.abort(), 50);
    const finished = await executor(model).work(id, { concurrency: 2, signal: stop.signal });
    assert.equal(finished, null);
    const progress = await store.progress(id, Date.now());
    assert.equal(progress.done, model.asked.size, 'every item asked was written');
    assert.ok(progress.pending > 0);
    assert.equal(progress.claimed, 0, 'claims given back');
    const rest = await executor(new ScriptedModel(1)).work(id, { concurrency: 4 });
    assert.equal(rest?.status, 'completed');
  });
});
