import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createLogger } from '../../src/observability/logger.ts';
import { type FakeOpenAI, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import { type Catalog, seedCatalog, startTestHub, type TestHub } from '../helpers/hub.ts';
import { addProduct, closedPort, postV1, usageEvent } from '../helpers/v1.ts';

/**
 * A supplier that lies about its usage, and one that is not there: neither may poison the journal or
 * put its internals in front of the client.
 */
describe('a hostile or broken supplier', () => {
  let fake: FakeOpenAI;
  let t: TestHub;
  let catalog: Catalog;
  const logs: string[] = [];
  before(async () => {
    fake = await startFakeOpenAI({ apiKey: 'upstream-secret' });
    const logger = createLogger('info', {
      write(line: string) {
        logs.push(line);
      },
    });
    t = await startTestHub({}, { logger });
    catalog = await seedCatalog(t, fake.url);
  });
  after(async () => {
    await t?.close();
    await fake?.close();
  });

  const hello = [{ role: 'user', content: 'one two three' }];

  test('implausible counts (1e300, 3e9, negative, fractional, beyond the request) are billed as estimates, noted, and poison nothing', async () => {
    const other = await t.admin('POST', '/organizations', { name: '다른기관', class: 'public' });
    const otherKey = (await t.admin('POST', `/organizations/${other.body.id}/keys`, {})).body.key as string;
    for (const usage of [
      'usage:1e300:5',
      'usage:3000000000:1',
      'usage:-7:-2',
      'usage:2.5:1',
      'usage:3:99999',
    ]) {
      for (const stream of [false, true]) {
        fake.queueBehaviors(usage as `usage:${string}:${string}`);
        const answer = await postV1(t, catalog.key, '/chat/completions', {
          model: 'hcx-test',
          messages: hello,
          stream,
          ...(stream && { stream_options: { include_usage: true } }),
        });
        assert.equal(answer.status, 200, `${usage} stream=${stream}: ${answer.text.slice(0, 300)}`);
        const event = await usageEvent(t, answer.requestId);
        assert.equal(event.usageSource, 'estimate', usage);
        assert.match(event.usageNote, /upstream/, usage);
        assert.ok(event.promptTokens > 0 && event.promptTokens < 100, `${usage}: ${event.promptTokens}`);
        assert.ok(BigInt(event.costMicroKrw) >= 0n);
        // the client reads what it was billed, not the supplier's numbers
        const billed = stream
          ? JSON.parse(
              answer.text
                .split('\n\n')
                .filter((e) => e.startsWith('data: {'))
                .at(-1)!
                .slice(6),
            ).usage
          : answer.body.usage;
        assert.equal(billed.prompt_tokens, event.promptTokens, `${usage} stream=${stream}`);
      }
    }
    // every record after the poisoned ones still lands, for every organisation
    const later = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        postV1(t, i % 2 ? catalog.key : otherKey, '/chat/completions', {
          model: 'hcx-test',
          messages: hello,
        }),
      ),
    );
    for (const answer of later) {
      assert.equal(answer.status, 200);
      assert.equal((await usageEvent(t, answer.requestId)).usageSource, 'upstream');
    }
  });

  test('an unreachable supplier: the client reads a clear error with the request id, no address; the log has it', async () => {
    const port = await closedPort();
    await addProduct(t, catalog, 'gone-test', [{ baseUrl: `http://127.0.0.1:${port}/v1` }]);
    const answer = await postV1(t, catalog.key, '/chat/completions', { model: 'gone-test', messages: hello });
    assert.equal(answer.status, 502);
    assert.equal(answer.body.error.code, 'upstream_unreachable');
    assert.ok(answer.body.error.message.includes(answer.requestId), 'names the request to quote');
    assert.doesNotMatch(answer.text, /127\.0\.0\.1|ECONNREFUSED|:\d{4,5}\b/);
    const logged = logs.filter((l) => l.includes(answer.requestId)).join('\n');
    assert.match(logged, /ECONNREFUSED/, 'the operator finds the cause in the log');
    assert.match(logged, new RegExp(`127\\.0\\.0\\.1:${port}`));
  });

  test("a 400 from the supplier reaches the client in the supplier's words, without its addresses or model names", async () => {
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const body = JSON.stringify({
          error: {
            message:
              "This model's maximum context length is 8192 tokens (internal-model-7b at http://10.1.2.3:8000/v1, replica 10.1.2.4:8001).",
            type: 'invalid_request_error',
            param: 'messages',
            code: 'context_length_exceeded',
          },
        });
        res.writeHead(400, { 'content-type': 'application/json' }).end(body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      await addProduct(t, catalog, 'picky-test', [
        { baseUrl: `http://127.0.0.1:${port}/v1`, upstreamModel: 'internal-model-7b' },
      ]);
      const answer = await postV1(t, catalog.key, '/chat/completions', {
        model: 'picky-test',
        messages: hello,
      });
      assert.equal(answer.status, 400);
      assert.equal(answer.body.error.code, 'context_length_exceeded');
      assert.equal(answer.body.error.param, 'messages');
      assert.match(answer.body.error.message, /maximum context length is 8192 tokens/);
      assert.doesNotMatch(answer.text, /internal-model-7b|10\.1\.2\.|:8000/);
      assert.match(answer.body.error.message, /picky-test/, 'the model is named as the client knows it');
    } finally {
      server.close();
    }
  });
});
