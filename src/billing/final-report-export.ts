import type { ProgrammeReport } from './programme-close.ts';
import { type Cell, decimalCell, writeCsv, writeXlsx } from './xlsx.ts';

/**
 * A programme's final report as rows: one per voucher (and the agreement it was issued for), a column
 * per tranche, then the totals, each labelled in Korean and English. Amounts are numbers written with
 * every digit (to the µ₩), so a sheet sums them.
 */
function rowsOf(r: ProgrammeReport): Cell[][] {
  const trancheHeaders = r.tranchePercents.map((percent, i) => {
    const label = r.vouchers[0]?.tranches[i]?.label ?? `${i + 1}`;
    return `${label} ${percent}% (KRW)`;
  });
  const rows: Cell[][] = [
    [
      '바우처 Voucher',
      '수요기관 Organization',
      '협약 Agreement',
      '공급기업 Supplier',
      '지원 Granted (KRW)',
      '사용 Used (KRW)',
      '바우처 부담 Voucher paid (KRW)',
      '자부담 Co-paid (KRW)',
      '반환 Returned (KRW)',
      ...trancheHeaders,
    ],
  ];
  for (const v of r.vouchers)
    rows.push([
      v.voucherId,
      v.organizationId,
      v.agreementId ?? '',
      v.supplierId ?? '',
      decimalCell(v.grantedKrw),
      decimalCell(v.usedKrw),
      decimalCell(v.voucherPaidKrw),
      decimalCell(v.coPaidKrw),
      decimalCell(v.returnedKrw),
      ...v.tranches.map((t) => decimalCell(t.amountKrw)),
    ]);
  rows.push([]);
  rows.push(['지원사업 Programme', r.programmeId]);
  rows.push(['종료 Closed', r.closedAt]);
  if (r.early) rows.push(['조기 종료 사유 Closed early because', r.reason ?? '']);
  rows.push(['지원 합계 Granted (KRW)', decimalCell(r.totals.grantedKrw)]);
  rows.push(['바우처 부담 합계 Voucher paid (KRW)', decimalCell(r.totals.voucherPaidKrw)]);
  rows.push(['자부담 합계 Co-paid (KRW)', decimalCell(r.totals.coPaidKrw)]);
  rows.push(['반환 합계 Returned (KRW)', decimalCell(r.totals.returnedKrw)]);
  return rows;
}

export function finalReportCsv(r: ProgrammeReport): string {
  return writeCsv(rowsOf(r));
}

export function finalReportXlsx(r: ProgrammeReport): Buffer {
  return writeXlsx([{ name: '최종 보고 Final report', rows: rowsOf(r) }]);
}

export function finalReportFilename(r: ProgrammeReport, extension: 'csv' | 'xlsx'): string {
  return `최종보고-${r.programmeId}.${extension}`;
}
