import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import {
  type AddressInfo,
  createServer as createTcpServer,
  type Socket,
  type Server as TcpServer,
} from 'node:net';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { formatKrw } from '../../src/billing/money.ts';
import { type FakeOpenAI, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import { runAdminInProcess } from '../helpers/cli.ts';
import { ADMIN_TOKEN, seedCatalog, startTestHub, type TestHub } from '../helpers/hub.ts';
import { usageEvent } from '../helpers/v1.ts';

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  status: number;
}

describe('voucher alerts: events at 80 % and 100 %, delivered to webhooks, signed, retried, off the request path', () => {
  let fake: FakeOpenAI;
  let t: TestHub;
  let receiver: Server;
  let receiverUrl: string;
  const received: Received[] = [];
  let failuresLeft = 2;
  /** The organisation whose voucher raised events in the first test: the CLI test reads them. */
  let alerted: { organizationId: string; voucherId: string } | undefined;

  before(async () => {
    fake = await startFakeOpenAI({ apiKey: 'upstream-secret' });
    // the organisation's receiver runs on this machine: the operator allows loopback for the test
    t = await startTestHub({ KAIHUB_SUPPLIER_NETWORKS: '127.0.0.0/8', KAIHUB_WEBHOOK_RETRY_BASE_MS: '100' });
    await seedCatalog(t, fake.url);
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => {
        body += d;
      });
      req.on('end', () => {
        const status = failuresLeft-- > 0 ? 500 : 204;
        received.push({ headers: req.headers, body, status });
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/kaihub-events`;
  });
  after(async () => {
    await t?.close();
    await fake?.close();
    await new Promise((resolve) => receiver?.close(resolve));
  });

  test('a voucher used past 80 % and then up raises one event each; each reaches the webhook once, signed', async () => {
    const must = async (method: string, path: string, body?: unknown) => {
      const r = await t.admin(method, path, body);
      assert.ok(
        r.status >= 200 && r.status < 300,
        `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`,
      );
      return r.body;
    };
    const client = async (organizationId: string) => {
      const key = await must('POST', `/organizations/${organizationId}/keys`, { name: 'k' });
      return new OpenAI({ apiKey: key.key, baseURL: `${t.url}/v1`, maxRetries: 0 });
    };
    const ask = (c: OpenAI) =>
      c.chat.completions
        .create({ model: 'hcx-test', messages: [{ role: 'user', content: '안녕' }], max_tokens: 5 })
        .withResponse();
    fake.setReply('하나 둘 셋');

    // one call's cost, measured on another organisation, sizes the voucher for five
    const twin = await must('POST', '/organizations', { name: '알림 쌍둥이', class: 'sme' });
    const probe = await ask(await client(twin.id));
    const one = BigInt((await usageEvent(t, probe.response.headers.get('x-request-id')!, 5000)).costMicroKrw);

    const org = await must('POST', '/organizations', {
      name: '알림 기업',
      class: 'sme',
      spendMode: 'prepaid',
    });
    const programme = await must('POST', '/programmes', {
      name: '알림 바우처',
      startsOn: '2026-01-01',
      endsOn: '2030-12-31',
      budgetKrw: '1000000',
      copayPercent: { sme: 0 },
      onExhausted: 'self-pay',
    });
    const voucher = await must('POST', `/programmes/${programme.id}/vouchers`, {
      organizationId: org.id,
      amountKrw: formatKrw(one * 5n),
    });
    await must('POST', `/organizations/${org.id}/deposits`, { amountKrw: '100' });

    const refused = await t.admin('POST', `/organizations/${org.id}/webhooks`, {
      url: 'http://10.1.2.3/hook',
    });
    assert.equal(refused.status, 400, 'an inside address the operator did not allow');
    assert.equal(refused.body.error.fields[0].field, 'url');
    const webhook = await must('POST', `/organizations/${org.id}/webhooks`, { url: receiverUrl });
    assert.match(webhook.secret, /^whsec_/, 'the signing secret, shown once');
    const listed = await must('GET', `/organizations/${org.id}/webhooks`);
    assert.equal(listed.data[0].secret, undefined, 'and never again');

    const c = await client(org.id);
    // Each call after the last one's hold is gone: since decision 0021 a charge (and, with Redis, the
    // settling of its hold) lands just after the response, and a call admitted while the previous hold
    // still covers its worst case would find the voucher's last fifth spoken for and pay from the wallet.
    const settled = async () => {
      const deadline = Date.now() + 10_000;
      while ((await must('GET', `/organizations/${org.id}/funds`)).heldKrw !== formatKrw(0n)) {
        if (Date.now() > deadline) assert.fail('a hold outlived its call by 10 s');
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    for (let i = 0; i < 6; i++) {
      await ask(c);
      await settled();
    }

    // the events are in the organisation's log at once; the deliveries follow
    const deadline = Date.now() + 15_000;
    let events: {
      kind: string;
      data: { percentUsed: number; voucherId: string };
      deliveries: { status: string }[];
    }[] = [];
    for (;;) {
      events = (await must('GET', `/organizations/${org.id}/events`)).data;
      if (events.length === 2 && events.every((e) => e.deliveries[0]?.status === 'delivered')) break;
      if (Date.now() > deadline) assert.fail(`not delivered: ${JSON.stringify(events)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(
      events.map((e) => e.data.percentUsed).sort((a, b) => a - b),
      [80, 100],
    );
    for (const e of events) {
      assert.equal(e.kind, 'voucher.threshold');
      assert.equal(e.data.voucherId, voucher.id);
    }
    alerted = { organizationId: org.id, voucherId: voucher.id };

    const ok = received.filter((r) => r.status === 204);
    assert.equal(ok.length, 2, 'each event delivered once');
    assert.equal(received.length, 4, 'after two failed attempts, retried');
    const ids = new Set(ok.map((r) => r.headers['x-kaihub-event-id']));
    assert.equal(ids.size, 2);
    for (const r of received) {
      const [t1, v1] = String(r.headers['x-kaihub-signature']).split(',');
      const stamp = Number(t1!.slice(2));
      assert.ok(Math.abs(stamp - Date.now() / 1000) < 60, 'a fresh timestamp');
      const expected = createHmac('sha256', webhook.secret).update(`${stamp}.${r.body}`).digest('hex');
      assert.equal(v1, `v1=${expected}`, 'signed with the webhook’s secret');
      const body = JSON.parse(r.body);
      assert.equal(body.type, 'voucher.threshold');
      assert.equal(body.organizationId, org.id);
    }

    // a disabled webhook gets nothing more
    await must('DELETE', `/webhooks/${webhook.id}`);
    assert.ok((await must('GET', `/organizations/${org.id}/webhooks`)).data[0].disabledAt);
  });

  test('the CLI: an organisation’s webhooks created, listed and deleted, and its events listed', async () => {
    assert.ok(alerted, 'the events of the test before');
    const env = { KAIHUB_URL: t.url, KAIHUB_ADMIN_TOKEN: ADMIN_TOKEN };
    const run = (...args: string[]) => runAdminInProcess(args, env);
    const org = await t.admin('POST', '/organizations', { name: '웹훅 CLI 기업', class: 'sme' });
    assert.equal(org.status, 201);

    const created = await run('webhooks', 'create', org.body.id, receiverUrl);
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /whsec_/, 'the secret, shown this once');
    assert.match(created.stderr, /한 번만.*only this once/);
    const createdJson = await run('webhooks', 'create', org.body.id, `${receiverUrl}/2`, '--json');
    assert.equal(createdJson.code, 0, createdJson.stderr);
    const second = JSON.parse(createdJson.stdout);
    assert.match(second.id, /^whk_/);
    const refused = await run('webhooks', 'create', org.body.id, 'http://10.1.2.3/hook');
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /- url: /, 'the field named');
    const noUrl = await run('webhooks', 'create', org.body.id);
    assert.equal(noUrl.code, 1);
    assert.match(noUrl.stderr, /<orgId> <url>/);

    const listed = await run('webhooks', 'list', org.body.id);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /주소 URL/);
    assert.match(listed.stdout, new RegExp(second.id));
    assert.doesNotMatch(listed.stdout, /whsec_/, 'never again');

    const deleted = await run('webhooks', 'delete', second.id, '--json');
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.ok(JSON.parse(deleted.stdout).disabledAt);
    const after = JSON.parse((await run('webhooks', 'list', org.body.id, '--json')).stdout);
    type Listed = { id: string; disabledAt: string | null };
    assert.equal(after.data.length, 2);
    assert.ok(after.data.find((w: Listed) => w.id === second.id).disabledAt, 'the deleted one is disabled');
    assert.equal(after.data.find((w: Listed) => w.id !== second.id).disabledAt, null, 'the other is not');
    const missing = await run('webhooks', 'delete', 'whk_nope');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /404/);

    const events = await run('events', alerted.organizationId);
    assert.equal(events.code, 0, events.stderr);
    assert.match(events.stdout, /종류 Kind/);
    assert.equal(events.stdout.match(/voucher\.threshold/g)?.length, 2);
    assert.match(events.stdout, /delivered/);
    const limited = JSON.parse(
      (await run('events', alerted.organizationId, '--limit', '1', '--json')).stdout,
    );
    assert.equal(limited.data.length, 1);
    assert.equal(limited.data[0].data.voucherId, alerted.voucherId);
    const none = await run('events', org.body.id);
    assert.equal(none.code, 0, none.stderr);
    assert.match(none.stdout, /없음 \/ none/);
    const usage = await run('events');
    assert.equal(usage.code, 1);
    assert.match(usage.stderr, /orgId/);
  });
});

describe('voucher alerts when the webhook never answers', () => {
  let fake: FakeOpenAI;
  let t: TestHub;
  let receiver: TcpServer;
  let receiverUrl: string;
  const sockets = new Set<Socket>();
  let bytesReceived = 0;

  before(async () => {
    fake = await startFakeOpenAI({ apiKey: 'upstream-secret' });
    t = await startTestHub({ KAIHUB_SUPPLIER_NETWORKS: '127.0.0.0/8' });
    await seedCatalog(t, fake.url);
    // accepts, reads the request, and never says a word
    receiver = createTcpServer((socket) => {
      sockets.add(socket);
      socket.on('data', (d) => {
        bytesReceived += d.length;
      });
      socket.on('error', () => {});
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hangs`;
  });
  after(async () => {
    // the hung delivery fails at once, so the hub's dispatcher stops without waiting out its timeout
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => receiver?.close(resolve));
    await t?.close();
    await fake?.close();
  });

  test('calls crossing 80 % and 100 % and after them answer promptly; the events are in the log, undelivered', async () => {
    const must = async (method: string, path: string, body?: unknown) => {
      const r = await t.admin(method, path, body);
      assert.ok(
        r.status >= 200 && r.status < 300,
        `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`,
      );
      return r.body;
    };
    const client = async (organizationId: string) => {
      const key = await must('POST', `/organizations/${organizationId}/keys`, { name: 'k' });
      return new OpenAI({ apiKey: key.key, baseURL: `${t.url}/v1`, maxRetries: 0 });
    };
    const ask = (c: OpenAI) =>
      c.chat.completions
        .create({ model: 'hcx-test', messages: [{ role: 'user', content: '안녕' }], max_tokens: 5 })
        .withResponse();
    fake.setReply('하나 둘 셋');

    const twin = await must('POST', '/organizations', { name: '먹통 쌍둥이', class: 'sme' });
    const probe = await ask(await client(twin.id));
    const one = BigInt((await usageEvent(t, probe.response.headers.get('x-request-id')!, 5000)).costMicroKrw);

    const org = await must('POST', '/organizations', {
      name: '먹통 기업',
      class: 'sme',
      spendMode: 'prepaid',
    });
    const programme = await must('POST', '/programmes', {
      name: '먹통 바우처',
      startsOn: '2026-01-01',
      endsOn: '2030-12-31',
      budgetKrw: '1000000',
      copayPercent: { sme: 0 },
      onExhausted: 'self-pay',
    });
    const voucher = await must('POST', `/programmes/${programme.id}/vouchers`, {
      organizationId: org.id,
      amountKrw: formatKrw(one * 5n),
    });
    await must('POST', `/organizations/${org.id}/deposits`, { amountKrw: '100' });
    await must('POST', `/organizations/${org.id}/webhooks`, { url: receiverUrl });

    const c = await client(org.id);
    const settled = async () => {
      const deadline = Date.now() + 10_000;
      while ((await must('GET', `/organizations/${org.id}/funds`)).heldKrw !== formatKrw(0n)) {
        if (Date.now() > deadline) assert.fail('a hold outlived its call by 10 s');
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const timed = async () => {
      const started = performance.now();
      const { data } = await ask(c);
      const ms = performance.now() - started;
      assert.ok(data.choices[0]?.message.content);
      assert.ok(ms < 1000, `a call took ${Math.round(ms)} ms`);
      return ms;
    };
    const took: number[] = [];
    // four calls: the fourth carries the voucher to 80 %
    for (let i = 0; i < 4; i++) {
      took.push(await timed());
      await settled();
    }
    // the dispatcher has picked the event up and is stuck on the receiver
    const deadline = Date.now() + 10_000;
    while (sockets.size === 0 || bytesReceived === 0) {
      if (Date.now() > deadline) assert.fail('the dispatcher never reached the receiver');
      await new Promise((r) => setTimeout(r, 50));
    }
    // calls while a delivery hangs, one crossing 100 %, then past it on the wallet
    for (let i = 0; i < 3; i++) {
      took.push(await timed());
      await settled();
    }
    assert.ok(sockets.size > 0, 'the delivery still hangs');

    const events = (await must('GET', `/organizations/${org.id}/events`)).data as {
      kind: string;
      data: { percentUsed: number; voucherId: string };
      deliveries: { status: string }[];
    }[];
    assert.deepEqual(
      events.map((e) => e.data.percentUsed).sort((a, b) => a - b),
      [80, 100],
      JSON.stringify(events),
    );
    for (const e of events) {
      assert.equal(e.kind, 'voucher.threshold');
      assert.equal(e.data.voucherId, voucher.id);
      assert.deepEqual(
        e.deliveries.map((d) => d.status),
        ['pending'],
        'not delivered, not given up',
      );
    }
    process.stdout.write(
      `[alerts] call times with a hung webhook (ms): ${took.map((ms) => Math.round(ms)).join(' ')}\n`,
    );
  });

  test("another organisation's webhook is delivered while this one hangs", async () => {
    assert.ok(sockets.size > 0, 'the first delivery still hangs');
    const received: string[] = [];
    const answering = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => {
        body += d;
      });
      req.on('end', () => {
        received.push(body);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => answering.listen(0, '127.0.0.1', resolve));
    try {
      const must = async (method: string, path: string, body?: unknown) => {
        const r = await t.admin(method, path, body);
        assert.ok(r.status >= 200 && r.status < 300, `${method} ${path}: ${r.status}`);
        return r.body;
      };
      const org = await must('POST', '/organizations', { name: '답하는 기업', class: 'sme' });
      const programme = await must('POST', '/programmes', {
        name: '답하는 바우처',
        startsOn: '2026-01-01',
        endsOn: '2030-12-31',
        budgetKrw: '1000000',
        copayPercent: { sme: 0 },
        onExhausted: 'self-pay',
      });
      // a voucher the first call uses up past 80 %
      await must('POST', `/programmes/${programme.id}/vouchers`, {
        organizationId: org.id,
        amountKrw: '0.01',
      });
      const port = (answering.address() as AddressInfo).port;
      await must('POST', `/organizations/${org.id}/webhooks`, { url: `http://127.0.0.1:${port}/ok` });
      const key = await must('POST', `/organizations/${org.id}/keys`, { name: 'k' });
      const c = new OpenAI({ apiKey: key.key, baseURL: `${t.url}/v1`, maxRetries: 0 });
      await c.chat.completions.create({
        model: 'hcx-test',
        messages: [{ role: 'user', content: '안녕' }],
        max_tokens: 5,
      });
      // the hung delivery waits out its 10 s timeout; this one must not wait behind it
      const started = Date.now();
      while (received.length === 0 && Date.now() - started < 5_000)
        await new Promise((r) => setTimeout(r, 50));
      assert.ok(received.length >= 1, 'delivered within 5 s, beside the hung one');
      // one call took the voucher past 80 % and 100 %: one event each
      for (const body of received) assert.equal(JSON.parse(body).organizationId, org.id);
      assert.ok(sockets.size > 0, 'while the other still hangs');
    } finally {
      await new Promise((resolve) => answering.close(resolve));
    }
  });
});
