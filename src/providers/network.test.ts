import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { createSupplierAgent, isPublicAddress, NetworkPolicy, parseNetworks } from './network.ts';

const networks = (list: string) => {
  const parsed = parseNetworks(list);
  if ('problem' in parsed) throw new Error(parsed.problem);
  return parsed.networks;
};

test('public addresses are told from loopback, private, link-local, shared, reserved and multicast ones', () => {
  for (const address of ['8.8.8.8', '211.249.220.24', '2001:4860:4860::8888', '::ffff:8.8.8.8'])
    assert.equal(isPublicAddress(address), true, address);
  for (const address of [
    '127.0.0.1',
    '127.255.0.9',
    '10.1.2.3',
    '172.16.0.1',
    '172.31.255.254',
    '192.168.0.10',
    '169.254.169.254', // cloud metadata
    '100.64.0.1',
    '0.0.0.0',
    '224.0.0.1',
    '255.255.255.255',
    '::1',
    '::',
    'fe80::1',
    'fd00::1',
    '::ffff:127.0.0.1',
    '::ffff:7f00:1', // the same, as URL parsing writes it
    '64:ff9b::a00:1', // NAT64 of 10.0.0.1
    'not-an-address',
  ])
    assert.equal(isPublicAddress(address), false, address);
});

test('KAIHUB_SUPPLIER_NETWORKS: addresses and networks, a clear problem otherwise', () => {
  const ok = networks('10.20.0.0/16, fd00:1::/64,192.168.7.7');
  assert.ok(ok.check('10.20.3.4', 'ipv4'));
  assert.ok(ok.check('192.168.7.7', 'ipv4'));
  assert.ok(!ok.check('192.168.7.8', 'ipv4'));
  assert.ok(ok.check('fd00:1::5', 'ipv6'));
  for (const bad of ['10.0.0.0/33', 'example.com', '10.0.0.0/8/1', 'fd00::/129', '10.0.0.0/x'])
    assert.ok('problem' in parseNetworks(bad), bad);
});

test("a supplier admin's base URL: https to a public host, or an allowed network", () => {
  const policy = new NetworkPolicy(networks('10.20.0.0/16'));
  const accepted = [
    'https://clovastudio.stream.ntruss.com',
    'https://api.upstage.ai/v1',
    'https://211.249.220.24/v1',
    'http://10.20.0.5:8000/v1', // the operator vouches for this network: its private link
    'https://10.20.0.5/v1',
    'not a url', // the field's own validation names it
  ];
  for (const url of accepted) assert.equal(policy.urlProblem(url), undefined, url);
  const refused: [string, RegExp][] = [
    ['http://api.upstage.ai/v1', /https/],
    ['http://211.249.220.24/v1', /https/],
    ['https://127.0.0.1:8080/v1', /127\.0\.0\.1 is not a public address/],
    ['https://10.0.0.5/v1', /not a public address/],
    ['https://169.254.169.254/latest', /not a public address/],
    ['https://[::1]:8443/v1', /::1 is not a public address/],
    ['https://[::ffff:127.0.0.1]/v1', /not a public address/],
    ['https://localhost:8080/v1', /localhost is this machine/],
    ['https://vllm.localhost/v1', /this machine/],
  ];
  for (const [url, problem] of refused) assert.match(policy.urlProblem(url) ?? '', problem, url);
});

describe('the pool for supplier admins’ URLs checks every address when it connects', () => {
  let server: Server;
  let port: number;
  let hits = 0;
  before(async () => {
    server = createServer((_req, res) => {
      hits++;
      res.end('ok');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  /** A policy whose names resolve as given: what DNS answers when the hub connects. */
  const policyResolving = (answers: Record<string, string[]>, allowed = '') => {
    const policy = new NetworkPolicy(networks(allowed));
    policy.resolve = (hostname, _options, callback) => {
      const addresses = answers[hostname];
      if (!addresses) return callback(Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' }), []);
      callback(
        null,
        addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })),
      );
    };
    return policy;
  };

  const get = async (policy: NetworkPolicy, url: string) => {
    const agent = createSupplierAgent(policy, 2_000);
    try {
      const response = await request(url, { dispatcher: agent });
      return { status: response.statusCode, text: await response.body.text() };
    } catch (error) {
      return { error: error as NodeJS.ErrnoException };
    } finally {
      await agent.close();
    }
  };

  test('a name that resolves inside (DNS rebinding after the URL was checked) is refused', async () => {
    const before = hits;
    const policy = policyResolving({ 'api.supplier.example': ['127.0.0.1'] });
    const r = await get(policy, `http://api.supplier.example:${port}/v1`);
    assert.equal(r.error?.code, 'EKAIHUBNETWORK');
    assert.match(
      r.error?.message ?? '',
      /api\.supplier\.example resolves to 127\.0\.0\.1, not a public address/,
    );
    assert.equal(hits, before, 'nothing reached the address');
  });

  test('one inside address among public ones is enough to refuse', async () => {
    const policy = policyResolving({ 'api.supplier.example': ['8.8.8.8', '127.0.0.1'] });
    const r = await get(policy, `http://api.supplier.example:${port}/v1`);
    assert.equal(r.error?.code, 'EKAIHUBNETWORK');
  });

  test('an address written in the URL is checked too (no lookup happens for it)', async () => {
    const before = hits;
    const policy = policyResolving({});
    for (const host of ['127.0.0.1', '[::ffff:127.0.0.1]']) {
      const r = await get(policy, `http://${host}:${port}/v1`);
      assert.equal(r.error?.code, 'EKAIHUBNETWORK', host);
    }
    assert.equal(hits, before);
  });

  test('networks the operator allows are reached, by name and by address', async () => {
    const before = hits;
    const policy = policyResolving({ 'link.supplier.example': ['127.0.0.1'] }, '127.0.0.0/8');
    assert.deepEqual(await get(policy, `http://link.supplier.example:${port}/v1`), {
      status: 200,
      text: 'ok',
    });
    assert.deepEqual(await get(policy, `http://127.0.0.1:${port}/v1`), { status: 200, text: 'ok' });
    assert.equal(hits, before + 2);
  });

  test('a name that does not resolve keeps its own error', async () => {
    const r = await get(policyResolving({}), `http://nowhere.example:${port}/v1`);
    assert.equal(r.error?.code, 'ENOTFOUND');
  });
});
