/**
 * `kaihub vouchers issue | list`, `kaihub funds <orgId> | deposit | ledger` and `kaihub corrections
 * create`: programmes' vouchers and organisations' money (docs/billing.md). `kaihub programmes` is a plain resource (resources.ts).
 */
import { buildBody, fieldSpecs, UsageError } from './flags.ts';
import { flagSet, list, type Plan, parse, record } from './plan.ts';
import { kst, type Row } from './resources.ts';
import { renderTable } from './table.ts';

const VOUCHER_FIELDS = fieldSpecs('organizationId amountKrw validFrom validUntil');
const DEPOSIT_FIELDS = fieldSpecs('amountKrw memo');
const CORRECTION_FIELDS = fieldSpecs('account amountKrw reason usageRequestId');

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

const ENTRY_COLUMNS = [
  { header: '계정 Account', value: (r: Row) => r.accountId },
  { header: '금액 Amount (KRW)', value: (r: Row) => r.amountKrw, align: 'right' as const },
];

function renderCorrection(body: unknown): string {
  const c = body as Row;
  const head = [
    `정정 Correction ${c.transactionId}  ${kst(c.createdAt)}`,
    `계정 Account: ${c.accountId}  잔액 Balance: ${c.balanceKrw} KRW`,
    `사유 Reason: ${c.reason}${c.usageRequestId ? `  (요청 Request ${c.usageRequestId})` : ''}`,
  ].join('\n');
  return `${head}\n${renderTable(ENTRY_COLUMNS, c.entries as Row[])}`;
}

/** `kaihub corrections create <orgId> --account wallet|voucher:<id> --amount-krw -1.5 --reason R`. */
export function planCorrections(verb: string, args: string[]): Plan {
  if (verb === 'create') {
    const parsed = parse(args, flagSet(['data'], CORRECTION_FIELDS), ['orgId']);
    return {
      parsed,
      method: 'POST',
      path: `/organizations/${id(parsed.positionals[0])}/corrections`,
      body: buildBody(CORRECTION_FIELDS, parsed),
      render: renderCorrection,
      fields: CORRECTION_FIELDS,
    };
  }
  throw new UsageError(
    `kaihub corrections: create <orgId> --account wallet|voucher:<id> --amount-krw N --reason R (got "${verb}")`,
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

const CLOSE_FIELDS = fieldSpecs('tranchePercents:list early:boolean reason');

const FINAL_REPORT_COLUMNS = [
  { header: '바우처 Voucher', value: (r: Row) => r.voucherId },
  { header: '수요기관 Org', value: (r: Row) => r.organizationId },
  { header: '공급기업 Supplier', value: (r: Row) => r.supplierId ?? '' },
  { header: '지원 Granted (KRW)', value: (r: Row) => r.grantedKrw, align: 'right' as const },
  { header: '사용 Used (KRW)', value: (r: Row) => r.usedKrw, align: 'right' as const },
  { header: '자부담 Co-paid (KRW)', value: (r: Row) => r.coPaidKrw, align: 'right' as const },
  { header: '반환 Returned (KRW)', value: (r: Row) => r.returnedKrw, align: 'right' as const },
  {
    header: '분할 지급 Tranches (KRW)',
    value: (r: Row) =>
      (r.tranches as { percent: number; amountKrw: string }[])
        .map((t) => `${t.percent}%: ${t.amountKrw}`)
        .join(', '),
  },
];

function renderFinalReport(result: unknown): string {
  const r = result as {
    programmeId: string;
    closedAt: string;
    early: boolean;
    reason: string | null;
    tranchePercents: number[];
    vouchers: Row[];
    totals: { grantedKrw: string; voucherPaidKrw: string; coPaidKrw: string; returnedKrw: string };
  };
  const head = [
    `지원사업 programme: ${r.programmeId}, 종료 closed ${kst(r.closedAt)}${r.early ? ` (조기 early: ${r.reason ?? ''})` : ''}`,
    `분할 지급 tranches: ${r.tranchePercents.join(' / ')} %`,
    `지원 granted ${r.totals.grantedKrw} KRW · 바우처 부담 voucher paid ${r.totals.voucherPaidKrw} KRW · 자부담 co-paid ${r.totals.coPaidKrw} KRW · 반환 returned ${r.totals.returnedKrw} KRW`,
  ].join('\n');
  return `${head}\n${r.vouchers.length > 0 ? renderTable(FINAL_REPORT_COLUMNS, r.vouchers) : '바우처 없음 / no vouchers\n'}`;
}

/**
 * `kaihub programmes close <id> [--tranche-percents 70,30] [--early --reason R]` and
 * `kaihub programmes final-report <id> [--format csv|xlsx]` (a file's bytes go to standard output).
 */
export function planProgrammeClose(verb: string, args: string[]): Plan {
  if (verb === 'close') {
    const parsed = parse(args, flagSet(['data'], CLOSE_FIELDS), ['programmeId'], new Set(['early']));
    const body = buildBody(CLOSE_FIELDS, parsed);
    // percents are numbers to the hub; text that is not one goes as is, for the hub to name the field
    if (Array.isArray(body.tranchePercents))
      body.tranchePercents = (body.tranchePercents as unknown[]).map((p) =>
        typeof p === 'string' && /^\d+$/.test(p) ? Number(p) : p,
      );
    return {
      parsed,
      method: 'POST',
      path: `/programmes/${id(parsed.positionals[0])}/close`,
      body,
      render: renderFinalReport,
      fields: CLOSE_FIELDS,
    };
  }
  if (verb === 'final-report') {
    const parsed = parse(args, flagSet(['format']), ['programmeId']);
    const format = parsed.values.get('format');
    return {
      parsed,
      method: 'GET',
      path: `/programmes/${id(parsed.positionals[0])}/final-report${format ? `?format=${encodeURIComponent(format)}` : ''}`,
      render: renderFinalReport,
      raw: format === 'csv' || format === 'xlsx',
    };
  }
  throw new UsageError(
    `kaihub programmes: close <id> [--tranche-percents 70,30] [--early --reason R] | final-report <id> [--format csv|xlsx] (got "${verb}")`,
  );
}

const WEBHOOK_COLUMNS = [
  { header: 'ID', value: (r: Row) => r.id },
  { header: '주소 URL', value: (r: Row) => r.url },
  { header: '생성 Created (KST)', value: (r: Row) => kst(r.createdAt) },
  { header: '중지 Disabled (KST)', value: (r: Row) => (r.disabledAt ? kst(r.disabledAt) : '') },
];

/**
 * `kaihub webhooks create <orgId> <url> | list <orgId> | delete <webhookId>` (docs/billing.md#alerts).
 * The receiver's address is an argument: `--url` is the hub's, on every command.
 */
export function planWebhooks(verb: string, args: string[]): Plan {
  if (verb === 'create') {
    const parsed = parse(args, flagSet(), ['orgId', 'url']);
    return {
      parsed,
      method: 'POST',
      path: `/organizations/${id(parsed.positionals[0])}/webhooks`,
      body: { url: parsed.positionals[1] },
      render: record,
      notice:
        '서명 비밀(secret)은 지금 한 번만 표시됩니다. 안전하게 보관하세요. / The signing secret is shown only this once: store it safely.\n',
    };
  }
  if (verb === 'list') {
    const parsed = parse(args, flagSet(), ['orgId']);
    return {
      parsed,
      method: 'GET',
      path: `/organizations/${id(parsed.positionals[0])}/webhooks`,
      render: list(WEBHOOK_COLUMNS),
    };
  }
  if (verb === 'delete' || verb === 'disable') {
    const parsed = parse(args, flagSet(), ['webhookId']);
    return {
      parsed,
      method: 'DELETE',
      path: `/webhooks/${id(parsed.positionals[0])}`,
      render: record,
    };
  }
  throw new UsageError(
    `kaihub webhooks: create <orgId> <url> | list <orgId> | delete <webhookId> (got "${verb}")`,
  );
}

const EVENT_COLUMNS = [
  { header: '시각 Time (KST)', value: (r: Row) => kst(r.createdAt) },
  { header: '종류 Kind', value: (r: Row) => r.kind },
  { header: '내용 Data', value: (r: Row) => JSON.stringify(r.data) },
  {
    header: '전송 Deliveries',
    value: (r: Row) =>
      (r.deliveries as { webhookId: string; status: string; attempts: number }[])
        .map((d) => `${d.webhookId} ${d.status} ×${d.attempts}`)
        .join(', '),
  },
];

/** `kaihub events <orgId> [--limit N]`: the organisation's alerts, newest first, with their deliveries. */
export function planEvents(args: string[]): Plan {
  const limit = fieldSpecs('limit:number');
  const parsed = parse(args, flagSet(limit), ['orgId']);
  const n = parsed.values.get('limit');
  return {
    parsed,
    method: 'GET',
    path: `/organizations/${id(parsed.positionals[0])}/events${n ? `?limit=${encodeURIComponent(n)}` : ''}`,
    render: list(EVENT_COLUMNS),
  };
}
