/**
 * `kaihub vouchers issue | list` and `kaihub funds <orgId> | deposit | ledger`: programmes' vouchers
 * and organisations' money (docs/billing.md). `kaihub programmes` is a plain resource (resources.ts).
 */
import { buildBody, fieldSpecs, UsageError } from './flags.ts';
import { flagSet, list, type Plan, parse, record } from './plan.ts';
import { kst, type Row } from './resources.ts';
import { renderTable } from './table.ts';

const VOUCHER_FIELDS = fieldSpecs('organizationId amountKrw validFrom validUntil');
const DEPOSIT_FIELDS = fieldSpecs('amountKrw memo');

const VOUCHER_COLUMNS = [
  { header: 'ID', value: (r: Row) => r.id },
  { header: '수요기관 Org', value: (r: Row) => r.organizationId },
  { header: '금액 Amount (KRW)', value: (r: Row) => r.amountKrw, align: 'right' as const },
  { header: '잔액 Balance (KRW)', value: (r: Row) => r.balanceKrw, align: 'right' as const },
  { header: '자부담 Co-pay %', value: (r: Row) => r.copayPercent, align: 'right' as const },
  { header: '유효 Valid (KST)', value: (r: Row) => `${r.validFrom} ~ ${r.validUntil}` },
];

const LEDGER_COLUMNS = [
  { header: '시각 Time (KST)', value: (r: Row) => kst(r.createdAt) },
  { header: '종류 Kind', value: (r: Row) => r.kind },
  { header: '계정 Account', value: (r: Row) => r.accountId },
  { header: '금액 Amount (KRW)', value: (r: Row) => r.amountKrw, align: 'right' as const },
  { header: '요청 Request', value: (r: Row) => r.requestId ?? r.memo ?? '' },
];

const id = (text: string | undefined) => encodeURIComponent(text ?? '');

export function planVouchers(verb: string, args: string[]): Plan {
  if (verb === 'issue') {
    const parsed = parse(args, flagSet(['data'], VOUCHER_FIELDS), ['programmeId']);
    return {
      parsed,
      method: 'POST',
      path: `/programmes/${id(parsed.positionals[0])}/vouchers`,
      body: buildBody(VOUCHER_FIELDS, parsed),
      render: record,
      fields: VOUCHER_FIELDS,
    };
  }
  if (verb === 'list') {
    const parsed = parse(args, flagSet(), ['programmeId']);
    return {
      parsed,
      method: 'GET',
      path: `/programmes/${id(parsed.positionals[0])}/vouchers`,
      render: list(VOUCHER_COLUMNS),
    };
  }
  throw new UsageError(`kaihub vouchers: issue <programmeId> | list <programmeId> (got "${verb}")`);
}

function renderFunds(result: unknown): string {
  const f = result as {
    organizationId: string;
    spendMode: string;
    walletKrw: string;
    heldKrw: string;
    vouchers: Row[];
  };
  const head = [
    `수요기관 organization: ${f.organizationId} (${f.spendMode})`,
    `지갑 wallet: ${f.walletKrw} KRW`,
    `예치 중 held on this replica: ${f.heldKrw} KRW`,
  ].join('\n');
  return `${head}\n${f.vouchers.length > 0 ? renderTable(VOUCHER_COLUMNS, f.vouchers) : '바우처 없음 / no vouchers\n'}`;
}

export function planFunds(verb: string, args: string[]): Plan {
  if (verb === 'deposit') {
    const parsed = parse(args, flagSet(['data'], DEPOSIT_FIELDS), ['orgId']);
    return {
      parsed,
      method: 'POST',
      path: `/organizations/${id(parsed.positionals[0])}/deposits`,
      body: buildBody(DEPOSIT_FIELDS, parsed),
      render: renderFunds,
      fields: DEPOSIT_FIELDS,
    };
  }
  if (verb === 'ledger') {
    const limit = fieldSpecs('limit:number');
    const parsed = parse(args, flagSet(limit), ['orgId']);
    const n = parsed.values.get('limit');
    return {
      parsed,
      method: 'GET',
      path: `/organizations/${id(parsed.positionals[0])}/ledger${n ? `?limit=${encodeURIComponent(n)}` : ''}`,
      render: list(LEDGER_COLUMNS),
    };
  }
  if (verb !== '' && !verb.startsWith('-')) {
    // `kaihub funds <orgId>`
    const parsed = parse(args, flagSet(), []);
    return { parsed, method: 'GET', path: `/organizations/${id(verb)}/funds`, render: renderFunds };
  }
  throw new UsageError(
    `kaihub funds: <orgId> | deposit <orgId> --amount-krw N | ledger <orgId> (got "${verb}")`,
  );
}
