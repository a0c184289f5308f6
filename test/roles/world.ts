import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import OpenAI from 'openai';
import type { FakeOpenAI } from '../fakes/openai-upstream.ts';
import { ADMIN_TOKEN, type TestHub } from '../helpers/hub.ts';

/**
 * Two tenants, A and B, each a supplier with a product and a deployment and an organisation with a
 * key and a usage record; and one person per role, each with a personal access token, A's people
 * belonging to A. The tenant matrix (tenant-matrix.rows.ts) runs every route as each of them
 * against A's things ("own") and B's ("foreign").
 */

/** `nobody`: a signed-in user without any membership. */
export type Who =
  | 'operator-token'
  | 'operator'
  | 'supplier_admin'
  | 'org_admin'
  | 'org_member'
  | 'evaluator'
  | 'nobody';
export const WHO: readonly Who[] = [
  'operator-token',
  'operator',
  'supplier_admin',
  'org_admin',
  'org_member',
  'evaluator',
  'nobody',
];

export interface Caller {
  who: Who;
  token: string;
  /** Null for the operator token. */
  userId: string | null;
  /** What the audit log names. */
  actorId: string;
  /** The personal access token it calls with; null for the operator token. */
  tokenId: string | null;
  isOperator: boolean;
}

export interface Side {
  supplierId: string;
  productId: string;
  model: string;
  deploymentId: string;
  organizationId: string;
  keyId: string;
  /** The usage record of this side's organisation (which called the other side's product). */
  requestId: string;
  /** B: a user of B (its org admin); A: the org admin of A. */
  userId: string;
  tokenId: string;
}

export interface World {
  t: TestHub;
  A: Side;
  B: Side;
  callers: Record<Who, Caller>;
  /** Unique text for names that must not collide. */
  nonce(): string;
  /** The operator token's call, for setting things up; throws unless 2xx. */
  must(method: string, path: string, body?: unknown): Promise<any>;
  freshDeployment(side: Side): Promise<string>;
  freshKey(side: Side): Promise<string>;
  freshUser(): Promise<string>;
  freshToken(userId: string): Promise<string>;
  /** One of the user's memberships: an existing one, else a new evaluator membership (`created`). */
  membershipOf(userId: string): Promise<{ id: string; created: boolean }>;
}

export async function buildWorld(t: TestHub, fake: FakeOpenAI): Promise<World> {
  let counter = 0;
  const nonce = () =>
    `${Date.now().toString(36)}${(counter++).toString(36)}${randomBytes(3).toString('hex')}`;
  const must = async (method: string, path: string, body?: unknown) => {
    const r = await t.admin(method, path, body);
    assert.ok(r.status >= 200 && r.status < 300, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  const deployment = async (productId: string) =>
    (
      await must('POST', '/deployments', {
        productId,
        adapter: 'openai-compatible',
        baseUrl: fake.url,
        apiKey: 'upstream-secret',
        upstreamModel: 'fake-chat',
      })
    ).id as string;

  const side = async (label: string) => {
    const supplier = await must('POST', '/suppliers', { name: `공급기업 ${label} ${nonce()}` });
    const model = `matrix-${label.toLowerCase()}-${nonce()}`;
    const product = await must('POST', '/products', {
      supplierId: supplier.id,
      model,
      displayName: `Matrix ${label}`,
      purposes: ['chat'],
      modality: 'text',
      contextWindow: 8192,
      priceInputPer1M: '1000',
      priceOutputPer1M: '2000',
      residency: 'domestic',
    });
    const org = await must('POST', '/organizations', { name: `수요기관 ${label} ${nonce()}`, class: 'sme' });
    const key = await must('POST', `/organizations/${org.id}/keys`, { name: label });
    return {
      supplierId: supplier.id as string,
      productId: product.id as string,
      model,
      deploymentId: await deployment(product.id),
      organizationId: org.id as string,
      keyId: key.id as string,
      key: key.key as string,
    };
  };
  const a = await side('A');
  const b = await side('B');

  // Each organisation calls the other side's product: A's supplier earns from B's organisation and
  // vice versa, so every usage view mixes tenants and must be cut along the right line.
  const call = async (key: string, model: string) => {
    const client = new OpenAI({ apiKey: key, baseURL: `${t.url}/v1`, maxRetries: 0 });
    const res = await client.chat.completions
      .create({ model, messages: [{ role: 'user', content: '안녕하세요' }] })
      .withResponse();
    return res.response.headers.get('x-request-id')!;
  };
  const requestA = await call(a.key, b.model);
  const requestB = await call(b.key, a.model);

  const person = async (role: string | null, tenant: { supplierId?: string; organizationId?: string }) => {
    const user = await must('POST', '/users', { name: `사람 ${nonce()}`, email: `p-${nonce()}@example.kr` });
    if (role) await must('POST', `/users/${user.id}/memberships`, { role, ...tenant });
    const token = await must('POST', `/users/${user.id}/tokens`, { name: 'matrix' });
    return { userId: user.id as string, token: token.token as string, tokenId: token.id as string };
  };
  const operator = await person('operator', {});
  const supplierAdmin = await person('supplier_admin', { supplierId: a.supplierId });
  const orgAdmin = await person('org_admin', { organizationId: a.organizationId });
  const orgMember = await person('org_member', { organizationId: a.organizationId });
  const evaluator = await person('evaluator', {});
  const nobody = await person(null, {});
  const userB = await person('org_admin', { organizationId: b.organizationId });

  const caller = (who: Who, p: { userId: string; token: string; tokenId: string }): Caller => ({
    who,
    token: p.token,
    userId: p.userId,
    actorId: p.userId,
    tokenId: p.tokenId,
    isOperator: who === 'operator',
  });
  return {
    t,
    A: { ...a, requestId: requestA, userId: orgAdmin.userId, tokenId: orgAdmin.tokenId },
    B: { ...b, requestId: requestB, userId: userB.userId, tokenId: userB.tokenId },
    callers: {
      'operator-token': {
        who: 'operator-token',
        token: ADMIN_TOKEN,
        userId: null,
        actorId: 'operator-token',
        tokenId: null,
        isOperator: true,
      },
      operator: caller('operator', operator),
      supplier_admin: caller('supplier_admin', supplierAdmin),
      org_admin: caller('org_admin', orgAdmin),
      org_member: caller('org_member', orgMember),
      evaluator: caller('evaluator', evaluator),
      nobody: caller('nobody', nobody),
    },
    nonce,
    must,
    freshDeployment: (s) => deployment(s.productId),
    freshKey: async (s) =>
      (await must('POST', `/organizations/${s.organizationId}/keys`, { name: 'fresh' })).id,
    freshUser: async () =>
      (await must('POST', '/users', { name: `새 사람 ${nonce()}`, email: `n-${nonce()}@example.kr` })).id,
    freshToken: async (userId) => (await must('POST', `/users/${userId}/tokens`, { name: 'fresh' })).id,
    membershipOf: async (userId) => {
      const existing = (await must('GET', `/users/${userId}/memberships`)).data[0];
      if (existing) return { id: existing.id, created: false };
      return {
        id: (await must('POST', `/users/${userId}/memberships`, { role: 'evaluator' })).id,
        created: true,
      };
    },
  };
}
