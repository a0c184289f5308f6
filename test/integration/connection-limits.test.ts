import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { type FakeOpenAI, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import { createTestDatabase } from '../helpers/databases.ts';
import { type Catalog, seedCatalog, startTestHub, type TestHub } from '../helpers/hub.ts';

const BIN = fileURLToPath(new URL('../../bin/kaihub.mjs', import.meta.url));

/** A raw connection to the hub, with everything it received and whether the hub closed it. */
interface RawConnection {
  socket: Socket;
  received(): string;
  /** Resolves when the hub ends or resets the connection; rejects after `timeoutMs`. */
  closed(timeoutMs: number): Promise<void>;
}

function openRaw(url: string): Promise<RawConnection> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let text = '';
    let isClosed = false;
    const waiters: (() => void)[] = [];
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      text += d;
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      isClosed = true;
      for (const w of waiters) w();
    });
    socket.once('connect', () =>
      resolve({
        socket,
        received: () => text,
        closed: (timeoutMs) =>
          new Promise<void>((done, fail) => {
            if (isClosed) return done();
            const timer = setTimeout(
              () => fail(new Error(`still open after ${timeoutMs} ms; received: ${JSON.stringify(text)}`)),
              timeoutMs,
            );
            waiters.push(() => {
              clearTimeout(timer);
              done();
            });
          }),
      }),
    );
    socket.once('error', reject);
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Sends one request on a raw connection and waits for a whole answer (content-length framed). */
async function rawRequest(c: RawConnection, request: string, timeoutMs = 3000): Promise<string> {
  const before = c.received().length;
  c.socket.write(request);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = c.received().slice(before);
    const head = answer.indexOf('\r\n\r\n');
    const length = /content-length: (\d+)/i.exec(answer)?.[1];
    if (head !== -1 && length !== undefined && answer.length >= head + 4 + Number(length)) return answer;
    if (Date.now() > deadline)
      throw new Error(`no whole answer in ${timeoutMs} ms: ${JSON.stringify(answer)}`);
    await sleep(10);
  }
}

const healthz = 'GET /healthz HTTP/1.1\r\nhost: hub\r\n\r\n';

describe('a request must arrive whole within KAIHUB_REQUEST_TIMEOUT_MS', () => {
  let fake: FakeOpenAI;
  let t: TestHub;
  let catalog: Catalog;
  const timeoutMs = 1000;

  before(async () => {
    fake = await startFakeOpenAI({ apiKey: 'upstream-secret', chunkDelayMs: 250 });
    t = await startTestHub({ KAIHUB_REQUEST_TIMEOUT_MS: String(timeoutMs) });
    catalog = await seedCatalog(t, fake.url);
  });
  after(async () => {
    await t?.close();
    await fake?.close();
  });

  test('a body trickled one byte at a time gets 408 and the connection is closed', async () => {
    const c = await openRaw(t.url);
    const body = JSON.stringify({ model: 'hcx-test', messages: [{ role: 'user', content: 'slow' }] });
    c.socket.write(
      `POST /v1/chat/completions HTTP/1.1\r\nhost: hub\r\nauthorization: Bearer ${catalog.key}\r\n` +
        `content-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`,
    );
    const startedAt = Date.now();
    const trickle = setInterval(() => {
      if (!c.socket.destroyed) c.socket.write(body[Math.floor((Date.now() - startedAt) / 200)] ?? ' ');
    }, 200);
    try {
      await c.closed(timeoutMs + 2500);
    } finally {
      clearInterval(trickle);
    }
    const elapsed = Date.now() - startedAt;
    assert.match(c.received(), /^HTTP\/1\.1 408 /, c.received());
    assert.ok(elapsed >= timeoutMs - 50, `closed after ${elapsed} ms`);
    assert.equal(fake.requests.length, 0, 'nothing half-received reaches the upstream');
  });

  test('headers trickled one line at a time get 408 too', async () => {
    const c = await openRaw(t.url);
    const lines = ['POST /v1/chat/completions HTTP/1.1\r\n', 'host: hub\r\n'];
    for (let i = 0; i < 20; i++) lines.push(`x-slow-${i}: ${i}\r\n`);
    let i = 0;
    const trickle = setInterval(() => {
      if (!c.socket.destroyed && i < lines.length) c.socket.write(lines[i++]!);
    }, 200);
    try {
      await c.closed(timeoutMs + 2500);
    } finally {
      clearInterval(trickle);
    }
    assert.match(c.received(), /^HTTP\/1\.1 408 /, c.received());
  });

  test('a streamed answer longer than the timeout is not cut, and idle keep-alive connections stay', async () => {
    const client = new OpenAI({ apiKey: catalog.key, baseURL: `${t.url}/v1`, maxRetries: 0 });
    const startedAt = Date.now();
    const stream = await client.chat.completions.create({
      model: 'hcx-test',
      // 9 words: the fake sends a chunk every 250 ms, ≈ 2.5 s in all
      messages: [{ role: 'user', content: '하나 둘 셋 넷 다섯 여섯 일곱 여덟' }],
      stream: true,
    });
    let text = '';
    let finished = false;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.choices[0]?.finish_reason === 'stop') finished = true;
    }
    assert.ok(Date.now() - startedAt > 2 * timeoutMs, 'the stream outlived the receive timeout');
    assert.equal(text, 'Echo: 하나 둘 셋 넷 다섯 여섯 일곱 여덟');
    assert.ok(finished);

    // a keep-alive connection waiting between two requests is not receiving one
    const c = await openRaw(t.url);
    assert.match(await rawRequest(c, healthz), /^HTTP\/1\.1 200 /);
    await sleep(timeoutMs + 500);
    assert.match(await rawRequest(c, healthz), /^HTTP\/1\.1 200 /);
    c.socket.destroy();
  });
});

describe('KAIHUB_MAX_CONNECTIONS caps open connections', () => {
  let t: TestHub;
  const cap = 4;

  before(async () => {
    t = await startTestHub({ KAIHUB_MAX_CONNECTIONS: String(cap) });
  });
  after(async () => {
    await t?.close();
  });

  async function openConnections(): Promise<number> {
    return new Promise((resolve, reject) =>
      t.hub.server.getConnections((error, count) => (error ? reject(error) : resolve(count))),
    );
  }

  test('connections past the cap are closed unanswered; the others keep working; a freed slot is reused', async () => {
    // the test hub's own start left no connection open
    t.hub.server.closeIdleConnections();
    const deadline = Date.now() + 2000;
    while ((await openConnections()) > 0 && Date.now() < deadline) await sleep(20);

    const held: RawConnection[] = [];
    for (let i = 0; i < cap; i++) {
      const c = await openRaw(t.url);
      assert.match(await rawRequest(c, healthz), /^HTTP\/1\.1 200 /, `connection ${i}`);
      held.push(c);
    }
    const extra = await openRaw(t.url);
    extra.socket.write(healthz);
    await extra.closed(2000);
    assert.equal(extra.received(), '', 'the connection over the cap is closed without an answer');

    for (const c of held)
      assert.match(await rawRequest(c, healthz), /^HTTP\/1\.1 200 /, 'held connections still served');

    held.pop()!.socket.destroy();
    // the slot frees once the hub has seen the close
    let served = false;
    for (let attempt = 0; attempt < 20 && !served; attempt++) {
      await sleep(50);
      const c = await openRaw(t.url);
      c.socket.write(healthz);
      const closedOrAnswered = await Promise.race([
        c.closed(1000).then(() => 'closed'),
        sleep(500).then(() => 'open'),
      ]);
      served = closedOrAnswered === 'open' && /^HTTP\/1\.1 200 /.test(c.received());
      c.socket.destroy();
    }
    assert.ok(served, 'a new connection is served once another closed');
    for (const c of held) c.socket.destroy();
  });
});

describe('KAIHUB_MAX_CONNECTIONS is checked against the open-file limit at start', () => {
  /** Starts `kaihub start` under `ulimit -n <openFiles>`, stops it once listening, returns all it printed. */
  async function startUnderLimit(openFiles: number, env: Record<string, string>): Promise<string> {
    const database = await createTestDatabase();
    const child = spawn(
      'sh',
      ['-c', `ulimit -n ${openFiles} && exec "$0" "$1" start`, process.execPath, BIN],
      {
        env: {
          ...process.env,
          PORT: '0',
          HOST: '127.0.0.1',
          KAIHUB_DATABASE: database.location,
          KAIHUB_DATA_DIR: database.dataDir,
          KAIHUB_ADMIN_TOKEN: 'test-admin-token-0123456789',
          KAIHUB_SECRET_KEY: randomBytes(32).toString('hex'),
          KAIHUB_LOG_LEVEL: 'warn',
          ...env,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    // the output until the process is gone: the log (stdout) and the URL line (stderr) arrive on two
    // pipes in no fixed order
    const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    try {
      const deadline = Date.now() + 30_000;
      while (!/K-AI Hub: http/.test(output)) {
        if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}: ${output}`);
        if (Date.now() > deadline) throw new Error(`not listening after 30 s: ${output}`);
        await sleep(50);
      }
    } finally {
      child.kill('SIGTERM');
      await closed;
      await database.drop();
    }
    return output;
  }

  test('a cap the open-file limit cannot hold is a clear warning; one it can, or the default, is silent', async () => {
    const warned = await startUnderLimit(1024, { KAIHUB_MAX_CONNECTIONS: '10000' });
    assert.match(warned, /KAIHUB_MAX_CONNECTIONS=10000 needs about 20100 open files/);
    assert.match(warned, /may open 1024 \(ulimit -n\)/);
    assert.match(warned, /lower KAIHUB_MAX_CONNECTIONS to 462/);
    const quiet = await startUnderLimit(1024, { KAIHUB_MAX_CONNECTIONS: '400' });
    assert.doesNotMatch(quiet, /KAIHUB_MAX_CONNECTIONS/);
    // unset, the cap is what the limit holds (462 here): nothing to warn about
    const defaulted = await startUnderLimit(1024, {});
    assert.doesNotMatch(defaulted, /KAIHUB_MAX_CONNECTIONS/);
  });
});
