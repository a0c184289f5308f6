import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, beforeEach, describe, test } from 'node:test';
import OpenAI from 'openai';
import { type FakeOpenAI, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import { type Catalog, seedCatalog, startTestHub, type TestHub } from '../helpers/hub.ts';
import { assertMatchesSchema, ERROR_RESPONSE } from '../helpers/openapi.ts';

/**
 * What a client that sends the wrong thing gets: an OpenAI-shaped error naming the problem, and a
 * hub that keeps serving everyone else afterwards.
 */
describe('/v1 refuses bad input in OpenAI shape and stays up', () => {
  let fake: FakeOpenAI;
  let t: TestHub;
  let catalog: Catalog;
  let client: OpenAI;

  before(async () => {
    fake = await startFakeOpenAI({ apiKey: 'upstream-secret' });
    t = await startTestHub();
    catalog = await seedCatalog(t, fake.url);
    client = new OpenAI({ apiKey: catalog.key, baseURL: `${t.url}/v1`, maxRetries: 0 });
  });
  after(async () => {
    await t?.close();
    await fake?.close();
  });
  beforeEach(() => fake.reset());

  interface Answer {
    status: number;
    headers: Headers;
    body: any;
  }

  async function post(path: string, body: string, key = catalog.key): Promise<Answer> {
    const res = await fetch(`${t.url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body,
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
  }

  const chat = (body: unknown) => post('/v1/chat/completions', JSON.stringify(body));
  const embed = (body: unknown) => post('/v1/embeddings', JSON.stringify(body));
  const user = [{ role: 'user', content: '안녕하세요' }];

  /** The error is OpenAI's ErrorResponse, with the status, type, param and code expected. */
  function assertError(
    answer: Answer,
    status: number,
    expected: { type?: string; param?: string | null; code?: string | null } = {},
  ): void {
    assert.equal(answer.status, status, JSON.stringify(answer.body));
    assertMatchesSchema(ERROR_RESPONSE, answer.body);
    assert.match(answer.headers.get('x-request-id') ?? '', /^req_[0-9a-f]{32}$/);
    if (expected.type !== undefined) assert.equal(answer.body.error.type, expected.type);
    if (expected.param !== undefined) assert.equal(answer.body.error.param, expected.param);
    if (expected.code !== undefined) assert.equal(answer.body.error.code, expected.code);
  }

  /** A normal request still works: the previous one hurt nobody. */
  async function assertHubServes(): Promise<void> {
    const completion = await client.chat.completions.create({
      model: 'hcx-test',
      messages: [{ role: 'user', content: '아직 살아 있나요' }],
    });
    assert.equal(completion.choices[0]?.message.content, 'Echo: 아직 살아 있나요');
  }

  /**
   * Announces a `size`-byte body with node:http and returns the status. The hub answers as soon as it
   * sees the length and closes the connection; a client still writing then gets EPIPE, perhaps before
   * it has read the answer, so this sends the headers first and the body only if no answer comes.
   */
  function postDeclaredLargeBody(size: number): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      let answered = false;
      const req = httpRequest(
        new URL('/v1/chat/completions', t.url),
        {
          method: 'POST',
          headers: {
            authorization: `Bearer ${catalog.key}`,
            'content-type': 'application/json',
            'content-length': String(size),
          },
        },
        (res) => {
          answered = true;
          let body = '';
          const done = () => resolve({ status: res.statusCode ?? 0, body });
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            body += chunk;
          });
          res.on('end', done);
          res.on('error', done);
          res.on('aborted', done);
        },
      );
      req.on('error', (error) => {
        if (!answered) reject(error);
      });
      req.flushHeaders();
      setTimeout(() => {
        const chunk = Buffer.alloc(1024 * 1024, 'a');
        let sent = 0;
        const writeMore = () => {
          while (sent < size && !answered && !req.destroyed) {
            sent += chunk.length;
            if (!req.write(chunk)) return void req.once('drain', writeMore);
          }
          if (!req.destroyed) req.end();
        };
        writeMore();
      }, 500);
    });
  }

  /** Sends `size` bytes with fetch, announced or chunked (a stream of unknown length). */
  async function fetchLargeBody(size: number, chunked: boolean): Promise<Answer> {
    const bytes = Buffer.alloc(size, 'a');
    const res = await fetch(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${catalog.key}`, 'content-type': 'application/json' },
      body: chunked ? new Blob([bytes]).stream() : bytes,
      ...(chunked && { duplex: 'half' }),
    } as RequestInit);
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
  }

  test('malformed JSON is a 400 invalid_request_error', async () => {
    const answer = await post('/v1/chat/completions', '{"model": "hcx-test", "messages": [');
    assertError(answer, 400, { type: 'invalid_request_error', code: 'invalid_json' });
    await assertHubServes();
  });

  test('a body that is JSON but not an object is a 400', async () => {
    for (const body of ['[1, 2, 3]', '"hello"', '42', 'null', 'true']) {
      assertError(await post('/v1/chat/completions', body), 400, { type: 'invalid_request_error' });
    }
    assertError(await post('/v1/embeddings', '["a"]'), 400, { type: 'invalid_request_error' });
    await assertHubServes();
  });

  test('wrong types are a 400 naming the field', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ model: 'hcx-test', messages: 'hi' }, 'messages'],
      [{ model: 'hcx-test', messages: user, stream: 'yes' }, 'stream'],
      [{ model: 'hcx-test', messages: user, max_tokens: -1 }, 'max_tokens'],
      [{ model: 'hcx-test', messages: user, max_tokens: 0 }, 'max_tokens'],
      [{ model: 'hcx-test', messages: user, max_tokens: 1.5 }, 'max_tokens'],
      [{ model: 'hcx-test', messages: user, max_tokens: '10' }, 'max_tokens'],
      [{ model: 5, messages: user }, 'model'],
      [{ model: '', messages: user }, 'model'],
      [{ model: 'hcx-test', messages: ['hi'] }, 'messages[0]'],
      [{ model: 'hcx-test', messages: [{ content: 'no role' }] }, 'messages[0].role'],
      [{ model: 'hcx-test', messages: user, temperature: 'hot' }, 'temperature'],
      [{ model: 'hcx-test', messages: user, stream_options: 'yes' }, 'stream_options'],
    ];
    for (const [body, param] of cases) {
      const answer = await chat(body);
      assertError(answer, 400, { type: 'invalid_request_error', param });
    }
    assert.equal(fake.requests.length, 0, 'nothing invalid reaches the upstream');
    await assertHubServes();
  });

  test('the openai client gets a BadRequestError with the param', async () => {
    await assert.rejects(
      client.chat.completions.create({ model: 'hcx-test', messages: user as never, max_tokens: -1 }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === 'max_tokens',
    );
    await assertHubServes();
  });

  test('missing model or messages, and empty messages, are 400s', async () => {
    assertError(await chat({ messages: user }), 400, { param: 'model', code: 'missing_required_parameter' });
    assertError(await chat({ model: 'hcx-test' }), 400, {
      param: 'messages',
      code: 'missing_required_parameter',
    });
    assertError(await chat({}), 400, { param: 'model' });
    assertError(await chat({ model: 'hcx-test', messages: [] }), 400, { param: 'messages' });
    assert.equal(fake.requests.length, 0);
    await assertHubServes();
  });

  test('a 40 MB body is refused with 413 and the hub still serves', async () => {
    const size = 40 * 1024 * 1024;
    const viaHttp = await postDeclaredLargeBody(size);
    assert.equal(viaHttp.status, 413);
    const body = JSON.parse(viaHttp.body);
    assertMatchesSchema(ERROR_RESPONSE, body);
    assert.equal(body.error.code, 'request_too_large');
    await assertHubServes();

    const declared = await fetchLargeBody(size, false);
    assertError(declared, 413, { type: 'invalid_request_error', code: 'request_too_large' });
    await assertHubServes();

    // no length announced: the hub must cut the body off while reading it
    const chunked = await fetchLargeBody(size, true);
    assertError(chunked, 413, { code: 'request_too_large' });
    await assertHubServes();

    assert.ok(
      fake.requests.every((r) => r.rawBody.length < 1024),
      'no part of a refused body reaches the upstream',
    );
  });

  test('an unknown model is a 404 model_not_found', async () => {
    const answer = await chat({ model: 'no-such-model', messages: user });
    assertError(answer, 404, { type: 'invalid_request_error', param: 'model', code: 'model_not_found' });
    await assert.rejects(
      client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }),
      (e: unknown) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found',
    );
    assertError(await embed({ model: 'no-such-model', input: 'x' }), 404, { code: 'model_not_found' });
    await assertHubServes();
  });

  test('a revoked key stops working within one second', async () => {
    const created = await t.admin('POST', `/organizations/${catalog.organizationId}/keys`, {
      name: 'revoke me',
    });
    assert.equal(created.status, 201);
    const doomed = new OpenAI({ apiKey: created.body.key, baseURL: `${t.url}/v1`, maxRetries: 0 });
    assert.ok((await doomed.models.list()).data.length > 0, 'the key works before it is revoked');

    const revoked = await t.admin('DELETE', `/keys/${created.body.id}`);
    assert.equal(revoked.status, 200);
    assert.ok(revoked.body.revokedAt, 'the key records when it was revoked');
    const deadline = Date.now() + 1000;
    let status = 0;
    for (;;) {
      const answer = await post(
        '/v1/chat/completions',
        JSON.stringify({ model: 'hcx-test', messages: user }),
        created.body.key,
      );
      status = answer.status;
      if (status === 401) {
        assertError(answer, 401, { code: 'invalid_api_key' });
        break;
      }
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(status, 401, 'revoked key still accepted after one second');
    await assert.rejects(doomed.models.list(), (e: unknown) => e instanceof OpenAI.AuthenticationError);
    await assertHubServes();
  });

  test('suspending an organisation stops its keys, and reactivating restores them', async () => {
    const org = await t.admin('POST', '/organizations', { name: '정지될기관', class: 'public' });
    assert.equal(org.status, 201);
    const key = await t.admin('POST', `/organizations/${org.body.id}/keys`, { name: 'k' });
    const theirs = new OpenAI({ apiKey: key.body.key, baseURL: `${t.url}/v1`, maxRetries: 0 });
    await theirs.chat.completions.create({ model: 'hcx-test', messages: [{ role: 'user', content: 'hi' }] });

    const suspended = await t.admin('PATCH', `/organizations/${org.body.id}`, { status: 'suspended' });
    assert.equal(suspended.status, 200);
    assert.equal(suspended.body.status, 'suspended');
    const deadline = Date.now() + 1000;
    let rejected = false;
    while (!rejected && Date.now() <= deadline) {
      try {
        await theirs.models.list();
        await new Promise((r) => setTimeout(r, 50));
      } catch (e) {
        assert.ok(e instanceof OpenAI.AuthenticationError, String(e));
        rejected = true;
      }
    }
    assert.ok(rejected, "a suspended organisation's key still works after one second");
    const answer = await post(
      '/v1/chat/completions',
      JSON.stringify({ model: 'hcx-test', messages: user }),
      key.body.key,
    );
    assertError(answer, 401, { code: 'invalid_api_key' });
    // other organisations are unaffected
    await assertHubServes();

    // Back to active: unknown keys are cached for two seconds (so a flood of bad keys is not a flood
    // of queries), so the key may take that long to work again.
    await t.admin('PATCH', `/organizations/${org.body.id}`, { status: 'active' });
    const deadline2 = Date.now() + 2500;
    for (;;) {
      try {
        await theirs.models.list();
        break;
      } catch (e) {
        if (Date.now() > deadline2) throw e;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  });

  test('a key limited to embed-test sees only that model and gets 404 for hcx-test', async () => {
    const key = await t.admin('POST', `/organizations/${catalog.organizationId}/keys`, {
      name: 'embeddings only',
      allowedModels: ['embed-test'],
    });
    assert.equal(key.status, 201);
    const limited = new OpenAI({ apiKey: key.body.key, baseURL: `${t.url}/v1`, maxRetries: 0 });
    const models = await limited.models.list();
    assert.deepEqual(
      models.data.map((m) => m.id),
      ['embed-test'],
    );
    await assert.rejects(
      limited.chat.completions.create({ model: 'hcx-test', messages: [{ role: 'user', content: 'x' }] }),
      (e: unknown) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found',
    );
    await assert.rejects(
      limited.models.retrieve('hcx-test'),
      (e: unknown) => e instanceof OpenAI.NotFoundError,
    );
    const answer = await post(
      '/v1/chat/completions',
      JSON.stringify({ model: 'hcx-test', messages: user }),
      key.body.key,
    );
    assertError(answer, 404, { code: 'model_not_found' });
    assert.equal(fake.requests.length, 0, 'a forbidden model never reaches the upstream');
    const embedding = await limited.embeddings.create({
      model: 'embed-test',
      input: 'ok',
      encoding_format: 'float',
    });
    assert.equal(embedding.data.length, 1);
    await assertHubServes();
  });

  test('an unknown /v1 path is a 404, and GET on chat completions is a 404 or 405, in OpenAI shape', async () => {
    const headers = { authorization: `Bearer ${catalog.key}` };
    for (const [method, path] of [
      ['GET', '/v1/nope'],
      ['POST', '/v1/nope'],
      ['POST', '/v1/completions/extra'],
      ['DELETE', '/v1/models/hcx-test'],
      // a broken percent-encoding is a path that names nothing, not a crash
      ['GET', '/v1/models/%E0%A4%A'],
    ] as const) {
      const res = await fetch(`${t.url}${path}`, { method, headers });
      const body = await res.json();
      assertError({ status: res.status, headers: res.headers, body }, 404, { type: 'invalid_request_error' });
    }
    const res = await fetch(`${t.url}/v1/chat/completions`, { headers });
    assert.ok([404, 405].includes(res.status), `GET /v1/chat/completions: ${res.status}`);
    const body = await res.json();
    assertMatchesSchema(ERROR_RESPONSE, body);
    assert.ok(res.headers.get('x-request-id'), 'x-request-id on the 404/405');
    await assertHubServes();
  });

  test('embeddings refuse bad input naming the field', async () => {
    assertError(await embed({ model: 'embed-test', input: 5 }), 400, {
      type: 'invalid_request_error',
      param: 'input',
    });
    assertError(await embed({ model: 'embed-test', input: [] }), 400, { param: 'input' });
    assertError(await embed({ model: 'embed-test', input: ['a', 1] }), 400, { param: 'input' });
    assertError(await embed({ model: 'embed-test' }), 400, { param: 'input' });
    assertError(await embed({ input: 'x' }), 400, { param: 'model' });
    assertError(await embed({ model: 'embed-test', input: 'x', encoding_format: 'hex' }), 400, {
      param: 'encoding_format',
    });
    assertError(await embed({ model: 'embed-test', input: 'x', dimensions: 0 }), 400, {
      param: 'dimensions',
    });
    await assert.rejects(
      client.embeddings.create({ model: 'embed-test', input: 'x', encoding_format: 'hex' as never }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === 'encoding_format',
    );
    assert.equal(fake.requests.length, 0);
    await assertHubServes();
  });
});
