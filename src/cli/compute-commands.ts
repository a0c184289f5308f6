/**
 * `kaihub compute <pools|calls|applications|allocations|extensions|statement|reconcile> …`: GPU compute
 * (docs/compute.md) against a running hub's /admin/v1. One table of commands: each is a method, a path
 * built from its positional arguments, the fields it takes as flags, and how its answer prints.
 */
import { buildBody, buildQuery, type FieldSpec, fieldSpecs, UsageError } from './flags.ts';
import { flagSet, list, type Plan, parse, pathOf, record } from './plan.ts';
import { kst, type Row } from './resources.ts';
import type { Column } from './table.ts';

interface Command {
  method: Plan['method'];
  /** The path from the positional arguments, in order. */
  path(...ids: string[]): string;
  positionals: string[];
  /** Body fields (POST, PATCH) or query filters (GET). */
  fields?: FieldSpec[];
  /** Flags that stand alone and set a field to true (`--dry-run`). */
  switches?: string[];
  columns?: Column<Row>[];
  /** A file's bytes, with --format csv|xlsx. */
  download?: boolean;
}

const POOL_COLUMNS: Column<Row>[] = [
  { header: 'ID', value: (r) => r.id },
  { header: '이름 Name', value: (r) => r.name },
  { header: 'GPU', value: (r) => r.gpuModel },
  { header: 'TF/GPU', value: (r) => `${r.tfPerGpu} ${r.tfPrecision}`, align: 'right' },
  { header: 'GPUs', value: (r) => r.gpuCount, align: 'right' },
  { header: '지역 Region', value: (r) => r.region },
  { header: 'KRW/GPU-h', value: (r) => r.pricePerGpuHourKrw, align: 'right' },
  { header: '프로비저너 Provisioner', value: (r) => r.provisioner },
];

const CALL_COLUMNS: Column<Row>[] = [
  { header: 'ID', value: (r) => r.id },
  { header: '공모 Call', value: (r) => r.name },
  { header: '기간 Period', value: (r) => `${r.startsOn}..${r.endsOn}` },
  { header: '정원 GPUs', value: (r) => r.capacityGpus, align: 'right' },
  { header: '풀 Pools', value: (r) => (r.poolIds as string[]).join(', ') },
];

const APPLICATION_COLUMNS: Column<Row>[] = [
  { header: 'ID', value: (r) => r.id },
  { header: '수요기관 Org', value: (r) => r.organizationId },
  { header: '트랙 Track', value: (r) => r.trackId },
  { header: 'GPUs', value: (r) => r.gpus, align: 'right' },
  { header: '기간 Period', value: (r) => `${r.startsOn}..${r.endsOn}` },
  { header: '상태 Status', value: (r) => r.status },
  { header: '순위 Rank', value: (r) => r.rank ?? '', align: 'right' },
  { header: '점수 Score', value: (r) => r.score ?? '', align: 'right' },
];

const DECISION_COLUMNS: Column<Row>[] = [
  { header: '순위 Rank', value: (r) => r.rank, align: 'right' },
  { header: '신청 Application', value: (r) => r.applicationId },
  { header: '점수 Score', value: (r) => r.score, align: 'right' },
  { header: '결정 Decision', value: (r) => r.decision },
  { header: '사유 Reason', value: (r) => r.reason },
];

const ALLOCATION_COLUMNS: Column<Row>[] = [
  { header: 'ID', value: (r) => r.id },
  { header: '수요기관 Org', value: (r) => r.organizationId },
  { header: '풀 Pool', value: (r) => r.poolId },
  { header: 'GPUs', value: (r) => r.gpus, align: 'right' },
  { header: '기간 Period', value: (r) => `${r.startsOn}..${r.endsOn}` },
  { header: '상태 Status', value: (r) => r.status },
  { header: '계정 Account', value: (r) => r.schedulerAccount },
  { header: '사용 GPU-h', value: (r) => r.usedGpuHours, align: 'right' },
  {
    header: '오류 Last error',
    value: (r) =>
      ((r.provisioning as { lastError: string | null } | undefined)?.lastError ?? '').slice(0, 60),
  },
];

const EVENT_COLUMNS: Column<Row>[] = [
  { header: '시각 At (KST)', value: (r) => kst(r.createdAt) },
  { header: '종류 Kind', value: (r) => r.kind },
  { header: '배정 Allocation', value: (r) => r.allocationId ?? '' },
  { header: '내용 Detail', value: (r) => JSON.stringify(r.detail).slice(0, 100) },
];

const DRIFT_COLUMNS: Column<Row>[] = [
  { header: '계정 Account', value: (r) => r.account },
  { header: '수요기관 Org', value: (r) => r.organizationId },
  { header: '다른 점 Differs', value: (r) => (r.differences as string[]).join(', ') },
  { header: '허브 Hub', value: (r) => JSON.stringify(r.desired) },
  { header: '스케줄러 Scheduler', value: (r) => JSON.stringify(r.observed) },
];

const POOL_FIELDS = fieldSpecs(
  'supplierId name gpuModel tfPerGpu:number tfPrecision gpuCount:number gpusPerServer:number region pricePerGpuHourKrw provisioner',
);
const CALL_FIELDS = fieldSpecs(
  'name startsOn endsOn applicationsCloseOn poolIds:list eligibleClasses:list maxGrantDays:number capacityGpus:number utilisationThresholdPercent:number copayPercent:number fundingProgrammeId tieBreak:list',
);
const CALL_UPDATE_FIELDS = fieldSpecs(
  'applicationsCloseOn capacityGpus:number utilisationThresholdPercent:number tieBreak:list evaluatorIds:list',
);
const APPLICATION_FIELDS = fieldSpecs(
  'organizationId trackId poolId unit quantity:number startsOn endsOn purpose plan applicantRegion schedulerUsers:list',
);
const REASON = fieldSpecs('reason');

const pools = '/compute/pools';
const calls = '/compute/calls';
const applications = '/compute/applications';
const allocations = '/compute/allocations';

const COMMANDS: Record<string, Record<string, Command>> = {
  pools: {
    list: {
      method: 'GET',
      path: () => pools,
      positionals: [],
      fields: fieldSpecs('supplierId'),
      columns: POOL_COLUMNS,
    },
    get: { method: 'GET', path: (id) => pathOf(pools, id!), positionals: ['poolId'] },
    create: { method: 'POST', path: () => pools, positionals: [], fields: POOL_FIELDS },
    update: {
      method: 'PATCH',
      path: (id) => pathOf(pools, id!),
      positionals: ['poolId'],
      fields: [...POOL_FIELDS.filter((f) => f.field !== 'supplierId'), ...fieldSpecs('status')],
    },
    availability: {
      method: 'GET',
      path: (id) => `${pathOf(pools, id!)}/availability`,
      positionals: ['poolId'],
      fields: fieldSpecs('from days:number'),
    },
    drift: {
      method: 'GET',
      path: (id) => `${pathOf(pools, id!)}/drift`,
      positionals: ['poolId'],
      columns: DRIFT_COLUMNS,
    },
    repair: { method: 'POST', path: (id) => `${pathOf(pools, id!)}/repair`, positionals: ['poolId'] },
    usage: {
      method: 'POST',
      path: (id) => `${pathOf(pools, id!)}/usage`,
      positionals: ['poolId'],
      fields: fieldSpecs('day'),
    },
    events: {
      method: 'GET',
      path: (id) => `${pathOf(pools, id!)}/events`,
      positionals: ['poolId'],
      columns: EVENT_COLUMNS,
    },
  },
  calls: {
    list: { method: 'GET', path: () => calls, positionals: [], columns: CALL_COLUMNS },
    get: { method: 'GET', path: (id) => pathOf(calls, id!), positionals: ['callId'] },
    // tracks, reviewCriteria, bonuses and reclaimPolicy are objects: --data '{...}'
    create: { method: 'POST', path: () => calls, positionals: [], fields: CALL_FIELDS },
    update: {
      method: 'PATCH',
      path: (id) => pathOf(calls, id!),
      positionals: ['callId'],
      fields: CALL_UPDATE_FIELDS,
    },
    ranking: { method: 'GET', path: (id) => `${pathOf(calls, id!)}/ranking`, positionals: ['callId'] },
    select: {
      method: 'POST',
      path: (id) => `${pathOf(calls, id!)}/selection`,
      positionals: ['callId'],
      fields: fieldSpecs('minReviews:number'),
      switches: ['dryRun'],
    },
    check: {
      method: 'POST',
      path: (id) => `${pathOf(calls, id!)}/checks`,
      positionals: ['callId'],
      fields: fieldSpecs('month'),
    },
  },
  applications: {
    create: {
      method: 'POST',
      path: (id) => `${pathOf(calls, id!)}/applications`,
      positionals: ['callId'],
      fields: APPLICATION_FIELDS,
    },
    list: {
      method: 'GET',
      path: () => applications,
      positionals: [],
      fields: fieldSpecs('callId organizationId status'),
      columns: APPLICATION_COLUMNS,
    },
    get: { method: 'GET', path: (id) => pathOf(applications, id!), positionals: ['applicationId'] },
    update: {
      method: 'PATCH',
      path: (id) => pathOf(applications, id!),
      positionals: ['applicationId'],
      fields: APPLICATION_FIELDS.filter((f) => f.field !== 'organizationId'),
    },
    submit: {
      method: 'POST',
      path: (id) => `${pathOf(applications, id!)}/submit`,
      positionals: ['applicationId'],
    },
    withdraw: {
      method: 'POST',
      path: (id) => `${pathOf(applications, id!)}/withdraw`,
      positionals: ['applicationId'],
    },
    // scores are an object: --data '{"scores": {"impact": 80, "readiness": 70}}'
    score: {
      method: 'POST',
      path: (id) => `${pathOf(applications, id!)}/reviews`,
      positionals: ['applicationId'],
      fields: fieldSpecs('comment'),
    },
    reviews: {
      method: 'GET',
      path: (id) => `${pathOf(applications, id!)}/reviews`,
      positionals: ['applicationId'],
    },
    select: {
      method: 'POST',
      path: (id) => `${pathOf(applications, id!)}/select`,
      positionals: ['applicationId'],
      fields: fieldSpecs('gpus:number startsOn endsOn gpuHourBudget:number reason'),
    },
    reject: {
      method: 'POST',
      path: (id) => `${pathOf(applications, id!)}/reject`,
      positionals: ['applicationId'],
      fields: REASON,
    },
  },
  allocations: {
    list: {
      method: 'GET',
      path: () => allocations,
      positionals: [],
      fields: fieldSpecs('callId poolId organizationId status'),
      columns: ALLOCATION_COLUMNS,
    },
    get: { method: 'GET', path: (id) => pathOf(allocations, id!), positionals: ['allocationId'] },
    update: {
      method: 'PATCH',
      path: (id) => pathOf(allocations, id!),
      positionals: ['allocationId'],
      fields: fieldSpecs('schedulerUsers:list gpuHourBudget:number'),
    },
    usage: {
      method: 'GET',
      path: (id) => `${pathOf(allocations, id!)}/usage`,
      positionals: ['allocationId'],
    },
    report: {
      method: 'POST',
      path: (id) => `${pathOf(allocations, id!)}/usage`,
      positionals: ['allocationId'],
      fields: fieldSpecs('day gpuHours:number'),
    },
    events: {
      method: 'GET',
      path: (id) => `${pathOf(allocations, id!)}/events`,
      positionals: ['allocationId'],
      columns: EVENT_COLUMNS,
    },
    provision: {
      method: 'POST',
      path: (id) => `${pathOf(allocations, id!)}/provision`,
      positionals: ['allocationId'],
    },
    reclaim: {
      method: 'POST',
      path: (id) => `${pathOf(allocations, id!)}/reclaim`,
      positionals: ['allocationId'],
      fields: REASON,
    },
    handover: {
      method: 'POST',
      path: (id) => `${pathOf(allocations, id!)}/handover`,
      positionals: ['allocationId'],
    },
    return: {
      method: 'POST',
      path: (id) => `${pathOf(allocations, id!)}/return`,
      positionals: ['allocationId'],
    },
    accept: {
      method: 'POST',
      path: (id) => `${pathOf(allocations, id!)}/accept`,
      positionals: ['allocationId'],
    },
    decline: {
      method: 'POST',
      path: (id) => `${pathOf(allocations, id!)}/decline`,
      positionals: ['allocationId'],
    },
    extend: {
      method: 'POST',
      path: (id) => `${pathOf(allocations, id!)}/extensions`,
      positionals: ['allocationId'],
      fields: fieldSpecs('endsOn reason'),
    },
  },
  extensions: {
    approve: {
      method: 'POST',
      path: (id) => `${pathOf('/compute/extensions', id!)}/approve`,
      positionals: ['extensionId'],
      fields: REASON,
    },
    reject: {
      method: 'POST',
      path: (id) => `${pathOf('/compute/extensions', id!)}/reject`,
      positionals: ['extensionId'],
      fields: REASON,
    },
  },
  statement: {
    '': {
      method: 'GET',
      path: (month, supplierId) =>
        `/compute/settlements/${encodeURIComponent(month!)}/suppliers/${encodeURIComponent(supplierId!)}`,
      positionals: ['month', 'supplierId'],
      fields: fieldSpecs('format'),
      download: true,
    },
  },
  reconcile: {
    '': {
      method: 'POST',
      path: () => '/compute/reconcile',
      positionals: [],
      switches: ['usage', 'checks', 'drift'],
    },
  },
};

const ALIASES: Record<string, string> = {
  pool: 'pools',
  call: 'calls',
  application: 'applications',
  allocation: 'allocations',
  extension: 'extensions',
};

export function planCompute(args: string[]): Plan {
  const [first = '', ...rest] = args;
  const group = ALIASES[first] ?? first;
  const verbs = COMMANDS[group];
  if (!verbs) throw new UsageError(`kaihub compute: ${Object.keys(COMMANDS).join(' | ')} (got "${first}")`);
  const single = verbs[''] !== undefined;
  const [verb = '', ...tail] = single ? ['', ...rest] : rest;
  const command = verbs[verb];
  if (!command)
    throw new UsageError(`kaihub compute ${group}: ${Object.keys(verbs).join(' | ')} (got "${verb}")`);
  const fields = command.fields ?? [];
  const switches = (command.switches ?? []).map((s) => s.replace(/([a-z])([A-Z])/g, '$1-$2').toLowerCase());
  const parsed = parse(
    tail,
    flagSet(command.method === 'GET' ? [] : ['data'], fields, switches),
    command.positionals,
    new Set(switches),
  );
  const path = command.path(...parsed.positionals);
  if (command.method === 'GET') {
    const query = buildQuery(fields, parsed);
    const format = parsed.values.get('format');
    return {
      parsed,
      method: 'GET',
      path: path + query,
      render: command.columns ? list(command.columns) : record,
      fields,
      raw: command.download === true && (format === 'csv' || format === 'xlsx'),
    };
  }
  const body = buildBody(fields, parsed);
  for (const s of command.switches ?? [])
    if (parsed.values.get(s.replace(/([a-z])([A-Z])/g, '$1-$2').toLowerCase()) === 'true') body[s] = true;
  return {
    parsed,
    method: command.method,
    path,
    body,
    render: group === 'calls' && verb === 'select' ? decisions : record,
    fields,
  };
}

function decisions(result: unknown): string {
  const r = result as { decisions: Row[]; notReviewed: string[]; dryRun: boolean };
  const table = list(DECISION_COLUMNS)({ data: r.decisions });
  const notes = [
    ...(r.dryRun ? ['(미리보기 / dry run: 아무것도 바뀌지 않았습니다 / nothing changed)'] : []),
    ...(r.notReviewed.length > 0 ? [`평가 전 / not reviewed: ${r.notReviewed.join(', ')}`] : []),
  ];
  return `${table}${notes.map((n) => `${n}\n`).join('')}`;
}

export const COMPUTE_USAGE = `  kaihub compute pools       list [--supplier-id ID] | get <id> | create --supplier-id ID --name N --gpu-model H100
                             --tf-per-gpu 989 --gpu-count 16 --region capital|non_capital --price-per-gpu-hour-krw 3000
                             [--provisioner manual|slurm|kubernetes --data '{"provisionerConfig": {...}}']
                             | update <id> | availability <id> [--from D] [--days N] | drift <id> | repair <id>
                             | usage <id> [--day D] | events <id>              GPU 풀 / GPU pools
  kaihub compute calls       list | get <id> | create --data '{...}' | update <id> [--capacity-gpus N] [--evaluator-ids a,b]
                             | ranking <id> | select <id> [--dry-run] [--min-reviews N] | check <id> [--month YYYY-MM]
                                                                            공모·선정·월 점검 / calls, selection, checks
  kaihub compute applications create <callId> --organization-id ID --track-id T --pool-id ID --unit gpu|server|tf
                             --quantity N --starts-on D --ends-on D --purpose training --applicant-region R [--plan P]
                             | list [--call-id ID] | get | update | submit | withdraw <id>
                             | score <id> --data '{"scores": {...}}' | reviews <id>
                             | select <id> [--gpus N] [--gpu-hour-budget N] [--reason R] | reject <id> --reason R
  kaihub compute allocations list [--pool-id ID] [--status S] | get | usage | events <id> | update <id> [--scheduler-users a,b]
                             | report <id> --day D --gpu-hours H | provision | handover | return | accept | decline <id>
                             | reclaim <id> --reason R | extend <id> --ends-on D --reason R      배정 / allocations
  kaihub compute extensions  approve <id> --reason R | reject <id> --reason R                   연장 / extensions
  kaihub compute statement   <YYYY-MM> <supplierId> [--format csv|xlsx] > file           컴퓨팅 정산 / statements
  kaihub compute reconcile   [--usage] [--checks] [--drift]      스케줄러와 맞추기 지금 / run the loop now
`;
