import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { voucherShare } from '../../src/billing/ledger.ts';
import { formatKrw, parseKrwAmount } from '../../src/billing/money.ts';
import { type Database, openDatabase } from '../../src/storage/database.ts';
import { type FakeOpenAI, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import { runAdminInProcess } from '../helpers/cli.ts';
import { ADMIN_TOKEN, type Catalog, seedCatalog, startTestHub, type TestHub } from '../helpers/hub.ts';
import { usageEvent } from '../helpers/v1.ts';

let fake: FakeOpenAI;
let t: TestHub;
let catalog: Catalog;
let db: Database;
before(async () => {
  fake = await startFakeOpenAI({ apiKey: 'upstream-secret' });
  t = await startTestHub();
  catalog = await seedCatalog(t, fake.url);
  db = await openDatabase(t.database.location);
});
after(async () => {
  await db?.close();
  await t?.close();
  await fake?.close();
});

async function must(method: string, path: string, body?: unknown) {
  const r = await t.admin(method, path, body);
  assert.ok(r.status >= 200 && r.status < 300, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

test('closing a programme returns every unspent voucher balance to its budget and reports each agreement in tranches', async () => {
  const p = await must('POST', '/programmes', {
    name: '종료 정산 바우처',
    startsOn: '2026-01-01',
    endsOn: '2030-12-31',
    budgetKrw: '100000',
    copayPercent: { sme: 20 },
    onExhausted: 'self-pay',
    reviewCriteria: [{ id: 'fit', name: '적합성', weight: 100 }],
  });
  const entry = await must('POST', `/programmes/${p.id}/pool`, {
    supplierId: catalog.supplierId,
    productIds: [catalog.productId],
  });
  const org = await must('POST', '/organizations', {
    name: '종료 정산 기업',
    class: 'sme',
    spendMode: 'prepaid',
  });
  const application = await must('POST', `/programmes/${p.id}/applications`, {
    organizationId: org.id,
    poolEntryId: entry.id,
    requestedKrw: '2',
    costCategories: ['api_usage'],
    plan: 'HyperCLOVA X로 민원 요약',
  });
  await must('POST', `/applications/${application.id}/submit`);
  const selected = await must('POST', `/applications/${application.id}/select`, {
    amountKrw: '2',
    reason: '적합',
  });
  const voucherId = selected.agreement?.voucherId ?? selected.voucherId ?? selected.voucher?.id;
  assert.ok(voucherId, JSON.stringify(selected));
  // a second voucher issued directly and never used: all of it comes back
  const idle = await must('POST', `/programmes/${p.id}/vouchers`, { organizationId: org.id, amountKrw: '5' });
  // enough for the co-payment of a few calls, not for a whole call without a voucher
  await must('POST', `/organizations/${org.id}/deposits`, { amountKrw: '0.03' });
  const key = await must('POST', `/organizations/${org.id}/keys`, { name: 'k' });
  const client = new OpenAI({ apiKey: key.key, baseURL: `${t.url}/v1`, maxRetries: 0 });
  fake.setReply('민원 세 건을 요약했습니다');
  const costs: bigint[] = [];
  for (let i = 0; i < 3; i++) {
    const { response } = await client.chat.completions
      .create({ model: 'hcx-test', messages: [{ role: 'user', content: '요약해 주세요' }], max_tokens: 20 })
      .withResponse();
    costs.push(BigInt((await usageEvent(t, response.headers.get('x-request-id')!, 5000)).costMicroKrw));
  }
  const unissuedBefore = parseKrwAmount((await must('GET', `/programmes/${p.id}`)).unissuedKrw);

  const notEnded = await t.admin('POST', `/programmes/${p.id}/close`, {});
  assert.equal(notEnded.status, 400);
  assert.equal(notEnded.body.error.fields[0].field, 'early');
  const noReason = await t.admin('POST', `/programmes/${p.id}/close`, { early: true });
  assert.equal(noReason.status, 400);
  assert.equal(noReason.body.error.fields[0].field, 'reason');
  const badSplit = await t.admin('POST', `/programmes/${p.id}/close`, {
    early: true,
    reason: 'x',
    tranchePercents: [70, 20],
  });
  assert.equal(badSplit.status, 400);

  const report = await must('POST', `/programmes/${p.id}/close`, {
    early: true,
    reason: '사업 조기 종료',
    tranchePercents: [70, 30],
  });
  // the charges the voucher of the agreement paid: which voucher admission picked is the one expiring
  // soonest; both share the programme's period, so look the split up rather than assume it
  const paid = await db.all<{ voucher_id: string; cost: string }>(
    `SELECT voucher_id, CAST(cost_micro_krw AS TEXT) AS cost FROM usage_events WHERE organization_id = ?`,
    [org.id],
  );
  const granted = new Map([
    [voucherId, parseKrwAmount('2')],
    [idle.id, parseKrwAmount('5')],
  ]);
  let returnedTotal = 0n;
  for (const v of report.vouchers) {
    const mine = paid.filter((r) => r.voucher_id === v.voucherId).map((r) => BigInt(r.cost));
    // each charge: the voucher pays ⌊C·0.8⌋ while it lasts; it had enough here
    const byVoucher = mine.reduce((s, c) => s + voucherShare(c, 2000), 0n);
    const used = mine.reduce((s, c) => s + c, 0n);
    assert.equal(v.voucherPaidKrw, formatKrw(byVoucher), v.voucherId);
    assert.equal(v.usedKrw, formatKrw(used));
    assert.equal(v.coPaidKrw, formatKrw(used - byVoucher));
    const returned = granted.get(v.voucherId)! - byVoucher;
    assert.equal(v.returnedKrw, formatKrw(returned));
    returnedTotal += returned;
    // 70 % of the grant in advance; the rest is what the voucher paid less the advance (here negative: 환수)
    const advance = (granted.get(v.voucherId)! * 70n) / 100n;
    assert.deepEqual(
      v.tranches.map((x: { percent: number; amountKrw: string }) => [x.percent, x.amountKrw]),
      [
        [70, formatKrw(advance)],
        [30, formatKrw(byVoucher - advance)],
      ],
    );
  }
  const agreementRow = report.vouchers.find((v: { voucherId: string }) => v.voucherId === voucherId);
  assert.ok(agreementRow.agreementId, 'the agreement is named');
  assert.equal(agreementRow.supplierId, catalog.supplierId);
  assert.equal(costs.length, 3);

  // the ledger: vouchers at zero, the budget got the unspent balances back
  const funds = await must('GET', `/organizations/${org.id}/funds`);
  for (const v of funds.vouchers) assert.equal(v.balanceKrw, '0');
  assert.equal(
    parseKrwAmount((await must('GET', `/programmes/${p.id}`)).unissuedKrw),
    unissuedBefore + returnedTotal,
  );
  const unbalanced = await db.all(
    'SELECT transaction_id FROM ledger_entries GROUP BY transaction_id HAVING SUM(amount_micro_krw) <> 0',
  );
  assert.deepEqual(unbalanced, []);

  assert.equal(
    (await t.admin('POST', `/programmes/${p.id}/close`, { early: true, reason: '다시' })).status,
    409,
  );
  assert.deepEqual(await must('GET', `/programmes/${p.id}/final-report`), report);
  await assert.rejects(db.run('DELETE FROM programme_closures'));
});

test('the CLI: an operator closes a programme early and reads its final report as a table, JSON and CSV', async () => {
  const env = { KAIHUB_URL: t.url, KAIHUB_ADMIN_TOKEN: ADMIN_TOKEN };
  const run = (...args: string[]) => runAdminInProcess(args, env);
  const p = await must('POST', '/programmes', {
    name: '종료 정산 CLI 바우처',
    startsOn: '2026-01-01',
    endsOn: '2030-12-31',
    budgetKrw: '100000',
    copayPercent: { sme: 20 },
    onExhausted: 'block',
  });
  const org = await must('POST', '/organizations', { name: '종료 정산 CLI 기업', class: 'sme' });
  const voucher = await must('POST', `/programmes/${p.id}/vouchers`, {
    organizationId: org.id,
    amountKrw: '10',
  });

  const noReason = await run('programmes', 'close', p.id, '--early');
  assert.equal(noReason.code, 1);
  assert.match(noReason.stderr, /reason \(--reason\)/, 'the field and its flag');
  const badSplit = await run(
    'programmes',
    'close',
    p.id,
    '--early',
    '--reason',
    '조기 종료',
    '--tranche-percents',
    '70,20',
  );
  assert.equal(badSplit.code, 1);
  assert.match(badSplit.stderr, /tranchePercents \(--tranche-percents\)/);
  const notYet = await run('programmes', 'final-report', p.id);
  assert.equal(notYet.code, 1, 'no report before the close');

  const closed = await run(
    'programmes',
    'close',
    p.id,
    '--early',
    '--reason',
    '조기 종료',
    '--tranche-percents',
    '70,30',
  );
  assert.equal(closed.code, 0, closed.stderr);
  assert.match(closed.stdout, /조기 early: 조기 종료/);
  assert.match(closed.stdout, /70 \/ 30 %/);
  assert.match(closed.stdout, new RegExp(voucher.id));
  assert.match(closed.stdout, /반환 returned 10 KRW/, 'the unused voucher comes back whole');

  const table = await run('programme', 'final-report', p.id);
  assert.equal(table.code, 0, table.stderr);
  assert.equal(table.stdout, closed.stdout, 'the report as made at the close');
  const json = JSON.parse((await run('programmes', 'final-report', p.id, '--json')).stdout);
  assert.deepEqual(json, await must('GET', `/programmes/${p.id}/final-report`));
  assert.equal(json.vouchers[0].returnedKrw, '10');
  assert.deepEqual(json.tranchePercents, [70, 30]);

  const csv = await run('programmes', 'final-report', p.id, '--format', 'csv');
  assert.equal(csv.code, 0, csv.stderr);
  assert.equal(csv.stdout.charCodeAt(0), 0xfeff, 'a BOM, for Excel in Korea');
  const lines = csv.stdout.slice(1).split('\r\n');
  assert.match(lines[0]!, /^바우처 Voucher,수요기관 Organization,/);
  assert.match(lines[0]!, /선금 \/ advance 70% \(KRW\),잔금 \/ final payment 30% \(KRW\)$/);
  const row = lines[1]!.split(',');
  assert.equal(row[0], voucher.id);
  assert.equal(row[1], org.id);
  assert.equal(row[4], '10', 'granted');
  assert.equal(row[8], '10', 'returned');
  assert.deepEqual(row.slice(9), ['7', '-7'], '70 % advanced, all of it paid back (환수)');
  assert.ok(lines.includes('반환 합계 Returned (KRW),10'));
  const xlsx = await run('programmes', 'final-report', p.id, '--format', 'xlsx');
  assert.equal(xlsx.code, 0, xlsx.stderr);
  assert.equal(xlsx.bytes.subarray(0, 2).toString(), 'PK', 'a zip, as XLSX is');
  const badFormat = await run('programmes', 'final-report', p.id, '--format', 'pdf');
  assert.equal(badFormat.code, 1);
  assert.match(badFormat.stderr, /format/);

  const again = await run('programmes', 'close', p.id, '--early', '--reason', '다시');
  assert.equal(again.code, 1);
  assert.match(again.stderr, /409/);
});
