import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { Catalog, TestHub } from './hub.ts';

/** A loopback port nothing listens on: connecting to it is refused at once. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * The usage record of one request, waiting for it (a cancelled stream is metered after the fact);
 * there must be exactly one.
 */
export async function usageEvent(
  t: Pick<TestHub, 'admin'>,
  requestId: string,
  timeoutMs = 2000,
): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await t.admin('GET', `/usage/events?requestId=${requestId}`);
    assert.equal(r.status, 200);
    if (r.body.data.length > 0) {
      assert.equal(r.body.data.length, 1, 'one usage record per request');
      return r.body.data[0];
    }
    if (Date.now() > deadline) assert.fail(`no usage record for ${requestId}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** A usage record's attempts as `deployment:outcome[ status]` strings, in order, for short assertions. */
export function attemptTrace(event: {
  attempts: { deploymentId: string; outcome: string; httpStatus: number | null }[];
}): string[] {
  return event.attempts.map(
    (a) => `${a.deploymentId}:${a.outcome}${a.httpStatus === null ? '' : ` ${a.httpStatus}`}`,
  );
}

/**
 * A chat product of the seeded supplier (1,000 / 3,000 KRW per 1M tokens) with one
 * openai-compatible deployment per entry; the upstream model name picks a fake's behaviour.
 */
export async function addProduct(
  t: Pick<TestHub, 'admin'>,
  catalog: Catalog,
  model: string,
  deployments: { baseUrl: string; upstreamModel?: string; priority?: number }[],
  extra: Record<string, unknown> = {},
): Promise<{ productId: string; deploymentIds: string[] }> {
  const product = await t.admin('POST', '/products', {
    supplierId: catalog.supplierId,
    model,
    displayName: model,
    purposes: ['chat'],
    modality: 'text',
    contextWindow: 8192,
    priceInputPer1M: '1000',
    priceOutputPer1M: '3000',
    residency: 'domestic',
    ...extra,
  });
  assert.equal(product.status, 201, JSON.stringify(product.body));
  const deploymentIds: string[] = [];
  for (const d of deployments) {
    const created = await t.admin('POST', '/deployments', {
      productId: product.body.id,
      adapter: 'openai-compatible',
      baseUrl: d.baseUrl,
      apiKey: 'upstream-secret',
      upstreamModel: d.upstreamModel ?? 'fake-chat',
      priority: d.priority ?? 0,
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    deploymentIds.push(created.body.id);
  }
  return { productId: product.body.id, deploymentIds };
}

/**
 * POSTs to /v1 with raw fetch, for cases the openai client hides (statuses, headers, SSE text).
 * `body` is the parsed JSON when the answer is JSON: a completion or an error, as the case may be.
 */
export async function postV1(
  t: Pick<TestHub, 'url'>,
  key: string,
  path: string,
  request: Record<string, unknown>,
) {
  const res = await fetch(`${t.url}/v1${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(request),
  });
  const text = await res.text();
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined; // an event stream
  }
  return {
    status: res.status,
    headers: res.headers,
    requestId: res.headers.get('x-request-id')!,
    text,
    body,
  };
}
