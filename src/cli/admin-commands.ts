/**
 * `kaihub <resource> <verb> …`: the operator's commands against a running hub's /admin/v1. Each
 * command becomes one HTTP request (a Plan); the hub validates, the CLI only spells and prints.
 */

import { planApplications, planPool, planReviews } from './application-commands.ts';
import { COMPUTE_USAGE, planCompute } from './compute-commands.ts';
import { EVAL_ROUND_COMMANDS, EVAL_ROUNDS_USAGE, planEvalRounds } from './eval-round-commands.ts';
import { buildBody, buildQuery, type FieldSpec, type ParsedArgs, UsageError } from './flags.ts';
import {
  planCorrections,
  planEvents,
  planFunds,
  planProgrammeClose,
  planSettlements,
  planVouchers,
  planWebhooks,
} from './funding-commands.ts';
import { AdminClient, ApiError, ConnectionError, DEFAULT_URL, resolveConnection } from './http-client.ts';
import { planCatalog, planCredentials } from './operation-commands.ts';
import { planAudit, planMemberships, planTokens, planWhoami } from './people-commands.ts';
import { flagSet, list, type Plan, parse, record, updateBody } from './plan.ts';
import {
  KEY_COLUMNS,
  KEY_FIELDS,
  PRICE_COLUMNS,
  RESOURCES,
  type Resource,
  type Row,
  USAGE_EVENT_COLUMNS,
  USAGE_EVENT_FILTERS,
  USAGE_FILTERS,
  usageTable,
} from './resources.ts';
import { renderTable } from './table.ts';

function planResource(resource: Resource, verb: string, args: string[]): Plan {
  if (!(resource.verbs as string[]).includes(verb)) {
    throw new UsageError(`kaihub ${resource.command}: ${resource.verbs.join(' | ')} (got "${verb}")`);
  }
  const item = (parsed: ParsedArgs) => `${resource.path}/${encodeURIComponent(parsed.positionals[0] ?? '')}`;
  switch (verb as Resource['verbs'][number]) {
    case 'list': {
      const parsed = parse(args, flagSet(resource.filters), []);
      return {
        parsed,
        method: 'GET',
        path: resource.path + buildQuery(resource.filters, parsed),
        render: list(resource.columns),
        fields: resource.filters,
      };
    }
    case 'get': {
      const parsed = parse(args, flagSet(), ['id']);
      return { parsed, method: 'GET', path: item(parsed), render: record };
    }
    case 'create': {
      const parsed = parse(args, flagSet(['data'], resource.fields), []);
      return {
        parsed,
        method: 'POST',
        path: resource.path,
        body: buildBody(resource.fields, parsed),
        render: record,
        fields: resource.fields,
      };
    }
    case 'update': {
      const parsed = parse(args, flagSet(['data'], resource.fields), ['id']);
      const body = updateBody(resource.fields, parsed);
      return { parsed, method: 'PATCH', path: item(parsed), body, render: record, fields: resource.fields };
    }
    case 'delete': {
      const parsed = parse(args, flagSet(), ['id']);
      const id = parsed.positionals[0];
      return { parsed, method: 'DELETE', path: item(parsed), render: () => `삭제했습니다 / deleted ${id}\n` };
    }
  }
}

function planKeys(verb: string, args: string[]): Plan {
  if (verb === 'list') {
    const parsed = parse(args, flagSet(), ['orgId']);
    const path = `/organizations/${encodeURIComponent(parsed.positionals[0] ?? '')}/keys`;
    return { parsed, method: 'GET', path, render: list(KEY_COLUMNS) };
  }
  if (verb === 'create') {
    const parsed = parse(args, flagSet(['data'], KEY_FIELDS), ['orgId']);
    return {
      parsed,
      method: 'POST',
      path: `/organizations/${encodeURIComponent(parsed.positionals[0] ?? '')}/keys`,
      body: buildBody(KEY_FIELDS, parsed),
      render: record,
      fields: KEY_FIELDS,
      notice:
        '키는 지금 한 번만 표시됩니다. 안전하게 보관하세요. / The key is shown only this once: store it safely.\n',
    };
  }
  if (verb === 'revoke') {
    const parsed = parse(args, flagSet(), ['keyId']);
    return {
      parsed,
      method: 'DELETE',
      path: `/keys/${encodeURIComponent(parsed.positionals[0] ?? '')}`,
      render: record,
    };
  }
  throw new UsageError(`kaihub keys: list <orgId> | create <orgId> | revoke <keyId> (got "${verb}")`);
}

function planPrices(args: string[]): Plan {
  const parsed = parse(args, flagSet(), ['productId']);
  return {
    parsed,
    method: 'GET',
    path: `/products/${encodeURIComponent(parsed.positionals[0] ?? '')}/prices`,
    render: list(PRICE_COLUMNS),
  };
}

function planUsage(args: string[]): Plan {
  if (args[0] === 'events') {
    const parsed = parse(args.slice(1), flagSet(USAGE_EVENT_FILTERS), []);
    return {
      parsed,
      method: 'GET',
      path: `/usage/events${buildQuery(USAGE_EVENT_FILTERS, parsed)}`,
      fields: USAGE_EVENT_FILTERS,
      render: (result) => renderTable(USAGE_EVENT_COLUMNS, (result as { data: Row[] }).data),
    };
  }
  const parsed = parse(args, flagSet(USAGE_FILTERS), []);
  return {
    parsed,
    method: 'GET',
    path: `/usage${buildQuery(USAGE_FILTERS, parsed)}`,
    fields: USAGE_FILTERS,
    render: (result) => {
      const { columns, rows } = usageTable(
        parsed.values.get('group-by'),
        result as { rows: Row[]; totals: Row },
      );
      return renderTable(columns, rows);
    },
  };
}

/** `kaihub policies effective <orgId> [--model m]`: what applies to an organisation, and from where. */
function planEffectivePolicy(args: string[]): Plan {
  const parsed = parse(args, flagSet(['model']), ['orgId']);
  const model = parsed.values.get('model');
  return {
    parsed,
    method: 'GET',
    path: `/organizations/${encodeURIComponent(parsed.positionals[0] ?? '')}/data-policy${model ? `?model=${encodeURIComponent(model)}` : ''}`,
    render: (result) => {
      const r = result as {
        residency: string;
        certifiedOnly: boolean;
        pii: Record<string, string>;
        policies: { id: string; scope: string; scopeId: string }[];
      };
      const pii = Object.entries(r.pii)
        .filter(([, mode]) => mode !== 'off')
        .map(([type, mode]) => `${type}=${mode}`);
      return [
        `소재 residency: ${r.residency}${r.certifiedOnly ? ' (CSAP)' : ''}`,
        `개인정보 PII: ${pii.length > 0 ? pii.join(', ') : 'off'}`,
        `정책 policies: ${r.policies.map((p) => `${p.id} (${p.scope} ${p.scopeId})`).join(', ') || '없음 none'}`,
        '',
      ].join('\n');
    },
  };
}

function plan(command: string, args: string[]): Plan {
  if (command === 'usage') return planUsage(args);
  if (command === 'whoami') return planWhoami(args);
  if (command === 'audit') return planAudit(args);
  if (command === 'compute') return planCompute(args);
  if (command === 'events') return planEvents(args);
  const [verb = '', ...rest] = args;
  if (command === 'keys' || command === 'key') return planKeys(verb, rest);
  if ((command === 'products' || command === 'product') && verb === 'prices') return planPrices(rest);
  if (command === 'memberships' || command === 'membership') return planMemberships(verb, rest);
  if (command === 'tokens' || command === 'token') return planTokens(verb, rest);
  if (command === 'catalog') return planCatalog(verb, rest);
  if (command === 'credentials') return planCredentials(verb, rest);
  if (command === 'vouchers' || command === 'voucher') return planVouchers(verb, rest);
  if (command === 'funds') return planFunds(verb, rest);
  if (command === 'corrections' || command === 'correction') return planCorrections(verb, rest);
  if (command === 'webhooks' || command === 'webhook') return planWebhooks(verb, rest);
  if (
    ['programmes', 'programme', 'programs', 'program'].includes(command) &&
    (verb === 'close' || verb === 'final-report')
  )
    return planProgrammeClose(verb, rest);
  if (command === 'settlements' || command === 'settlement') return planSettlements(verb, rest);
  if (command === 'pool') return planPool(verb, rest);
  if (command === 'applications' || command === 'application') return planApplications(verb, rest);
  if (command === 'reviews' || command === 'review') return planReviews(verb, rest);
  if ((command === 'policies' || command === 'policy') && verb === 'effective')
    return planEffectivePolicy(rest);
  if (command === 'eval' && EVAL_ROUND_COMMANDS.has(verb)) return planEvalRounds(verb, rest);
  const resource = RESOURCES.find((r) => r.command === command || r.aliases.includes(command));
  if (!resource) throw new UsageError(`알 수 없는 명령 / unknown command "${command}"`);
  return planResource(resource, verb, rest);
}

/** The hub's message, then each field problem with the flag that sets it (when there is one). */
function describeApiError(error: ApiError, fields: readonly FieldSpec[]): string {
  const lines = [`kaihub: ${error.message} (HTTP ${error.status})`];
  for (const problem of error.fields) {
    const top = problem.field.split('.')[0];
    const spec = fields.find((f) => f.field === top);
    const flag = spec ? ` (--${spec.flag})` : '';
    lines.push(`  - ${problem.field}${flag}: ${problem.message}`);
  }
  return `${lines.join('\n')}\n`;
}

export async function runAdminCommand(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream = process.stderr,
): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    out.write(adminUsage());
    return 0;
  }
  let p: Plan | undefined;
  try {
    p = plan(command, args);
    const connection = resolveConnection(
      { url: p.parsed.values.get('url'), token: p.parsed.values.get('token') },
      env,
    );
    const client = new AdminClient(connection);
    if (p.raw) {
      out.write(await client.download(p.path));
      return 0;
    }
    let result = await client.request(p.method, p.path, p.body);
    if (p.follow) result = await p.follow(result, (path) => client.request('GET', path), err);
    if (p.parsed.json) {
      if (result !== undefined) out.write(`${JSON.stringify(result, null, 2)}\n`);
    } else {
      out.write(p.render(result));
    }
    if (p.notice) err.write(p.notice);
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      err.write(`kaihub: ${error.message}\n도움말 / help: kaihub help admin\n`);
    } else if (error instanceof ConnectionError) {
      err.write(`kaihub: ${error.message}\n`);
    } else if (error instanceof ApiError) {
      err.write(describeApiError(error, p?.fields ?? []));
    } else {
      throw error;
    }
    return 1;
  }
}

const fieldHelp = (specs: readonly FieldSpec[]) => specs.map((s) => `--${s.flag}`).join(' ');

export function adminUsage(): string {
  const resourceFields = RESOURCES.map((r) => `  ${r.command.padEnd(12)} ${fieldHelp(r.fields)}`).join('\n');
  return `kaihub 관리 명령 / admin commands — 실행 중인 허브의 /admin/v1 / against a running hub's /admin/v1

  kaihub suppliers   list | get <id> | create | update <id>
  kaihub products    list [--supplier-id ID] | get <id> | create | update <id> | prices <id>
                     가격 예약 / schedule a price: update <id> --price-input-per-1m N --prices-effective-from 2026-12-01
  kaihub deployments list [--product-id ID] | get <id> | create | update <id> | delete <id>
  kaihub orgs        list | get <id> | create | update <id>
  kaihub keys        list <orgId> | create <orgId> [--name N] [--allowed-models a,b] | revoke <keyId>
  kaihub usage       [--organization-id ID] [--product-id ID] [--key-id ID] [--from DATE] [--to DATE]
                     [--group-by day|product|key|organization]
                     (DATE: YYYY-MM-DD (KST) 또는 오프셋이 있는 ISO 8601 시각(Z, +09:00); --to는 포함하지 않음
                      / YYYY-MM-DD (KST) or an ISO 8601 time with its offset; --to is exclusive)
  kaihub usage events [--organization-id ID] [--request-id ID] [--limit N]
                     요청별 기록과 업스트림 시도 / one row per request, with its upstream attempts

  kaihub users       list | get <id> | create --name N --email E | update <id>
  kaihub memberships list <userId> | add <userId> --role ROLE [--supplier-id ID | --organization-id ID]
                     | remove <membershipId>
                     ROLE: operator, supplier_admin (--supplier-id), org_admin, org_member (--organization-id),
                     evaluator — 권한 표 / who may do what: docs/roles.md
  kaihub tokens      list <userId> | create <userId> [--name N] [--expires-in-days D] | revoke <tokenId>
                     개인 액세스 토큰(한 번만 표시) / personal access tokens (shown once)
  kaihub whoami      이 토큰의 사용자와 역할 / who this token is, and its roles
  kaihub audit       [--actor-id ID] [--entity-type T] [--entity-id ID] [--action A] [--request-id ID]
                     [--from DATE] [--to DATE] [--limit N]     변경 기록 / the audit log, newest first
  kaihub catalog     import <file> [--dry-run] [--overwrite] | export      카탈로그 파일 / catalogue files
  kaihub credentials reseal    모든 공급기업 키를 현재 KAIHUB_SECRET_KEY로 / every supplier key under the current key
  kaihub admin-token reset     (허브 없이 / offline) 새 운영자 토큰 / a new operator token

  kaihub programmes  list | get <id> | create --name N --starts-on D --ends-on D --budget-krw N
                     --on-exhausted block|self-pay --data '{"copayPercent": {"sme": 20}}'   지원사업 / programmes
                     | update <id> [--capacity N] [--evaluator-ids a,b] [--data '{"reviewCriteria": [...]}']
                     | close <id> [--tranche-percents 70,30] [--early --reason R]    지원사업 종료 / close
                     | final-report <id> [--format csv|xlsx] [> file]       최종 정산 보고 / final report
  kaihub vouchers    issue <programmeId> --organization-id ID --amount-krw N [--valid-from D] [--valid-until D]
                     | list <programmeId>                                          바우처 / vouchers
  kaihub funds       <orgId> | deposit <orgId> --amount-krw N [--memo M] | ledger <orgId> [--limit N]
                     지갑·바우처 잔액과 원장 / wallet, vouchers and ledger: docs/billing.md
  kaihub corrections create <orgId> --account wallet|voucher:<id> --amount-krw -1.5 --reason R
                     [--usage-request-id ID]     원장 정정(운영자) / an operator's ledger correction
  kaihub webhooks    create <orgId> <receiverUrl> | list <orgId> | delete <webhookId>
                     알림 웹훅(서명 비밀은 한 번만 표시) / alert webhooks (the secret shown once)
  kaihub events      <orgId> [--limit N]            기관 알림 기록 / the organisation's alerts, newest first
  kaihub settlements close <YYYY-MM> [--vat-percent 10] | list | get <YYYY-MM>
                     | statement <YYYY-MM> --supplier-id ID|--organization-id ID [--format csv|xlsx] > file
                     월 정산과 명세서 / monthly settlement and statements
  kaihub pool        join <programmeId> --supplier-id ID [--product-ids a,b] [--summary S]
                     [--data '{"services": [{"name": "PoC", "costCategories": ["poc"]}]}']
                     | update <poolEntryId> [--summary S] [--product-ids a,b] [--data ..] | list <programmeId>
                     공급기업 Pool / the programme's supplier pool
  kaihub applications create <programmeId> --organization-id ID --pool-entry-id ID --requested-krw N
                     --cost-categories api_usage,poc [--plan P] | list <programmeId> | get <id>
                     | update <id> [--plan P] | submit <id>
                     | select <id> --amount-krw N [--starts-on D] [--ends-on D] [--cost-categories ..] [--reason R]
                     | reject <id> --reason R                        신청·선정 / applications and selection
  kaihub reviews     score <applicationId> --data '{"scores": {"feasibility": 80}}' [--comment C]
                     | list <applicationId>                          평가 / reviews
  kaihub policies    list [--scope S] [--scope-id ID] | get <id> | delete <id>
                     | create --scope organization_class|organization|programme|product --scope-id ID
                       [--pii-mode off|detect|mask|pseudonymize|block] [--pii-types rrn,phone]
                       [--residency any|domestic] [--certified-only true]
                     | update <id> [..same flags] | effective <orgId> [--model M]
                     데이터 정책(개인정보·국내 처리) / data policies: docs/guardrails.md
${EVAL_ROUNDS_USAGE}  kaihub eval pull <benchmark> [--dir D] [--accept-licence] | pull --list
                     공식 벤치마크 데이터 내려받기 / official benchmark data (docs/evaluation-rounds.md)

GPU 컴퓨팅 / GPU compute (docs/compute.md):
${COMPUTE_USAGE}
필드 옵션 / field flags (create, update):
${resourceFields}
  목록은 쉼표로 / lists are comma-separated: --purposes chat,summarization
  null과 그 밖의 값은 --data로 / null and anything else: --data '{"website": null}'

공통 옵션 / common flags:
  --url URL        허브 주소 / hub URL (KAIHUB_URL, 기본 default ${DEFAULT_URL})
  --token TOKEN    운영자 토큰 또는 개인 액세스 토큰 / operator token or personal access token
                   (KAIHUB_TOKEN, 없으면 / else KAIHUB_ADMIN_TOKEN)
  --data JSON      요청 본문; 필드 옵션이 덮어씀 / request body; field flags override it
  --json           표 대신 원본 JSON / raw JSON instead of a table

예 / example:
  kaihub products create --supplier-id sup_… --model exaone-4.0 --display-name "EXAONE 4.0" \\
    --parameters 32000000000 --purposes chat,reasoning --modality text --context-window 65536 \\
    --price-input-per-1m 1250.5 --price-output-per-1m 5000 --residency domestic
`;
}
