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

const SETTLEMENT_COLUMNS = [
  { header: '월 Month', value: (r: Row) => r.month },
  { header: '상태 Status', value: (r: Row) => r.status },
  {
    header: '건수 Charges',
    value: (r: Row) => (r.combinedTotals as Row | null)?.charges ?? '',
    align: 'right' as const,
  },
  {
    header: 'API 금액 API (KRW)',
    value: (r: Row) => (r.totals as Row | null)?.amountKrw ?? '',
    align: 'right' as const,
  },
  {
    header: 'GPU 금액 GPU (KRW)',
    value: (r: Row) => (r.computeTotals as Row | null)?.amountKrw ?? '',
    align: 'right' as const,
  },
  {
    header: '합계 Amount (KRW)',
    value: (r: Row) => (r.combinedTotals as Row | null)?.amountKrw ?? '',
    align: 'right' as const,
  },
  {
    header: '조정 Adjustments',
    value: (r: Row) => (r.combinedTotals as Row | null)?.adjustments ?? '',
    align: 'right' as const,
  },
  { header: '마감 Closed (KST)', value: (r: Row) => (r.closedAt ? kst(r.closedAt) : '') },
];

/**
 * `kaihub settlements close <YYYY-MM> [--vat-percent N] | list | get <YYYY-MM>` and
 * `kaihub settlements statement <YYYY-MM> --supplier-id ID | --organization-id ID [--format csv|xlsx]`
 * (a file's bytes go to standard output: redirect them).
 */
export function planSettlements(verb: string, args: string[]): Plan {
  if (verb === 'close') {
    const fields = fieldSpecs('vatPercent:number');
    const parsed = parse(args, flagSet(fields), ['month']);
    return {
      parsed,
      method: 'POST',
      path: '/settlements',
      body: { month: parsed.positionals[0], ...buildBody(fields, parsed) },
      render: record,
      fields,
    };
  }
  if (verb === 'list') {
    const parsed = parse(args, flagSet(), []);
    return { parsed, method: 'GET', path: '/settlements', render: list(SETTLEMENT_COLUMNS) };
  }
  if (verb === 'get') {
    const parsed = parse(args, flagSet(), ['month']);
    return { parsed, method: 'GET', path: `/settlements/${id(parsed.positionals[0])}`, render: record };
  }
  if (verb === 'statement') {
    const parsed = parse(args, flagSet(['supplier-id', 'organization-id', 'format']), ['month']);
    const supplier = parsed.values.get('supplier-id');
    const organization = parsed.values.get('organization-id');
    if ((supplier === undefined) === (organization === undefined))
      throw new UsageError(
        'kaihub settlements statement: --supplier-id 또는 --organization-id 하나 / one of them',
      );
    const format = parsed.values.get('format');
    const party = supplier !== undefined ? `suppliers/${id(supplier)}` : `organizations/${id(organization)}`;
    return {
      parsed,
      method: 'GET',
      path: `/settlements/${id(parsed.positionals[0])}/${party}${format ? `?format=${encodeURIComponent(format)}` : ''}`,
      render: record,
      raw: format === 'csv' || format === 'xlsx',
    };
  }
  throw new UsageError(
    `kaihub settlements: close <YYYY-MM> | list | get <YYYY-MM> | statement <YYYY-MM> --supplier-id ID|--organization-id ID (got "${verb}")`,
  );
}
