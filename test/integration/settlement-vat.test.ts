import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { costOf, parseKrwAmount } from '../../src/billing/money.ts';
import { insertUsageRecords, type UsageRecord } from '../../src/billing/usage-journal.ts';
import { type Database, openDatabase } from '../../src/storage/database.ts';
import { type FakeOpenAI, startFakeOpenAI } from '../fakes/openai-upstream.ts';
import { ADMIN_TOKEN, type Catalog, seedCatalog, startTestHub, type TestHub } from '../helpers/hub.ts';

/**
 * Settlement at a VAT other than the default 10 %, with amounts chosen so that each rounding rule of
 * docs/billing.md shows: 공급가액 half up to the won, 부가세 truncated (원 미만 절사), the voucher part
 * half up and the organisation part the rest. The expected figures are written out by hand, not
 * computed with the hub's own rounding functions. A handful of records: the big month lives in
 * settlement.test.ts.
 */

const AUGUST = '2026-08';
const SEPTEMBER = '2026-09';
const AUGUST_DAY = Date.parse('2026-08-14T12:00:00+09:00');
const SEPTEMBER_DAY = Date.parse('2026-09-14T12:00:00+09:00');

/** RFC 4180 as the export writes it: commas, CRLF, double quotes doubled inside quoted cells. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(cell);
      cell = '';
    } else if (ch === '\r' && text[i + 1] === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
      i++;
    } else cell += ch;
  }
  assert.equal(cell, '', 'the file ends with CRLF');
  assert.equal(row.length, 0);
  return rows;
}

describe('settlement at another VAT rate', () => {
  let fake: FakeOpenAI;
  let t: TestHub;
  let catalog: Catalog;
  let db: Database;
  let sme: { id: string; voucherId: string };
  let large: { id: string };
  let n = 0;

  async function must(method: string, path: string, body?: unknown) {
    const r = await t.admin(method, path, body);
    assert.ok(r.status >= 200 && r.status < 300, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }

  /** One usage record at the catalog's list prices, charged through the journal's path. */
  function record(
    organizationId: string,
    voucherId: string | null,
    createdAtMs: number,
    product: 'chat' | 'embedding',
    promptTokens: number,
    completionTokens: number,
  ): UsageRecord {
    const prices =
      product === 'chat'
        ? { inputMicroPer1M: parseKrwAmount('1000'), outputMicroPer1M: parseKrwAmount('3000') }
        : { inputMicroPer1M: parseKrwAmount('100'), outputMicroPer1M: 0n };
    const productId = product === 'chat' ? catalog.productId : catalog.embeddingProductId;
    n++;
    return {
      requestId: `vat-${n}`,
      createdAtMs,
      organizationId,
      apiKeyId: catalog.keyId,
      productId,
      deploymentId: null,
      model: product === 'chat' ? 'hcx-test' : 'embed-test',
      endpoint: product === 'chat' ? 'chat.completions' : 'embeddings',
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
      voucherId,
    };
  }

  before(async () => {
    fake = await startFakeOpenAI({ apiKey: 'upstream-secret' });
    t = await startTestHub();
    catalog = await seedCatalog(t, fake.url);
    db = await openDatabase(t.database.location);
    const programme = await must('POST', '/programmes', {
      name: '부가세 바우처',
      startsOn: '2026-01-01',
      endsOn: '2026-12-31',
      budgetKrw: '1000000',
      copayPercent: { sme: 20 },
      onExhausted: 'self-pay',
    });
    const smeOrg = await must('POST', '/organizations', { name: '부가세 중소기업, "갑"', class: 'sme' });
    const voucher = await must('POST', `/programmes/${programme.id}/vouchers`, {
      organizationId: smeOrg.id,
      amountKrw: '100000',
    });
    sme = { id: smeOrg.id, voucherId: voucher.id };
    large = { id: (await must('POST', '/organizations', { name: '부가세 대기업', class: 'large' })).id };

    const records = [
      // August. sme: 12,358.5 KRW of chat (voucher 80 %: 9,886.8) + 0.5555 KRW of embeddings (voucher
      // 0.4444) = 12,359.0555 KRW
      record(sme.id, sme.voucherId, AUGUST_DAY, 'chat', 12_358_500, 0),
      record(sme.id, sme.voucherId, AUGUST_DAY + 1000, 'embedding', 5_555, 0),
      // large, no voucher: 1,000 + 0.999 = 1,000.999 KRW
      record(large.id, null, AUGUST_DAY + 2000, 'chat', 1_000_000, 333),
      // September. sme: 2,000 + 3,000.501 = 5,000.501 KRW (voucher 80 %: 4,000.4008)
      record(sme.id, sme.voucherId, SEPTEMBER_DAY, 'chat', 2_000_000, 1_000_167),
    ];
    await db.transaction((tx) => insertUsageRecords(tx, records, db.dialect));
  });
  after(async () => {
    await db?.close();
    await t?.close();
    await fake?.close();
  });

  test('a month closed at 5 % and one at 0 %: 공급가액 half up, 부가세 truncated, parts that add up', async () => {
    for (const vatPercent of [-1, 100.5, '5']) {
      const bad = await t.admin('POST', '/settlements', { month: AUGUST, vatPercent });
      assert.equal(bad.status, 400, JSON.stringify(bad.body));
      assert.equal(bad.body.error.fields[0].field, 'vatPercent');
    }
    assert.equal(
      (await must('GET', `/settlements/${AUGUST}`)).status,
      'open',
      'a refused close changes nothing',
    );

    const august = await t.admin('POST', '/settlements', { month: AUGUST, vatPercent: 5 });
    assert.equal(august.status, 201, JSON.stringify(august.body));
    assert.equal(august.body.vatPercent, 5);
    const september = await t.admin('POST', '/settlements', { month: SEPTEMBER, vatPercent: 0 });
    assert.equal(september.status, 201, JSON.stringify(september.body));
    assert.equal(september.body.vatPercent, 0, 'zero, not "unset"');

    const expect = async (path: string, totals: Record<string, string>, vatPercent: number) => {
      const s = await must('GET', path);
      assert.equal(s.vatPercent, vatPercent, path);
      for (const [k, v] of Object.entries(totals)) assert.equal(s.totals[k], v, `${path}: ${k}`);
    };
    // sme, August: 12,359.0555 → 12,359; VAT 5 % = 617.95 → 617 (truncated, not 618); voucher part
    // 9,887.2444 → 9,887, organisation part 12,359 − 9,887
    await expect(
      `/settlements/${AUGUST}/organizations/${sme.id}`,
      {
        amountKrw: '12359.0555',
        supplyValueKrw: '12359',
        vatKrw: '617',
        totalKrw: '12976',
        voucherPartKrw: '9887',
        organizationPartKrw: '2472',
      },
      5,
    );
    // large, August: 1,000.999 → 1,001 (half up); VAT 50.05 → 50
    await expect(
      `/settlements/${AUGUST}/organizations/${large.id}`,
      {
        amountKrw: '1000.999',
        supplyValueKrw: '1001',
        vatKrw: '50',
        totalKrw: '1051',
        voucherPartKrw: '0',
        organizationPartKrw: '1001',
      },
      5,
    );
    // the supplier, August, rounded once over all its lines (not the sum of the organisations'
    // roundings, 12,359 + 1,001 = 13,360 by chance, but the VAT differs: 668 ≠ 617 + 50)
    await expect(
      `/settlements/${AUGUST}/suppliers/${catalog.supplierId}`,
      {
        amountKrw: '13360.0545',
        supplyValueKrw: '13360',
        vatKrw: '668',
        totalKrw: '14028',
        voucherPartKrw: '9887',
        organizationPartKrw: '3473',
      },
      5,
    );
    // September at 0 %: 5,000.501 → 5,001 (half up past .5); no VAT; voucher 4,000.4008 → 4,000
    for (const path of [
      `/settlements/${SEPTEMBER}/organizations/${sme.id}`,
      `/settlements/${SEPTEMBER}/suppliers/${catalog.supplierId}`,
    ])
      await expect(
        path,
        {
          amountKrw: '5000.501',
          supplyValueKrw: '5001',
          vatKrw: '0',
          totalKrw: '5001',
          voucherPartKrw: '4000',
          organizationPartKrw: '1001',
        },
        0,
      );
    // the month list keeps each month's own rate
    const months = (await must('GET', '/settlements')).data as { month: string; vatPercent: number | null }[];
    assert.equal(months.find((m) => m.month === AUGUST)?.vatPercent, 5);
    assert.equal(months.find((m) => m.month === SEPTEMBER)?.vatPercent, 0);
  });
  test('the CSV of a supplier statement and of an organisation statement say what the JSON says, to the won', async () => {
    // reads the months the test above closed
    const csvOf = async (path: string) => {
      const res = await fetch(`${t.url}/admin/v1${path}?format=csv`, {
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      });
      assert.equal(res.status, 200, path);
      assert.match(res.headers.get('content-type') ?? '', /text\/csv/);
      const bytes = Buffer.from(await res.arrayBuffer());
      // read as bytes: fetch's text() would drop the mark it is looking for
      assert.deepEqual([...bytes.subarray(0, 3)], [0xef, 0xbb, 0xbf], 'UTF-8 with a byte-order mark');
      return parseCsv(bytes.subarray(3).toString('utf8'));
    };
    for (const path of [
      `/settlements/${AUGUST}/suppliers/${catalog.supplierId}`,
      `/settlements/${AUGUST}/organizations/${sme.id}`,
      `/settlements/${SEPTEMBER}/organizations/${sme.id}`,
    ]) {
      const s = await must('GET', path);
      const rows = await csvOf(path);
      assert.ok(
        rows.every((r) => r.length <= 11),
        `${path}: no row wider than the header`,
      );
      assert.match(rows[0]![8]!, /^금액/, 'column 9 is the amount');

      // the API lines: every line of the JSON, with its amount and parts to the µ₩
      const end = rows.findIndex((r, i) => i > 0 && r.length === 1 && r[0] === '');
      const lines = rows.slice(1, end);
      assert.equal(lines.length, s.lines.length, `${path}: one row per line`);
      if (s.month === AUGUST) assert.ok(lines.length >= 2, 'more than one line to add up');
      const sum = (column: number) => lines.reduce((a, r) => a + parseKrwAmount(r[column]), 0n);
      assert.equal(sum(8), BigInt(s.totals.amountMicroKrw), `${path}: the amounts add up to the exact total`);
      const voucherLines = s.lines.reduce(
        (a: bigint, l: { fromVouchersKrw: string }) => a + parseKrwAmount(l.fromVouchersKrw),
        0n,
      );
      assert.equal(sum(9), voucherLines, `${path}: the voucher column`);
      assert.equal(sum(8) - sum(9), sum(10), `${path}: voucher and organisation columns split each amount`);

      // the totals, by their labels
      const totals = new Map(rows.slice(end + 1).map((r) => [r[0]!, r[1]!]));
      const total = (label: RegExp) => {
        const hits = [...totals].filter(([k]) => label.test(k));
        assert.equal(hits.length, 1, `${path}: one row ${label}`);
        return hits[0]![1];
      };
      assert.equal(total(/^정산월/), s.month);
      assert.equal(
        total(/^(공급기업|수요기관) /),
        `${s.partyName} (${s.partyId})`,
        'a name with a comma and quotes',
      );
      assert.equal(total(/^금액 Amount/), s.totals.amountKrw);
      assert.equal(total(/^공급가액/), s.totals.supplyValueKrw);
      assert.equal(
        total(new RegExp(`^부가세 VAT ${s.vatPercent}% `)),
        s.totals.vatKrw,
        'the month’s own rate',
      );
      assert.equal(total(/^합계/), s.totals.totalKrw);
      assert.equal(total(/^(바우처|지원사업) 부담/), s.totals.voucherPartKrw);
      assert.equal(total(/^기관 부담/), s.totals.organizationPartKrw);
      // and they hold together as docs/billing.md says, from the CSV alone
      const won = 1_000_000n;
      assert.equal(BigInt(total(/^공급가액/)), (sum(8) + won / 2n) / won, '공급가액: the lines, half up');
      assert.equal(
        BigInt(total(/^공급가액/)) + BigInt(total(/^부가세/)),
        BigInt(total(/^합계/)),
        '합계 = 공급가액 + 부가세',
      );
      assert.equal(
        BigInt(total(/^(바우처|지원사업) 부담/)) + BigInt(total(/^기관 부담/)),
        BigInt(total(/^공급가액/)),
      );
      assert.equal(BigInt(total(/^(바우처|지원사업) 부담/)), (sum(9) + won / 2n) / won);
      const claims = [...totals].filter(([k]) => k.startsWith('지원사업 청구'));
      assert.equal(claims.length, s.programmes.length);
      assert.equal(
        claims.reduce((a, [, v]) => a + parseKrwAmount(v), 0n),
        voucherLines,
        'what is claimed from the programmes is what the vouchers paid',
      );
      if (s.subtotals) assert.equal(total(/^API 사용 금액/), s.subtotals.api.amountKrw);
    }
  });
});
