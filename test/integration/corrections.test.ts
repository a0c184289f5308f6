import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { kstMonth } from '../../src/kst.ts';
import { type Database, openDatabase } from '../../src/storage/database.ts';
import { type FakeOpenAI, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import { runAdminInProcess } from '../helpers/cli.ts';
import { as, person, refused } from '../helpers/compute.ts';
import { ADMIN_TOKEN, seedCatalog, startTestHub, type TestHub } from '../helpers/hub.ts';
import { assertLedgerInvariants } from '../helpers/ledger.ts';
import { usageEvent } from '../helpers/v1.ts';

describe('operator corrections of wallets and vouchers', () => {
  let fake: FakeOpenAI;
  let t: TestHub;
  let db: Database;
  let n = 0;

  async function admin(method: string, path: string, body?: unknown) {
    const r = await t.admin(method, path, body);
    assert.ok(
      r.status === 200 || r.status === 201,
      `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`,
    );
    return r.body;
  }

  async function organization(spendMode: 'prepaid' | 'postpaid') {
    n++;
    const org = await admin('POST', '/organizations', { name: `정정기업 ${n}`, class: 'sme', spendMode });
    return org.id as string;
  }

  async function voucherOf(organizationId: string, amountKrw: string) {
    n++;
    const p = await admin('POST', '/programmes', {
      name: `정정 바우처 ${n}`,
      startsOn: '2026-01-01',
      endsOn: '2030-12-31',
      budgetKrw: '10000',
      copayPercent: { sme: 20 },
      onExhausted: 'block',
    });
    const v = await admin('POST', `/programmes/${p.id}/vouchers`, { organizationId, amountKrw });
    return { programmeId: p.id as string, voucherId: v.id as string };
  }

  const corrections = (org: string) => `/organizations/${org}/corrections`;

  async function transactions(kind: string): Promise<number> {
    const row = await db.get<{ n: number | string }>(
      'SELECT COUNT(*) AS n FROM ledger_transactions WHERE kind = ?',
      [kind],
    );
    return Number(row?.n ?? 0);
  }

  before(async () => {
    fake = await startFakeOpenAI({ apiKey: 'upstream-secret' });
    t = await startTestHub();
    await seedCatalog(t, fake.url);
    db = await openDatabase(t.database.location);
  });
  after(async () => {
    await db?.close();
    await t?.close();
    await fake?.close();
  });

  test('a wallet is credited and debited: one balanced transaction each, in the funds, the ledger and the audit log', async () => {
    const org = await organization('postpaid');
    const month = `/settlements/${kstMonth(Date.now())}`;
    // 404 while no charge opened the month, else its totals so far: either way, as it was after
    const settledBefore = await t.admin('GET', month);
    const credit = await admin('POST', corrections(org), {
      account: 'wallet',
      amountKrw: '12',
      reason: '잘못 청구된 호출 환불',
    });
    assert.equal(credit.kind, 'correction');
    assert.equal(credit.accountId, `wallet:${org}`);
    assert.equal(credit.amountKrw, '12');
    assert.equal(credit.balanceKrw, '12');
    assert.deepEqual(credit.entries, [
      { accountId: `wallet:${org}`, amountKrw: '12' },
      { accountId: 'external:corrections', amountKrw: '-12' },
    ]);
    const debit = await admin('POST', corrections(org), {
      account: 'wallet',
      amountKrw: '-1.5',
      reason: '입금 오기 정정',
    });
    assert.equal(debit.balanceKrw, '10.5');
    assert.equal((await admin('GET', `/organizations/${org}/funds`)).walletKrw, '10.5');
    const ledger = await admin('GET', `/organizations/${org}/ledger`);
    assert.deepEqual(
      ledger.data.map((l: { kind: string; amountKrw: string; memo: string }) => [
        l.kind,
        l.amountKrw,
        l.memo,
      ]),
      [
        ['correction', '-1.5', '입금 오기 정정'],
        ['correction', '12', '잘못 청구된 호출 환불'],
      ],
    );
    // a postpaid wallet may owe: a debit past zero is allowed
    assert.equal(
      (await admin('POST', corrections(org), { account: 'wallet', amountKrw: '-20', reason: '미수금' }))
        .balanceKrw,
      '-9.5',
    );
    // not usage: the month's settlement is as it was
    assert.deepEqual(await t.admin('GET', month), settledBefore);
    const audit = (await admin('GET', `/audit?entityId=${org}`)).data as {
      entityType: string;
      action: string;
      after: Record<string, unknown>;
    }[];
    const rows = audit.filter((e) => e.action === 'correct');
    assert.equal(rows.length, 3);
    assert.equal(rows[0]!.entityType, 'wallet');
    assert.ok(
      rows.some((r) => r.after.transactionId === credit.transactionId && r.after.correctionKrw === '12'),
    );
    await assertLedgerInvariants(db);
  });

  test('a prepaid wallet is never taken below zero by a correction', async () => {
    const org = await organization('prepaid');
    await admin('POST', `/organizations/${org}/deposits`, { amountKrw: '5' });
    const before = await transactions('correction');
    const r = await refused(
      t,
      'POST',
      corrections(org),
      { account: 'wallet', amountKrw: '-5.000001', reason: 'x' },
      'amountKrw',
      409,
    );
    assert.match(r.error.message, /^[^A-Za-z]*[가-힣].*\/.*below zero/s);
    assert.equal(await transactions('correction'), before, 'nothing posted');
    await admin('POST', corrections(org), { account: 'wallet', amountKrw: '-5', reason: '전액 정정' });
    assert.equal((await admin('GET', `/organizations/${org}/funds`)).walletKrw, '0');
  });

  test('a voucher is corrected against its programme’s budget, never below zero', async () => {
    const org = await organization('prepaid');
    const { programmeId, voucherId } = await voucherOf(org, '1000');
    const up = await admin('POST', corrections(org), {
      account: `voucher:${voucherId}`,
      amountKrw: '250.5',
      reason: '발급 금액 오류',
    });
    assert.deepEqual(up.entries, [
      { accountId: `voucher:${voucherId}`, amountKrw: '250.5' },
      { accountId: `programme:${programmeId}`, amountKrw: '-250.5' },
    ]);
    assert.equal((await admin('GET', `/programmes/${programmeId}`)).unissuedKrw, '8749.5');
    const funds = await admin('GET', `/organizations/${org}/funds`);
    assert.equal(funds.vouchers[0].balanceKrw, '1250.5');
    assert.equal(funds.walletKrw, '0', 'the wallet is untouched');

    const before = await transactions('correction');
    const r = await refused(
      t,
      'POST',
      corrections(org),
      { account: `voucher:${voucherId}`, amountKrw: '-1250.6', reason: '초과' },
      'amountKrw',
      409,
    );
    assert.match(r.error.message, /정정 금액이 잔액보다 큽니다/);
    // more than the programme has left to issue
    await refused(
      t,
      'POST',
      corrections(org),
      { account: `voucher:${voucherId}`, amountKrw: '8749.6', reason: '초과' },
      'amountKrw',
      409,
    );
    assert.equal(await transactions('correction'), before, 'nothing posted');
    await admin('POST', corrections(org), {
      account: `voucher:${voucherId}`,
      amountKrw: '-1250.5',
      reason: '회수',
    });
    assert.equal((await admin('GET', `/programmes/${programmeId}`)).unissuedKrw, '10000');
    assert.equal((await admin('GET', `/organizations/${org}/funds`)).vouchers[0].balanceKrw, '0');
    // a closed programme's vouchers are settled in its final report
    await admin('POST', `/programmes/${programmeId}/close`, { early: true, reason: '정정 시험' });
    await refused(
      t,
      'POST',
      corrections(org),
      { account: `voucher:${voucherId}`, amountKrw: '1', reason: '종료 후' },
      'account',
      409,
    );
    await assertLedgerInvariants(db);
  });

  test('bad input is refused naming its field; a voucher of another organisation is none of this one', async () => {
    const org = await organization('postpaid');
    const other = await organization('postpaid');
    const { voucherId } = await voucherOf(other, '10');
    const base = { account: 'wallet', amountKrw: '1', reason: '사유' };
    await refused(t, 'POST', corrections(org), { ...base, account: 'bank' }, 'account');
    await refused(t, 'POST', corrections(org), { ...base, account: `voucher:${voucherId}` }, 'account');
    await refused(t, 'POST', corrections(org), { ...base, amountKrw: '0' }, 'amountKrw');
    await refused(t, 'POST', corrections(org), { ...base, amountKrw: '1.0000001' }, 'amountKrw');
    await refused(t, 'POST', corrections(org), { ...base, amountKrw: '--1' }, 'amountKrw');
    await refused(t, 'POST', corrections(org), { ...base, reason: '  ' }, 'reason');
    await refused(t, 'POST', corrections(org), { account: 'wallet', amountKrw: '1' }, 'reason');
    await refused(t, 'POST', corrections(org), { ...base, usageRequestId: 'req_nothing' }, 'usageRequestId');
    await refused(t, 'POST', corrections(org), { ...base, extra: 1 }, 'extra');
    assert.equal((await t.admin('POST', corrections('org_missing'), base)).status, 404);
  });

  test('a correction may name the request it corrects, when the organisation made it', async () => {
    const org = await organization('postpaid');
    const key = await admin('POST', `/organizations/${org}/keys`, { name: 'k' });
    const client = new OpenAI({ apiKey: key.key, baseURL: `${t.url}/v1`, maxRetries: 0 });
    fake.setReply('하나 둘');
    const { response } = await client.chat.completions
      .create({ model: 'hcx-test', messages: [{ role: 'user', content: '안녕' }], max_tokens: 5 })
      .withResponse();
    const requestId = response.headers.get('x-request-id')!;
    const event = await usageEvent(t, requestId, 5000);
    assert.ok(BigInt(event.costMicroKrw) > 0n);
    // the call opened the month: its settlement so far counts the charge, and not the correction
    const month = `/settlements/${kstMonth(Date.now())}`;
    const settled = (await admin('GET', month)).totals;
    assert.ok(settled.charges >= 1, JSON.stringify(settled));
    const c = await admin('POST', corrections(org), {
      account: 'wallet',
      amountKrw: '1',
      reason: '응답 오류 환불',
      usageRequestId: requestId,
    });
    assert.equal(c.usageRequestId, requestId);
    assert.deepEqual((await admin('GET', month)).totals, settled);
    const other = await organization('postpaid');
    await refused(
      t,
      'POST',
      corrections(other),
      { account: 'wallet', amountKrw: '1', reason: 'x', usageRequestId: requestId },
      'usageRequestId',
    );
    await assertLedgerInvariants(db);
  });

  test('an organisation’s admin may not correct its own funds; a foreign tenant does not see the route', async () => {
    const org = await organization('postpaid');
    const other = await organization('postpaid');
    const own = await person(t, 'org_admin', { organizationId: org });
    const foreign = await person(t, 'org_admin', { organizationId: other });
    const body = { account: 'wallet', amountKrw: '1000', reason: '셀프 정정' };
    assert.equal((await as(t, own.token, 'POST', corrections(org), body)).status, 403);
    assert.equal((await as(t, foreign.token, 'POST', corrections(org), body)).status, 404);
    assert.equal((await admin('GET', `/organizations/${org}/funds`)).walletKrw, '0');
  });

  test('kaihub corrections create posts a correction', async () => {
    const org = await organization('postpaid');
    const env = { KAIHUB_URL: t.url, KAIHUB_ADMIN_TOKEN: ADMIN_TOKEN };
    const r = await runAdminInProcess(
      ['corrections', 'create', org, '--account', 'wallet', '--amount-krw', '-1.5', '--reason', '오류 정정'],
      env,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /external:corrections/);
    assert.match(r.stdout, /-1\.5/);
    assert.equal((await admin('GET', `/organizations/${org}/funds`)).walletKrw, '-1.5');
    const json = await runAdminInProcess(
      ['corrections', 'create', org, '--account', 'wallet', '--amount-krw', '2', '--reason', 'x', '--json'],
      env,
    );
    assert.equal(json.code, 0, json.stderr);
    assert.equal(JSON.parse(json.stdout).balanceKrw, '0.5');
    const bad = await runAdminInProcess(
      ['corrections', 'create', org, '--account', 'wallet', '--amount-krw', '1'],
      env,
    );
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /reason/);
  });
});
