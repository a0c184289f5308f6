import type { Statement } from './settlement.ts';
import { type Cell, writeXlsx } from './xlsx.ts';

/**
 * A statement as rows: the API lines, then (on an organisation's statement with GPU time, decision 0026)
 * the compute lines under their own header, then the totals, each labelled in Korean and English. Both
 * tables keep amount, programme-paid and organisation-paid in columns 9 to 11, so a sheet sums them alike.
 */
function rowsOf(s: Statement): Cell[][] {
  const counterpart = s.partyKind === 'supplier' ? '수요기관 Organization' : '공급기업 Supplier';
  const rows: Cell[][] = [
    [
      '상품 Model',
      '입력 단가 Input KRW/1M',
      '출력 단가 Output KRW/1M',
      counterpart,
      '조정 Adjustment',
      '요청 Requests',
      '입력 토큰 Prompt tokens',
      '출력 토큰 Completion tokens',
      '금액 Amount (KRW)',
      '바우처 Vouchers (KRW)',
      '자부담 Organization (KRW)',
    ],
  ];
  for (const l of s.lines) {
    rows.push([
      l.model,
      Number(l.priceInputPer1M),
      Number(l.priceOutputPer1M),
      l.counterpartId,
      l.adjustment ? '이전 달 / earlier month' : '',
      l.requests,
      l.promptTokens,
      l.completionTokens,
      Number(l.amountKrw),
      Number(l.fromVouchersKrw),
      Number(l.fromWalletKrw),
    ]);
  }
  const compute = s.computeLines ?? [];
  if (compute.length > 0) {
    rows.push([]);
    rows.push([
      'GPU 풀 GPU pool',
      'GPU',
      '컴퓨팅 공급기업 Compute supplier',
      '공모 Call',
      '지원사업 Programme',
      '단가 KRW/GPU-hour',
      '조정 Adjustment',
      'GPU 시간 GPU-hours',
      '금액 Amount (KRW)',
      '사업 부담 Programme (KRW)',
      '자부담 Organization (KRW)',
    ]);
    for (const l of compute)
      rows.push([
        `${l.poolName} (${l.poolId})`,
        l.gpuModel,
        `${l.computeSupplierName} (${l.computeSupplierId})`,
        `${l.callName} (${l.callId})`,
        l.programmeId === null ? '' : `${l.programmeName} (${l.programmeId})`,
        Number(l.pricePerGpuHourKrw),
        l.adjustment ? '이전 달 / earlier month' : '',
        Number(l.gpuHours),
        Number(l.amountKrw),
        Number(l.programmeKrw),
        Number(l.organizationKrw),
      ]);
  }
  const t = s.totals;
  rows.push([]);
  rows.push(['정산월 Month', s.month]);
  rows.push([
    s.partyKind === 'supplier' ? '공급기업 Supplier' : '수요기관 Organization',
    `${s.partyName} (${s.partyId})`,
  ]);
  if (s.subtotals) {
    rows.push(['API 사용 금액 API usage (KRW, exact)', s.subtotals.api.amountKrw]);
    rows.push(['GPU 사용 금액 GPU time (KRW, exact)', s.subtotals.compute.amountKrw]);
    rows.push(['GPU 시간 GPU-hours', s.subtotals.compute.gpuHours]);
  }
  rows.push(['금액 Amount (KRW, exact)', t.amountKrw]);
  rows.push(['공급가액 Supply value (KRW)', Number(t.supplyValueKrw)]);
  rows.push([`부가세 VAT ${s.vatPercent}% (KRW)`, Number(t.vatKrw)]);
  rows.push(['합계 Total (KRW)', Number(t.totalKrw)]);
  rows.push([
    s.subtotals ? '지원사업 부담 Programme part (KRW)' : '바우처 부담 Voucher part (KRW)',
    Number(t.voucherPartKrw),
  ]);
  rows.push(['기관 부담 Organization part (KRW)', Number(t.organizationPartKrw)]);
  for (const p of s.programmes) rows.push([`지원사업 청구 Claim from ${p.name} (KRW)`, p.amountKrw]);
  return rows;
}

export function csvCell(value: Cell | undefined): string {
  if (value === null || value === undefined) return '';
  const text = String(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** UTF-8 with a byte-order mark, so that Excel in Korea opens the Hangul as Hangul. */
export function statementCsv(s: Statement): string {
  return `\ufeff${rowsOf(s)
    .map((row) => row.map(csvCell).join(','))
    .join('\r\n')}\r\n`;
}

export function statementXlsx(s: Statement): Buffer {
  return writeXlsx([{ name: `${s.month} ${s.partyKind}`, rows: rowsOf(s) }]);
}

export function statementFilename(s: Statement, extension: 'csv' | 'xlsx'): string {
  return `정산-${s.month}-${s.partyKind}-${s.partyId}.${extension}`;
}
