import assert from 'node:assert/strict';
import type { TestHub } from './hub.ts';

/** A clock a test moves: GPU compute asks it the time (HubOptions.compute.clock). */
export class TestClock {
  constructor(private ms: number) {}
  readonly now = () => this.ms;
  set(iso: string): void {
    this.ms = Date.parse(iso);
  }
}

export interface Caller {
  token: string;
  userId: string;
}

export interface Answer {
  status: number;
  body: any;
}

/** /admin/v1 with someone's token. */
export async function as(
  t: TestHub,
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<Answer> {
  const res = await fetch(`${t.url}/admin/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** The operator token's call; asserts a 2xx (or `status`) and returns the body. */
export async function must(
  t: TestHub,
  method: string,
  path: string,
  body?: unknown,
  status?: number,
): Promise<any> {
  const r = await t.admin(method, path, body);
  if (status === undefined)
    assert.ok(r.status >= 200 && r.status < 300, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  else assert.equal(r.status, status, `${method} ${path}: ${JSON.stringify(r.body)}`);
  return r.body;
}

/** A 400 naming `field`. */
export async function refused(
  t: TestHub,
  method: string,
  path: string,
  body: unknown,
  field: string,
  status = 400,
) {
  const r = await t.admin(method, path, body);
  assert.equal(
    r.status,
    status,
    `${method} ${path}: expected ${status} on ${field}, got ${r.status} ${JSON.stringify(r.body)}`,
  );
  assert.ok(
    (r.body.error.fields ?? []).some((f: { field: string }) => f.field === field),
    `expected field ${field}: ${JSON.stringify(r.body.error)}`,
  );
  return r.body;
}

let counter = 0;
export const unique = () => `${Date.now().toString(36)}${(counter++).toString(36)}`;

/** A user with a role (and its tenant) and a personal access token. */
export async function person(
  t: TestHub,
  role: string | null,
  tenant: { supplierId?: string; organizationId?: string } = {},
): Promise<Caller> {
  const user = await must(t, 'POST', '/users', {
    name: `사람 ${unique()}`,
    email: `c-${unique()}@example.kr`,
  });
  if (role) await must(t, 'POST', `/users/${user.id}/memberships`, { role, ...tenant });
  const token = await must(t, 'POST', `/users/${user.id}/tokens`, { name: 'compute' });
  return { token: token.token, userId: user.id };
}

export const CRITERIA = [
  { id: 'impact', name: '파급 효과', weight: 50 },
  { id: 'readiness', name: '준비도', weight: 50 },
];

export interface PoolSpec {
  gpuCount?: number;
  region?: 'capital' | 'non_capital';
  pricePerGpuHourKrw?: string;
  provisioner?: 'manual' | 'slurm' | 'kubernetes';
  provisionerConfig?: unknown;
  tfPerGpu?: number;
}

export async function computeSupplier(t: TestHub): Promise<string> {
  return (await must(t, 'POST', '/suppliers', { name: `컴퓨팅 공급기업 ${unique()}` })).id;
}

export async function pool(t: TestHub, supplierId: string, spec: PoolSpec = {}): Promise<any> {
  return must(t, 'POST', '/compute/pools', {
    supplierId,
    name: `H100 풀 ${unique()}`,
    gpuModel: 'H100',
    tfPerGpu: spec.tfPerGpu ?? 989,
    gpuCount: spec.gpuCount ?? 16,
    region: spec.region ?? 'non_capital',
    pricePerGpuHourKrw: spec.pricePerGpuHourKrw ?? '3000',
    provisioner: spec.provisioner ?? 'manual',
    ...(spec.provisionerConfig !== undefined && { provisionerConfig: spec.provisionerConfig }),
  });
}

export async function organization(t: TestHub, cls = 'sme'): Promise<string> {
  return (await must(t, 'POST', '/organizations', { name: `수요기관 ${unique()}`, class: cls })).id;
}

export const TRACKS = [
  { id: 'small', name: '1–4 GPU', unit: 'gpu', min: 1, max: 4 },
  { id: 'server', name: '8 GPU 서버 단위', unit: 'server', min: 1, max: 2 },
  { id: 'tf', name: '160/320 TF 단위', unit: 'tf', sizes: [160, 320] },
];

export async function call(t: TestHub, poolIds: string[], over: Record<string, unknown> = {}): Promise<any> {
  return must(t, 'POST', '/compute/calls', {
    name: `GPU 공모 ${unique()}`,
    startsOn: '2026-03-01',
    endsOn: '2026-08-31',
    poolIds,
    tracks: TRACKS,
    eligibleClasses: ['sme', 'university', 'research'],
    maxGrantDays: 120,
    reviewCriteria: CRITERIA,
    bonuses: { nonCapitalRegion: 5 },
    tieBreak: ['non_capital_first', 'earlier_submission'],
    capacityGpus: 12,
    utilisationThresholdPercent: 30,
    reclaimPolicy: { warningsBeforeReclaim: 1, offerDays: 7 },
    copayPercent: 20,
    ...over,
  });
}

/** A submitted application (operator token), returned as the hub has it. */
export async function submitted(t: TestHub, callId: string, body: Record<string, unknown>): Promise<any> {
  const a = await must(t, 'POST', `/compute/calls/${callId}/applications`, {
    trackId: 'small',
    unit: 'gpu',
    purpose: 'training',
    plan: '한국어 LLM 파인튜닝 계획',
    applicantRegion: 'capital',
    ...body,
  });
  return must(t, 'POST', `/compute/applications/${a.id}/submit`);
}

export async function score(
  t: TestHub,
  reviewer: Caller,
  applicationId: string,
  impact: number,
  readiness = impact,
) {
  const r = await as(t, reviewer.token, 'POST', `/compute/applications/${applicationId}/reviews`, {
    scores: { impact, readiness },
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
}
