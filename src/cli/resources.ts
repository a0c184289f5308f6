/**
 * What the CLI knows about each /admin/v1 resource: its path, the fields its flags map to, and how a
 * row reads in a table. The hub validates everything; these only decide spelling and layout.
 */
import { kstMinute } from '../kst.ts';
import { type FieldSpec, fieldSpecs } from './flags.ts';
import type { Column } from './table.ts';

export type Row = Record<string, unknown>;
export type Verb = 'list' | 'get' | 'create' | 'update' | 'delete';

export interface Resource {
  command: string;
  aliases: string[];
  path: string;
  verbs: Verb[];
  /** Body fields for create and update. */
  fields: FieldSpec[];
  /** Query filters `list` accepts. */
  filters: FieldSpec[];
  columns: Column<Row>[];
}

const col = (header: string, key: string, align?: 'right'): Column<Row> => ({
  header,
  value: (r) => r[key],
  ...(align && { align }),
});

/** Instants as an operator in Seoul reads them: `2026-11-23 08:06` (KST). */
export function kst(value: unknown): string {
  if (typeof value !== 'string') return '';
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) return value;
  return kstMinute(ms);
}

/** 14000000000 → `14B`: model sizes are read in billions. */
export function formatParameters(value: unknown): string {
  if (typeof value !== 'number') return '';
  for (const [unit, size] of [
    ['T', 1e12],
    ['B', 1e9],
    ['M', 1e6],
  ] as const) {
    if (value >= size) return `${Number((value / size).toFixed(1))}${unit}`;
  }
  return String(value);
}

export const RESOURCES: Resource[] = [
  {
    command: 'suppliers',
    aliases: ['supplier'],
    path: '/suppliers',
    verbs: ['list', 'get', 'create', 'update'],
    fields: fieldSpecs('name nameEn contactName contactEmail website status'),
    filters: [],
    columns: [
      col('ID', 'id'),
      col('이름 Name', 'name'),
      col('영문 English', 'nameEn'),
      col('담당 Contact', 'contactName'),
      col('이메일 Email', 'contactEmail'),
      col('상태 Status', 'status'),
    ],
  },
  {
    command: 'products',
    aliases: ['product'],
    path: '/products',
    verbs: ['list', 'get', 'create', 'update'],
    fields: fieldSpecs(
      `supplierId model displayName description parameters:number purposes:list modality contextWindow:number
       priceInputPer1M priceOutputPer1M pricesEffectiveFrom residency status`,
    ),
    filters: fieldSpecs('supplierId'),
    columns: [
      col('ID', 'id'),
      col('모델 Model', 'model'),
      col('이름 Name', 'displayName'),
      { header: '규모 Size', value: (r) => formatParameters(r.parameters), align: 'right' },
      col('용도 Purposes', 'purposes'),
      col('컨텍스트 Ctx', 'contextWindow', 'right'),
      col('입력 In ₩/1M', 'priceInputPer1M', 'right'),
      col('출력 Out ₩/1M', 'priceOutputPer1M', 'right'),
      col('거주 Residency', 'residency'),
      col('상태 Status', 'status'),
    ],
  },
  {
    command: 'deployments',
    aliases: ['deployment'],
    path: '/deployments',
    verbs: ['list', 'get', 'create', 'update', 'delete'],
    fields: fieldSpecs(
      'productId adapter baseUrl apiKey upstreamModel weight:number priority:number status residency csapCertified:boolean',
    ),
    filters: fieldSpecs('productId'),
    columns: [
      col('ID', 'id'),
      col('상품 Product', 'productId'),
      col('주소 Base URL', 'baseUrl'),
      col('업스트림 Upstream', 'upstreamModel'),
      { header: '키 Key', value: (r) => (r.hasApiKey ? '있음 yes' : '없음 no') },
      col('가중치 Weight', 'weight', 'right'),
      col('우선 Prio', 'priority', 'right'),
      { header: '소재 Residency', value: (r) => `${r.residency ?? '-'}${r.csapCertified ? ' CSAP' : ''}` },
      col('상태 Status', 'status'),
    ],
  },
  {
    command: 'policies',
    aliases: ['policy', 'data-policies'],
    path: '/data-policies',
    verbs: ['list', 'get', 'create', 'update', 'delete'],
    fields: fieldSpecs('scope scopeId piiMode piiTypes:list residency certifiedOnly:boolean'),
    filters: fieldSpecs('scope scopeId'),
    columns: [
      col('ID', 'id'),
      col('범위 Scope', 'scope'),
      col('대상 Target', 'scopeId'),
      col('개인정보 PII', 'piiMode'),
      { header: '유형 Types', value: (r) => (Array.isArray(r.piiTypes) ? r.piiTypes.join(',') : '전체 all') },
      { header: '소재 Residency', value: (r) => `${r.residency}${r.certifiedOnly ? ' CSAP' : ''}` },
    ],
  },
  {
    command: 'orgs',
    aliases: ['organizations', 'org'],
    path: '/organizations',
    verbs: ['list', 'get', 'create', 'update'],
    fields: fieldSpecs('name class businessNumber status spendMode'),
    filters: [],
    columns: [
      col('ID', 'id'),
      col('이름 Name', 'name'),
      col('유형 Class', 'class'),
      col('사업자번호 BizNo', 'businessNumber'),
      col('상태 Status', 'status'),
      { header: '생성 Created (KST)', value: (r) => kst(r.createdAt) },
    ],
  },
  {
    command: 'programmes',
    aliases: ['programme', 'programs', 'program'],
    path: '/programmes',
    verbs: ['list', 'get', 'create', 'update'],
    // copayPercent and reviewCriteria are objects: --data '{"copayPercent": {"sme": 20}}'
    fields: fieldSpecs(
      'name startsOn endsOn budgetKrw onExhausted eligibleProductIds:list eligibleSupplierIds:list perOrganizationCapKrw capacity:number evaluatorIds:list',
    ),
    filters: [],
    columns: [
      col('ID', 'id'),
      col('이름 Name', 'name'),
      { header: '기간 Period (KST)', value: (r) => `${r.startsOn} ~ ${r.endsOn}` },
      col('예산 Budget (KRW)', 'budgetKrw', 'right'),
      col('미발급 Unissued (KRW)', 'unissuedKrw', 'right'),
      { header: '자부담 Co-pay %', value: (r) => JSON.stringify(r.copayPercent) },
      col('소진 시 On exhausted', 'onExhausted'),
    ],
  },
  {
    command: 'users',
    aliases: ['user'],
    path: '/users',
    verbs: ['list', 'get', 'create', 'update'],
    fields: fieldSpecs('name email status'),
    filters: [],
    columns: [
      col('ID', 'id'),
      col('이름 Name', 'name'),
      col('이메일 Email', 'email'),
      col('상태 Status', 'status'),
      { header: '역할 Roles', value: (r) => rolesText(r.memberships) },
      { header: '생성 Created (KST)', value: (r) => kst(r.createdAt) },
    ],
  },
];

/** `org_admin@org_… supplier_admin@sup_… evaluator`: a user's memberships on one line. */
export function rolesText(memberships: unknown): string {
  if (!Array.isArray(memberships)) return '';
  return (memberships as Row[])
    .map((m) => {
      const tenant = m.supplierId ?? m.organizationId;
      return tenant ? `${m.role}@${tenant}` : String(m.role);
    })
    .join(' ');
}

export const KEY_FIELDS = fieldSpecs('name allowedModels:list');

export const KEY_COLUMNS: Column<Row>[] = [
  col('ID', 'id'),
  col('이름 Name', 'name'),
  col('접두사 Prefix', 'prefix'),
  { header: '허용 모델 Models', value: (r) => r.allowedModels ?? '(전체 all)' },
  { header: '생성 Created (KST)', value: (r) => kst(r.createdAt) },
  { header: '폐기 Revoked (KST)', value: (r) => kst(r.revokedAt) },
];

export const USAGE_FILTERS = fieldSpecs('organizationId productId keyId from to groupBy');
export const USAGE_EVENT_FILTERS = fieldSpecs('organizationId requestId limit');

/** `dep_a:http 503 → dep_b:ok`: the upstream calls of one request, in order. */
export function attemptsText(attempts: unknown): string {
  if (!Array.isArray(attempts)) return '';
  return (attempts as Row[])
    .map(
      (a) =>
        `${a.deploymentId}:${a.outcome}${a.httpStatus === null || a.httpStatus === undefined ? '' : ` ${a.httpStatus}`}`,
    )
    .join(' → ');
}

/** One row per request, newest first, with the attempts behind it. */
export const USAGE_EVENT_COLUMNS: Column<Row>[] = [
  col('시각 Time', 'createdAt'),
  col('요청 Request', 'requestId'),
  col('모델 Model', 'model'),
  col('상태 Status', 'status'),
  col('입력 Prompt', 'promptTokens', 'right'),
  col('출력 Completion', 'completionTokens', 'right'),
  col('비용 Cost ₩', 'costKrw', 'right'),
  col('지연 ms', 'latencyMs', 'right'),
  { header: '시도 Attempts', value: (r) => attemptsText(r.attempts) },
];

const MEASURES: Column<Row>[] = [
  col('요청 Requests', 'requests', 'right'),
  col('입력 Prompt', 'promptTokens', 'right'),
  col('출력 Completion', 'completionTokens', 'right'),
  col('비용 Cost ₩', 'costKrw', 'right'),
];

/** Per grouping: its columns, the first of which also labels the totals row. */
const GROUPS: Record<string, { first: string; columns: Column<Row>[] }> = {
  day: { first: 'day', columns: [col('날짜 Day (KST)', 'day')] },
  product: { first: 'model', columns: [col('모델 Model', 'model'), col('상품 Product', 'productId')] },
  key: { first: 'keyId', columns: [col('키 Key', 'keyId')] },
  organization: { first: 'organizationId', columns: [col('기관 Organization', 'organizationId')] },
};

const TOTAL = '합계 Total';

/** Usage as one table: a row per group, then the totals row, so each sum sits under its column. */
export function usageTable(
  groupBy: string | undefined,
  result: { rows: Row[]; totals: Row },
): { columns: Column<Row>[]; rows: Row[] } {
  const group = groupBy ? GROUPS[groupBy] : undefined;
  if (!group) return { columns: [{ header: '', value: () => TOTAL }, ...MEASURES], rows: [result.totals] };
  return {
    columns: [...group.columns, ...MEASURES],
    rows: [...result.rows, { ...result.totals, [group.first]: TOTAL }],
  };
}

/** `kaihub products prices <id>`: the schedule, oldest first; times in KST. */
export const PRICE_COLUMNS: Column<Row>[] = [
  { header: '적용 시작 From (KST)', value: (r) => kst(r.effectiveFrom) },
  col('입력 In ₩/1M', 'priceInputPer1M', 'right'),
  col('출력 Out ₩/1M', 'priceOutputPer1M', 'right'),
  col('설정 Set by', 'setBy'),
  { header: '설정 시각 Set at (KST)', value: (r) => kst(r.setAt) },
];
