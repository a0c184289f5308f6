import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import ExcelJS from 'exceljs';
import { costOf, formatKrw, parseKrwAmount } from '../../src/billing/money.ts';
import { roundToWon, vatOf } from '../../src/billing/settlement.ts';
import { insertUsageRecords, type UsageRecord } from '../../src/billing/usage-journal.ts';
import { type Database, openDatabase } from '../../src/storage/database.ts';
import { type FakeOpenAI, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import { runAdminInProcess } from '../helpers/cli.ts';
import { ADMIN_TOKEN, type Catalog, seedCatalog, startTestHub, type TestHub } from '../helpers/hub.ts';
import { seededRandom } from '../helpers/seeded-random.ts';

/**
 * A month of generated usage — across programmes with different co-payment ratios, organisations with
 * and without vouchers, two suppliers, and a price change in the middle of the month — charged through
 * the same path the journal applier takes, then closed. The statements must reconcile with the usage
 * records to the won, the XLSX (read back by an independent reader) must say the same, and a late
 * event must land in the next month without changing the closed one.
 */

const MONTH = '2026-10';
const EVENTS = Number(process.env.KAIHUB_SETTLEMENT_EVENTS ?? 100_000);
const MONTH_START = Date.parse('2026-10-01T00:00:00+09:00');
const MONTH_END = Date.parse('2026-11-01T00:00:00+09:00');
const PRICE_CHANGE = Date.parse('2026-10-16T00:00:00+09:00');

describe('monthly settlement', () => {
  let fake: FakeOpenAI;
  let t: TestHub;
  let catalog: Catalog;
  let db: Database;
  const orgs: { id: string; voucherId: string | null }[] = [];
  const products: { id: string; supplierId: string; before: [bigint, bigint]; after: [bigint, bigint] }[] =
    [];

  async function must(method: string, path: string, body?: unknown) {
    const r = await t.admin(method, path, body);
    assert.ok(r.status >= 200 && r.status < 300, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }

  before(async () => {
    fake = await startFakeOpenAI({ apiKey: 'upstream-secret' });
    t = await startTestHub();
    catalog = await seedCatalog(t, fake.url);
    db = await openDatabase(t.database.location);
    const supplierB = await must('POST', '/suppliers', { name: '업스테이지 정산', nameEn: 'Upstage' });
    const solar = await must('POST', '/products', {
      supplierId: supplierB.id,
      model: 'solar-settle',
      displayName: 'Solar',
      purposes: ['chat'],
      modality: 'text',
      contextWindow: 32768,
      priceInputPer1M: '150',
      priceOutputPer1M: '600',
      residency: 'domestic',
    });
    products.push(
      {
        id: catalog.productId,
        supplierId: catalog.supplierId,
        before: [parseKrwAmount('1000'), parseKrwAmount('3000')],
        after: [parseKrwAmount('800'), parseKrwAmount('2500.5')],
      },
      {
        id: solar.id,
        supplierId: supplierB.id,
        before: [parseKrwAmount('150'), parseKrwAmount('600')],
        after: [parseKrwAmount('150'), parseKrwAmount('600')],
      },
    );
    const programmes = [
      await must('POST', '/programmes', {
        name: 'AI 바우처 2026 정산',
        startsOn: '2026-01-01',
        endsOn: '2026-12-31',
        budgetKrw: '1000000000',
        copayPercent: { sme: 20, midsize: 50 },
        onExhausted: 'self-pay',
      }),
      await must('POST', '/programmes', {
        name: '공공 AI 정산',
        startsOn: '2026-01-01',
        endsOn: '2026-12-31',
        budgetKrw: '1000000000',
        copayPercent: { public: 0, sme: 33.33 },
        onExhausted: 'block',
      }),
    ];
    const classes = ['sme', 'midsize', 'public', 'sme', 'large'];
    for (let i = 0; i < classes.length; i++) {
      const org = await must('POST', '/organizations', { name: `정산 기관 ${i}`, class: classes[i] });
      let voucherId: string | null = null;
      const programme =
        classes[i] === 'large' ? null : classes[i] === 'public' || i === 3 ? programmes[1] : programmes[0];
      if (programme) {
        // the last sme's voucher runs out within the month: the wallet pays the rest
        const amount = i === 3 ? '500' : '50000000';
        voucherId = (
          await must('POST', `/programmes/${programme.id}/vouchers`, {
            organizationId: org.id,
            amountKrw: amount,
          })
        ).id;
      }
      orgs.push({ id: org.id, voucherId });
    }
  });
  after(async () => {
    await db?.close();
    await t?.close();
    await fake?.close();
  });

  test(`a month of ${EVENTS.toLocaleString('en')} events closes into statements that reconcile to the won`, async () => {
    const random = seededRandom(20261031);
    const batch: UsageRecord[] = [];
    const flush = async () => {
      const records = batch.splice(0);
      await db.transaction((tx) => insertUsageRecords(tx, records, db.dialect));
    };
    for (let i = 0; i < EVENTS; i++) {
      const org = orgs[Math.floor(random() * orgs.length)]!;
      const product = products[Math.floor(random() * products.length)]!;
      const createdAtMs = MONTH_START + Math.floor(random() * (MONTH_END - MONTH_START));
      const [input, output] = createdAtMs < PRICE_CHANGE ? product.before : product.after;
      const promptTokens = 1 + Math.floor(random() * 2000);
      const completionTokens = Math.floor(random() * 800);
      const prices = { inputMicroPer1M: input, outputMicroPer1M: output };
      batch.push({
        requestId: `settle-${i}`,
        createdAtMs,
        organizationId: org.id,
        apiKeyId: catalog.keyId,
        productId: product.id,
        deploymentId: null,
        model: product.id,
        endpoint: 'chat.completions',
        stream: false,
        status: 'ok',
        httpStatus: 200,
        errorCode: null,
        promptTokens,
        completionTokens,
        usageSource: 'upstream',
        priceInputMicroPer1M: input,
        priceOutputMicroPer1M: output,
        costMicroKrw: costOf(promptTokens, completionTokens, prices),
        latencyMs: 100,
        ttftMs: null,
        usageNote: null,
        voucherId: org.voucherId,
      });
      if (batch.length === 1000) await flush();
    }
    await flush();

    const started = Date.now();
    const closed = await t.admin('POST', '/settlements', { month: MONTH });
    assert.equal(closed.status, 201, JSON.stringify(closed.body));
    const closeMs = Date.now() - started;
    process.stdout.write(`[settlement] closed ${EVENTS} events in ${closeMs} ms (${db.dialect})\n`);
    assert.equal(closed.body.status, 'closed');
    assert.equal(closed.body.totals.charges, EVENTS);
    assert.equal(closed.body.totals.amountKrw, closed.body.totals.usageCostKrw, 'ledger and usage agree');

    // every statement's supply value is its usage records' cost rounded to the won
    const bySupplier = new Map<string, bigint>();
    const byOrg = new Map<string, bigint>();
    for (const r of await db.all<{ organization_id: string; product_id: string; cost: string }>(
      `SELECT organization_id, product_id, CAST(SUM(cost_micro_krw) AS TEXT) AS cost FROM usage_events
       WHERE created_at >= ? AND created_at < ? GROUP BY organization_id, product_id`,
      [MONTH_START, MONTH_END],
    )) {
      const supplier = products.find((p) => p.id === r.product_id)!.supplierId;
      bySupplier.set(supplier, (bySupplier.get(supplier) ?? 0n) + BigInt(r.cost));
      byOrg.set(r.organization_id, (byOrg.get(r.organization_id) ?? 0n) + BigInt(r.cost));
    }
    let total = 0n;
    for (const [supplierId, cost] of bySupplier) {
      const s = await must('GET', `/settlements/${MONTH}/suppliers/${supplierId}`);
      assert.equal(s.totals.amountMicroKrw, cost.toString());
      assert.equal(s.totals.supplyValueKrw, roundToWon(cost).toString(), '공급가액: half up to the won');
      assert.equal(s.totals.vatKrw, vatOf(roundToWon(cost), 1000).toString(), '부가세 10 %, truncated');
      assert.equal(BigInt(s.totals.voucherPartKrw) + BigInt(s.totals.organizationPartKrw), roundToWon(cost));
      const lines = s.lines.reduce(
        (sum: bigint, l: { amountKrw: string }) => sum + parseKrwAmount(l.amountKrw),
        0n,
      );
      assert.equal(lines, cost, 'the lines add up to the total');
      total += cost;
      if (supplierId === catalog.supplierId) {
        const prices = new Set(s.lines.map((l: { priceOutputPer1M: string }) => l.priceOutputPer1M));
        assert.deepEqual([...prices].sort(), ['2500.5', '3000'], 'each charge shows the price it used');
        // what to claim from each programme is what its vouchers paid
        const claims = s.programmes.reduce(
          (sum: bigint, p: { amountKrw: string }) => sum + parseKrwAmount(p.amountKrw),
          0n,
        );
        const vouchers = s.lines.reduce(
          (sum: bigint, l: { fromVouchersKrw: string }) => sum + parseKrwAmount(l.fromVouchersKrw),
          0n,
        );
        assert.equal(claims, vouchers);
        assert.ok(claims > 0n);

        // the XLSX says the same, read by an independent reader
        const res = await fetch(
          `${t.url}/admin/v1/settlements/${MONTH}/suppliers/${supplierId}?format=xlsx`,
          {
            headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
          },
        );
        assert.equal(res.status, 200);
        assert.match(res.headers.get('content-disposition')!, /filename\*=UTF-8''/);
        const workbook = new ExcelJS.Workbook();
        await workbook.xlsx.load(Buffer.from(await res.arrayBuffer()) as never);
        const sheet = workbook.worksheets[0]!;
        let sheetAmount = 0;
        let supply: number | undefined;
        let vat: number | undefined;
        sheet.eachRow((row, n) => {
          const label = String(row.getCell(1).value ?? '');
          if (n > 1 && typeof row.getCell(9).value === 'number')
            sheetAmount += row.getCell(9).value as number;
          if (label.startsWith('공급가액')) supply = row.getCell(2).value as number;
          if (label.startsWith('부가세')) vat = row.getCell(2).value as number;
        });
        assert.equal(supply, Number(s.totals.supplyValueKrw));
        assert.equal(vat, Number(s.totals.vatKrw));
        assert.ok(
          Math.abs(sheetAmount - Number(formatKrw(cost))) < 0.01,
          'the amount column sums to the total',
        );

        const csv = await fetch(`${t.url}/admin/v1/settlements/${MONTH}/suppliers/${supplierId}?format=csv`, {
          headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
        });
        const text = await csv.text();
        assert.ok(text.startsWith('\ufeff') || text.startsWith('상품'), 'UTF-8 with a byte-order mark');
        assert.match(text, /공급가액 Supply value \(KRW\),\d+/);
      }
    }
    for (const [organizationId, cost] of byOrg) {
      const s = await must('GET', `/settlements/${MONTH}/organizations/${organizationId}`);
      assert.equal(s.totals.amountMicroKrw, cost.toString());
      assert.equal(s.totals.supplyValueKrw, roundToWon(cost).toString());
    }
    const usageTotal = await db.get<{ c: string }>(
      'SELECT CAST(SUM(cost_micro_krw) AS TEXT) AS c FROM usage_events WHERE created_at >= ? AND created_at < ?',
      [MONTH_START, MONTH_END],
    );
    assert.equal(total, BigInt(usageTotal!.c));

    // closed is closed
    assert.equal((await t.admin('POST', '/settlements', { month: MONTH })).status, 409);
    const current = await t.admin('POST', '/settlements', {
      month: new Date(Date.now() + 9 * 3600_000).toISOString().slice(0, 7),
    });
    assert.equal(current.status, 400);
    assert.equal(current.body.error.fields[0].field, 'month');
    // a malformed month in a path is a 400 naming it, not the 404 of a month without a row
    for (const path of ['/settlements/2026-13', `/settlements/oct/suppliers/${catalog.supplierId}`]) {
      const bad = await t.admin('GET', path);
      assert.equal(bad.status, 400, path);
      assert.equal(bad.body.error.fields[0].field, 'month');
    }

    // a late event of October lands in November as an adjustment; October's statements do not move
    const before = await must('GET', `/settlements/${MONTH}/suppliers/${catalog.supplierId}`);
    const lateCost = costOf(10, 10, {
      inputMicroPer1M: products[0]!.after[0],
      outputMicroPer1M: products[0]!.after[1],
    });
    await db.transaction((tx) =>
      insertUsageRecords(
        tx,
        [
          {
            requestId: 'settle-late',
            createdAtMs: MONTH_END - 1000,
            organizationId: orgs[0]!.id,
            apiKeyId: catalog.keyId,
            productId: catalog.productId,
            deploymentId: null,
            model: 'hcx-test',
            endpoint: 'chat.completions',
            stream: false,
            status: 'ok',
            httpStatus: 200,
            errorCode: null,
            promptTokens: 10,
            completionTokens: 10,
            usageSource: 'upstream',
            priceInputMicroPer1M: products[0]!.after[0],
            priceOutputMicroPer1M: products[0]!.after[1],
            costMicroKrw: lateCost,
            latencyMs: 1,
            ttftMs: null,
            usageNote: null,
            voucherId: orgs[0]!.voucherId,
          },
        ],
        db.dialect,
      ),
    );
    const month = await db.get<{ m: string }>(
      "SELECT settlement_month AS m FROM ledger_transactions WHERE request_id = 'settle-late'",
    );
    assert.equal(month!.m, '2026-11');
    assert.deepEqual(await must('GET', `/settlements/${MONTH}/suppliers/${catalog.supplierId}`), before);
    const november = await must('GET', '/settlements/2026-11');
    assert.equal(november.status, 'open');
    assert.ok(november.totals.adjustments >= 1);
    // statements are never rewritten, not even by hand
    await assert.rejects(db.run("DELETE FROM settlement_statements WHERE month = '2026-10'"));

    // the CLI: the months, and a statement file on standard output
    const env = { KAIHUB_URL: t.url, KAIHUB_ADMIN_TOKEN: ADMIN_TOKEN };
    const file = await runAdminInProcess(
      ['settlements', 'statement', MONTH, '--supplier-id', catalog.supplierId, '--format', 'xlsx'],
      env,
    );
    assert.equal(file.code, 0);
    assert.equal(file.bytes.subarray(0, 2).toString(), 'PK', 'an XLSX (a ZIP) on stdout');
    const months = await runAdminInProcess(['settlements', 'list'], env);
    assert.equal(months.code, 0);
    assert.match(months.stdout, /2026-10 +closed/);
  });
});
