import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import ExcelJS from 'exceljs';
import { costOf, parseKrwAmount } from '../../src/billing/money.ts';
import { SettlementService } from '../../src/billing/settlement.ts';
import { insertUsageRecords, type UsageRecord } from '../../src/billing/usage-journal.ts';
import { type Database, openDatabase, type SqlExecutor } from '../../src/storage/database.ts';
import { type FakeOpenAI, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import {
  as,
  type Caller,
  call,
  computeSupplier,
  must,
  organization,
  person,
  pool,
  submitted,
  TestClock,
} from '../helpers/compute.ts';
import { ADMIN_TOKEN, type Catalog, seedCatalog, startTestHub, type TestHub } from '../helpers/hub.ts';

/**
 * GPU time on the organisation's side of settlement (decision 0026). An organisation with API usage
 * (charged to its programme's voucher with a 20 % co-payment) and GPU-hours (charged to the same
 * programme's budget, 20 % from its wallet) in May 2026, and a second organisation with GPU-hours only:
 * the statements' lines and totals are checked against a hand computation and against the ledger's
 * movements; a GPU day of May reported after May closed is an adjustment on June's statement; a month
 * stored before 0026 is returned as stored; CSV and XLSX carry the compute lines (read back); another
 * organisation's people cannot read the statement. API usage is inserted the way the journal applier
 * inserts it (its month must have ended to be closed); GPU usage is reported over HTTP by the compute
 * supplier's admin, on the hub's compute clock.
 */
describe('organisation statements with GPU time', () => {
  const clock = new TestClock(Date.parse('2026-04-20T10:00:00+09:00'));
  let fake: FakeOpenAI;
  let t: TestHub;
  let db: Database;
  let catalog: Catalog;
  let supplierAdmin: Caller;
  let programmeId: string;
  let voucherA: string;
  let keyA: string;
  let callId: string;
  let poolId: string;
  const orgs = { A: '', B: '' };
  const allocation = { A: '', B: '' };

  const report = (id: string, day: string, gpuHours: number) =>
    as(t, supplierAdmin.token, 'POST', `/compute/allocations/${id}/usage`, { day, gpuHours });
  const reportOk = async (id: string, day: string, gpuHours: number) => {
    const r = await report(id, day, gpuHours);
    assert.equal(r.status, 200, JSON.stringify(r.body));
  };

  let apiSeq = 0;
  /** An API call of organisation A on hcx-test (1,000 / 3,000 KRW per 1M tokens), paid by its voucher. */
  async function apiUsage(iso: string, promptTokens: number, completionTokens: number): Promise<void> {
    const prices = { inputMicroPer1M: parseKrwAmount('1000'), outputMicroPer1M: parseKrwAmount('3000') };
    const record: UsageRecord = {
      requestId: `settle-compute-${apiSeq++}`,
      createdAtMs: Date.parse(iso),
      organizationId: orgs.A,
      apiKeyId: keyA,
      productId: catalog.productId,
      deploymentId: null,
      model: 'hcx-test',
      endpoint: 'chat.completions',
      stream: false,
      status: 'ok',
      httpStatus: 200,
      errorCode: null,
      promptTokens,
      completionTokens,
      usageSource: 'upstream',
      priceInputMicroPer1M: prices.inputMicroPer1M,
      priceOutputMicroPer1M: prices.outputMicroPer1M,
      costMicroKrw: costOf(promptTokens, completionTokens, prices),
      latencyMs: 100,
      ttftMs: null,
      usageNote: null,
      voucherId: voucherA,
    };
    await db.transaction((tx) => insertUsageRecords(tx, [record], db.dialect));
  }

  before(async () => {
    fake = await startFakeOpenAI({ apiKey: 'upstream-secret' });
    t = await startTestHub({ KAIHUB_COMPUTE_RECONCILE_MS: '0' }, { hub: { compute: { clock: clock.now } } });
    db = await openDatabase(t.database.location);
    catalog = await seedCatalog(t, fake.url);
    const supplierId = await computeSupplier(t);
    supplierAdmin = await person(t, 'supplier_admin', { supplierId });
    poolId = (await pool(t, supplierId, { gpuCount: 16, pricePerGpuHourKrw: '3000.5' })).id;
    programmeId = (
      await must(t, 'POST', '/programmes', {
        name: `AI·GPU 지원사업 ${Date.now()}`,
        startsOn: '2026-01-01',
        endsOn: '2026-12-31',
        budgetKrw: '100000000',
        copayPercent: { sme: 20 },
        onExhausted: 'self-pay',
      })
    ).id;
    callId = (await call(t, [poolId], { fundingProgrammeId: programmeId, copayPercent: 20 })).id;
    orgs.A = await organization(t);
    orgs.B = await organization(t);
    voucherA = (
      await must(t, 'POST', `/programmes/${programmeId}/vouchers`, {
        organizationId: orgs.A,
        amountKrw: '1000000',
      })
    ).id;
    keyA = (await must(t, 'POST', `/organizations/${orgs.A}/keys`, { name: 'settlement' })).id;
    for (const [key, gpus] of [
      ['A', 2],
      ['B', 1],
    ] as const) {
      const application = await submitted(t, callId, {
        organizationId: orgs[key],
        poolId,
        quantity: gpus,
        startsOn: '2026-05-01',
        endsOn: '2026-07-31',
      });
      await must(t, 'POST', `/compute/applications/${application.id}/select`, { reason: '정산 시험 / test' });
    }
    for (const a of (await must(t, 'GET', '/compute/allocations')).data)
      allocation[a.organizationId === orgs.A ? 'A' : 'B'] = a.id;
    assert.ok(allocation.A && allocation.B);
    clock.set('2026-05-01T09:00:00+09:00');
    await must(t, 'POST', '/compute/reconcile', {});
    for (const id of Object.values(allocation)) {
      const r = await as(t, supplierAdmin.token, 'POST', `/compute/allocations/${id}/handover`);
      assert.equal(r.body.status, 'active', JSON.stringify(r.body));
    }
  });
  after(async () => {
    await db?.close();
    await t?.close();
    await fake?.close();
  });

  /** The ledger's charge movements settled in `month` of the transactions that touched A's wallet. */
  async function ledgerOfA(month: string) {
    const rows = await db.all<{ account_id: string; amount: string }>(
      `SELECT e.account_id, CAST(SUM(e.amount_micro_krw) AS TEXT) AS amount
       FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id
       WHERE t.settlement_month = ? AND t.kind = 'charge'
         AND t.id IN (SELECT transaction_id FROM ledger_entries WHERE account_id = ?)
       GROUP BY e.account_id`,
      [month, `wallet:${orgs.A}`],
    );
    const sum = (prefix: string) =>
      rows.filter((r) => r.account_id.startsWith(prefix)).reduce((s, r) => s + BigInt(r.amount), 0n);
    return {
      wallet: -sum('wallet:'),
      programmes: -(sum('voucher:') + sum('programme:') + sum('external:')),
      payable: sum('payable:'),
    };
  }

  let may: any;

  test('May: API lines and GPU lines on one statement, totals rounded once, equal to the ledger', async () => {
    // API usage: 260.494 KRW and 1,250.01 KRW, the voucher paying ⌊80 %⌋
    await apiUsage('2026-05-03T10:00:00+09:00', 123_457, 45_679);
    await apiUsage('2026-05-20T15:00:00+09:00', 500_001, 250_003);
    // GPU time at 3,000.5 KRW per GPU-hour: A 7.25 h + 10 h, B 3 h
    clock.set('2026-05-20T09:00:00+09:00');
    await reportOk(allocation.A, '2026-05-02', 7.25);
    await reportOk(allocation.A, '2026-05-03', 10);
    await reportOk(allocation.B, '2026-05-02', 3);

    const open = await must(t, 'GET', '/settlements/2026-05');
    assert.equal(open.status, 'open');
    assert.equal(open.computeTotals.amountKrw, '60760.125', 'an open month shows its GPU time so far');

    const closed = await must(t, 'POST', '/settlements', { month: '2026-05' });
    assert.equal(closed.status, 'closed');
    assert.equal(closed.computeOnStatements, true);
    // by hand: API 260.494 + 1,250.01; GPU A 21,753.625 + 30,005, B 9,001.5
    assert.deepEqual(closed.totals, {
      charges: 2,
      amountKrw: '1510.504',
      voucherPartKrw: '1208.4032',
      walletPartKrw: '302.1008',
      usageCostKrw: '1510.504',
      adjustments: 0,
    });
    assert.deepEqual(closed.computeTotals, {
      charges: 3,
      gpuHours: '20.25',
      amountKrw: '60760.125',
      programmePartKrw: '48608.1',
      walletPartKrw: '12152.025',
      adjustments: 0,
    });
    assert.deepEqual(closed.combinedTotals, {
      charges: 5,
      amountKrw: '62270.629',
      programmePartKrw: '49816.5032',
      walletPartKrw: '12454.1258',
      adjustments: 0,
    });

    may = await must(t, 'GET', `/settlements/2026-05/organizations/${orgs.A}`);
    assert.equal(may.version, 2);
    assert.equal(may.lines.length, 1, 'one API line: one product at one price');
    assert.equal(may.lines[0].amountKrw, '1510.504');
    assert.deepEqual(
      may.computeLines.map((l: any) => ({
        ...l,
        poolName: undefined,
        callName: undefined,
        programmeName: undefined,
      })),
      [
        {
          poolId,
          poolName: undefined,
          gpuModel: 'H100',
          computeSupplierId: may.computeLines[0].computeSupplierId,
          computeSupplierName: may.computeLines[0].computeSupplierName,
          callId,
          callName: undefined,
          programmeId,
          programmeName: undefined,
          pricePerGpuHourKrw: '3000.5',
          adjustment: false,
          charges: 2,
          gpuSeconds: 62_100,
          gpuHours: '17.25',
          amountKrw: '51758.625',
          programmeKrw: '41406.9',
          organizationKrw: '10351.725',
        },
      ],
    );
    assert.equal(may.computeLines[0].programmeName.startsWith('AI·GPU 지원사업'), true);
    assert.deepEqual(may.subtotals, {
      api: {
        requests: 2,
        amountKrw: '1510.504',
        fromVouchersKrw: '1208.4032',
        fromWalletKrw: '302.1008',
        adjustments: 0,
      },
      compute: {
        charges: 2,
        gpuHours: '17.25',
        amountKrw: '51758.625',
        programmeKrw: '41406.9',
        organizationKrw: '10351.725',
        adjustments: 0,
      },
    });
    // 53,269.129 KRW: supply 53,269 (half up); programme 42,615.3032 → 42,615; VAT ⌊5,326.9⌋
    assert.deepEqual(may.totals, {
      requests: 2,
      amountMicroKrw: '53269129000',
      amountKrw: '53269.129',
      supplyValueKrw: '53269',
      vatKrw: '5326',
      totalKrw: '58595',
      voucherPartKrw: '42615',
      organizationPartKrw: '10654',
      adjustments: 0,
      fromProgrammesKrw: '42615.3032',
      fromWalletKrw: '10653.8258',
    });
    assert.deepEqual(may.programmes, [
      { programmeId, name: may.computeLines[0].programmeName, amountKrw: '42615.3032' },
    ]);

    // what the statement says was paid is what the ledger moved, to the µ₩
    const ledger = await ledgerOfA('2026-05');
    assert.equal(ledger.payable.toString(), may.totals.amountMicroKrw);
    assert.equal(ledger.programmes, parseKrwAmount(may.totals.fromProgrammesKrw));
    assert.equal(ledger.wallet, parseKrwAmount(may.totals.fromWalletKrw));
    // and the wallet the organisation sees: nothing but May's charges has touched it
    const funds = await must(t, 'GET', `/organizations/${orgs.A}/funds`);
    assert.equal(funds.walletKrw, `-${may.totals.fromWalletKrw}`);

    // B: GPU time only; 9,001.5 KRW → supply 9,002, programme ⌊7,201.2⌉ = 7,201, VAT ⌊900.2⌋
    const b = await must(t, 'GET', `/settlements/2026-05/organizations/${orgs.B}`);
    assert.deepEqual(b.lines, []);
    assert.equal(b.computeLines.length, 1);
    assert.equal(b.totals.supplyValueKrw, '9002');
    assert.equal(b.totals.voucherPartKrw, '7201');
    assert.equal(b.totals.organizationPartKrw, '1801');
    assert.equal(b.totals.vatKrw, '900');
    assert.equal(b.totals.totalKrw, '9902');
    // the month's index lists both organisations and the API supplier, with their totals
    const index = (await must(t, 'GET', '/settlements/2026-05')).statements;
    assert.deepEqual(
      index
        .filter((s: any) => s.partyKind === 'organization')
        .map((s: any) => [s.partyId, s.totalKrw])
        .sort(),
      [
        [orgs.A, '58595'],
        [orgs.B, '9902'],
      ].sort(),
    );
    assert.ok(index.some((s: any) => s.partyKind === 'supplier' && s.partyId === catalog.supplierId));
  });

  test('CSV and XLSX of the organisation statement carry the compute lines', async () => {
    const path = `${t.url}/admin/v1/settlements/2026-05/organizations/${orgs.A}`;
    const headers = { authorization: `Bearer ${ADMIN_TOKEN}` };
    const csv = await (await fetch(`${path}?format=csv`, { headers })).text();
    const rows = parseCsv(csv.replace(/^\ufeff/, ''));
    const header = rows.findIndex((r) => r[0] === 'GPU 풀 GPU pool');
    assert.ok(header > 0, 'a compute table under its own header');
    const computeRows = rows.slice(
      header + 1,
      rows.findIndex((r, i) => i > header && r.join('') === ''),
    );
    assert.equal(computeRows.length, 1);
    const [line] = computeRows;
    assert.match(line![0]!, new RegExp(`\\(${poolId}\\)$`));
    assert.match(line![3]!, new RegExp(`\\(${callId}\\)$`));
    assert.match(line![4]!, new RegExp(`\\(${programmeId}\\)$`));
    assert.deepEqual(line!.slice(5), ['3000.5', '', '17.25', '51758.625', '41406.9', '10351.725']);
    const value = (label: string) => rows.find((r) => r[0]!.startsWith(label))?.[1];
    assert.equal(value('GPU 사용 금액'), '51758.625');
    assert.equal(value('API 사용 금액'), '1510.504');
    assert.equal(value('공급가액'), '53269');
    assert.equal(value('합계'), '58595');

    const xlsx = await fetch(`${path}?format=xlsx`, { headers });
    assert.equal(xlsx.status, 200);
    const workbook = new ExcelJS.Workbook();
    await workbook.xlsx.load(Buffer.from(await xlsx.arrayBuffer()) as never);
    const sheet = workbook.worksheets[0]!;
    let amounts = 0;
    let gpuHours: unknown;
    let supply: unknown;
    let total: unknown;
    let inCompute = false;
    sheet.eachRow((row, n) => {
      const first = String(row.getCell(1).value ?? '');
      if (first === 'GPU 풀 GPU pool') inCompute = true;
      else if (inCompute && typeof row.getCell(8).value === 'number') gpuHours = row.getCell(8).value;
      if (n > 1 && typeof row.getCell(9).value === 'number') amounts += row.getCell(9).value as number;
      if (first.startsWith('공급가액')) supply = row.getCell(2).value;
      if (first.startsWith('합계')) total = row.getCell(2).value;
    });
    assert.ok(inCompute);
    assert.equal(gpuHours, 17.25);
    assert.ok(Math.abs(amounts - 53_269.129) < 0.001, `the amount column sums to the statement (${amounts})`);
    assert.equal(supply, 53_269);
    assert.equal(total, 58_595);
  });

  test('GPU usage of May reported after May closed is an adjustment on June’s statement; May does not move', async () => {
    clock.set('2026-06-10T09:00:00+09:00');
    // May 3rd grows from 10 to 12 GPU-hours (6,001 KRW more), and June has its own hour
    await reportOk(allocation.A, '2026-05-03', 12);
    await reportOk(allocation.A, '2026-06-02', 1);
    const month = await db.get<{ m: string }>(
      "SELECT settlement_month AS m FROM compute_charges WHERE day = '2026-05-03' ORDER BY created_at DESC",
    );
    assert.equal(month!.m, '2026-06');
    assert.deepEqual(await must(t, 'GET', `/settlements/2026-05/organizations/${orgs.A}`), may);

    const june = await must(t, 'POST', '/settlements', { month: '2026-06' });
    assert.equal(june.computeTotals.adjustments, 1);
    assert.equal(june.combinedTotals.adjustments, 1);
    const s = await must(t, 'GET', `/settlements/2026-06/organizations/${orgs.A}`);
    assert.deepEqual(s.lines, []);
    const late = s.computeLines.find((l: any) => l.adjustment);
    const own = s.computeLines.find((l: any) => !l.adjustment);
    assert.equal(late.gpuHours, '2');
    assert.equal(late.amountKrw, '6001');
    assert.equal(late.programmeKrw, '4800.8');
    assert.equal(late.organizationKrw, '1200.2');
    assert.equal(own.gpuHours, '1');
    assert.equal(own.amountKrw, '3000.5');
    assert.equal(s.totals.adjustments, 1);
    // 9,001.5 KRW → 9,002; programme 7,201.2 → 7,201; VAT 900
    assert.equal(s.totals.supplyValueKrw, '9002');
    assert.equal(s.totals.voucherPartKrw, '7201');
    assert.equal(s.totals.totalKrw, '9902');
    const ledger = await ledgerOfA('2026-06');
    assert.equal(ledger.payable.toString(), s.totals.amountMicroKrw);
    assert.equal(ledger.programmes, parseKrwAmount(s.totals.fromProgrammesKrw));
    assert.equal(ledger.wallet, parseKrwAmount(s.totals.fromWalletKrw));
    // B had nothing in June: an empty statement, in the new shape
    const b = await must(t, 'GET', `/settlements/2026-06/organizations/${orgs.B}`);
    assert.equal(b.version, 2);
    assert.deepEqual(b.computeLines, []);
    assert.equal(b.totals.totalKrw, '0');
  });

  test('a month closed before GPU time was on statements keeps its statements as stored', async () => {
    // July: API usage and GPU time, closed the way the hub closed months before decision 0026
    await apiUsage('2026-07-01T12:00:00+09:00', 1_000_000, 0);
    clock.set('2026-07-10T09:00:00+09:00');
    await reportOk(allocation.A, '2026-07-02', 4);
    await reportOk(allocation.B, '2026-07-02', 2);
    const legacySummary = {
      charges: 1,
      amountKrw: '1000',
      voucherPartKrw: '800',
      walletPartKrw: '200',
      usageCostKrw: '1000',
      adjustments: 0,
    };
    const legacy = {
      month: '2026-07',
      partyKind: 'organization',
      partyId: orgs.A,
      partyName: '수요기관',
      vatPercent: 10,
      lines: [
        {
          productId: catalog.productId,
          model: 'hcx-test',
          priceInputPer1M: '1000',
          priceOutputPer1M: '3000',
          adjustment: false,
          requests: 1,
          promptTokens: 1_000_000,
          completionTokens: 0,
          amountKrw: '1000',
          fromVouchersKrw: '800',
          fromWalletKrw: '200',
          counterpartId: catalog.supplierId,
        },
      ],
      programmes: [{ programmeId, name: '지원사업', amountKrw: '800' }],
      totals: {
        requests: 1,
        amountMicroKrw: '1000000000',
        amountKrw: '1000',
        supplyValueKrw: '1000',
        vatKrw: '100',
        totalKrw: '1100',
        voucherPartKrw: '800',
        organizationPartKrw: '200',
        adjustments: 0,
      },
    };
    await db.run(
      `UPDATE settlement_months SET status = 'closed', vat_rate_bp = 1000, closed_at = ?, closed_by = 'operator',
         summary_json = ? WHERE month = '2026-07'`,
      [Date.parse('2026-08-01T10:00:00+09:00'), JSON.stringify(legacySummary)],
    );
    await db.run(
      `INSERT INTO settlement_statements (month, party_kind, party_id, statement_json, created_at)
       VALUES ('2026-07', 'organization', ?, ?, ?)`,
      [orgs.A, JSON.stringify(legacy), Date.parse('2026-08-01T10:00:00+09:00')],
    );

    assert.deepEqual(await must(t, 'GET', `/settlements/2026-07/organizations/${orgs.A}`), legacy);
    const csv = await (
      await fetch(`${t.url}/admin/v1/settlements/2026-07/organizations/${orgs.A}?format=csv`, {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      })
    ).text();
    assert.doesNotMatch(csv, /GPU/, 'a statement stored without GPU time is exported without it');
    assert.match(csv, /합계 Total \(KRW\),1100/);
    // B had GPU time in July but no stored statement: the empty statement of that month's shape
    const b = await must(t, 'GET', `/settlements/2026-07/organizations/${orgs.B}`);
    assert.equal(b.version, undefined);
    assert.equal(b.computeLines, undefined);
    assert.deepEqual(b.lines, []);

    const july = await must(t, 'GET', '/settlements/2026-07');
    assert.equal(july.computeOnStatements, false);
    assert.deepEqual(july.totals, legacySummary, 'the stored API totals, as stored');
    // the month's GPU time is still shown beside them: (4 + 2) h × 3,000.5
    assert.deepEqual(july.computeTotals, {
      charges: 2,
      gpuHours: '6',
      amountKrw: '18003',
      programmePartKrw: '14402.4',
      walletPartKrw: '3600.6',
      adjustments: 0,
    });
    assert.deepEqual(july.combinedTotals, {
      charges: 3,
      amountKrw: '19003',
      programmePartKrw: '15202.4',
      walletPartKrw: '3800.6',
      adjustments: 0,
    });
    assert.deepEqual(july.statements, [
      { partyKind: 'organization', partyId: orgs.A, partyName: '수요기관', totalKrw: '1100' },
    ]);
  });

  test('the months list: one summary per month from two queries, open months with their totals so far', async () => {
    // July is closed: a late GPU day of July and an API call of August land in August, still open
    clock.set('2026-08-05T09:00:00+09:00');
    await reportOk(allocation.A, '2026-07-03', 1);
    await apiUsage('2026-08-02T12:00:00+09:00', 0, 1_000);

    const counted = countingQueries(db);
    const direct = await new SettlementService(counted.db).months();
    assert.ok(counted.queries() <= 2, `months() asked ${counted.queries()} queries`);
    const listed = (await must(t, 'GET', '/settlements')).data;
    assert.deepEqual(listed, direct);
    assert.deepEqual(
      listed.map((m: any) => [m.month, m.status]),
      [
        ['2026-08', 'open'],
        ['2026-07', 'closed'],
        ['2026-06', 'closed'],
        ['2026-05', 'closed'],
      ],
    );
    const august: any = listed[0];
    assert.equal(august.computeOnStatements, true);
    assert.equal(august.totals.amountKrw, '3');
    assert.equal(august.computeTotals.amountKrw, '3000.5');
    assert.equal(august.computeTotals.adjustments, 1);
    assert.equal(august.combinedTotals.amountKrw, '3003.5');
    for (const month of listed) assert.deepEqual(await must(t, 'GET', `/settlements/${month.month}`), month);
  });

  test('another organisation’s people cannot read the statement, in any format', async () => {
    const memberA = await person(t, 'org_member', { organizationId: orgs.A });
    const adminB = await person(t, 'org_admin', { organizationId: orgs.B });
    const path = `/settlements/2026-05/organizations/${orgs.A}`;
    const mine = await as(t, memberA.token, 'GET', path);
    assert.equal(mine.status, 200);
    assert.equal(mine.body.computeLines.length, 1);
    for (const format of ['', '?format=csv', '?format=xlsx']) {
      const r = await fetch(`${t.url}/admin/v1${path}${format}`, {
        headers: { authorization: `Bearer ${adminB.token}` },
      });
      assert.equal(r.status, 404, `B's admin reads A's statement${format}`);
    }
    assert.notEqual((await as(t, supplierAdmin.token, 'GET', path)).status, 200);
  });
});

/** RFC 4180 CSV, as statementCsv writes it (CRLF rows, quotes doubled). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(cell);
      cell = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
      i++;
    } else cell += c;
  }
  if (cell !== '' || row.length > 0) rows.push([...row, cell]);
  return rows;
}

/** The database, counting the queries asked of it. */
function countingQueries(db: Database): { db: Database; queries: () => number } {
  let n = 0;
  const counted: SqlExecutor = {
    all: (sql, params) => {
      n++;
      return db.all(sql, params);
    },
    get: (sql, params) => {
      n++;
      return db.get(sql, params);
    },
    run: (sql, params) => {
      n++;
      return db.run(sql, params);
    },
  };
  return {
    db: { ...counted, dialect: db.dialect } as unknown as Database,
    queries: () => n,
  };
}
