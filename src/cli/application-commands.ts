/**
 * `kaihub pool`, `kaihub applications` and `kaihub reviews`: a programme's supplier pool, the
 * applications to it, their review and the operator's decision (docs/billing.md).
 */
import { buildBody, fieldSpecs, UsageError } from './flags.ts';
import { flagSet, list, type Plan, parse, pathOf, record, updateBody } from './plan.ts';
import { kst, type Row } from './resources.ts';

const POOL_FIELDS = fieldSpecs('supplierId summary productIds:list');
const APPLICATION_FIELDS = fieldSpecs('organizationId poolEntryId requestedKrw costCategories:list plan');
const APPLICATION_UPDATE_FIELDS = fieldSpecs('poolEntryId requestedKrw costCategories:list plan');
const SELECT_FIELDS = fieldSpecs('amountKrw startsOn endsOn costCategories:list reason');
const REJECT_FIELDS = fieldSpecs('reason');
const REVIEW_FIELDS = fieldSpecs('comment');

const POOL_COLUMNS = [
  { header: 'ID', value: (r: Row) => r.id },
  { header: '공급기업 Supplier', value: (r: Row) => r.supplierName },
  { header: 'API 상품 Products', value: (r: Row) => (r.productIds as string[]).join(', ') },
  {
    header: '서비스 Services',
    value: (r: Row) => (r.services as { name: string }[]).map((s) => s.name).join(', '),
  },
];

const APPLICATION_COLUMNS = [
  { header: 'ID', value: (r: Row) => r.id },
  { header: '수요기관 Org', value: (r: Row) => r.organizationId },
  { header: '공급기업 Supplier', value: (r: Row) => r.supplierId },
  { header: '상태 Status', value: (r: Row) => r.status },
  { header: '신청 Requested (KRW)', value: (r: Row) => r.requestedKrw, align: 'right' as const },
  {
    header: '평가 Score',
    value: (r: Row) => (r.review as { weightedScore: number | null } | undefined)?.weightedScore ?? '',
    align: 'right' as const,
  },
  {
    header: '협약 Agreed (KRW)',
    value: (r: Row) => (r.agreement as { amountKrw: string } | null)?.amountKrw ?? '',
    align: 'right' as const,
  },
  { header: '제출 Submitted (KST)', value: (r: Row) => kst(r.submittedAt) },
];

const REVIEW_COLUMNS = [
  {
    header: '평가자 Reviewer',
    value: (r: Row) => (r.mine ? `${r.reviewerId} (나 / me)` : (r.reviewerId ?? '—')),
  },
  { header: '점수 Scores', value: (r: Row) => JSON.stringify(r.scores) },
  { header: '가중 Weighted', value: (r: Row) => r.weightedScore, align: 'right' as const },
  { header: '의견 Comment', value: (r: Row) => r.comment ?? '' },
];

export function planPool(verb: string, args: string[]): Plan {
  if (verb === 'join') {
    // services are objects: --data '{"services": [{"name": "PoC", "costCategories": ["poc"]}]}'
    const parsed = parse(args, flagSet(['data'], POOL_FIELDS), ['programmeId']);
    return {
      parsed,
      method: 'POST',
      path: pathOf('/programmes', parsed.positionals[0]!, 'pool'),
      body: buildBody(POOL_FIELDS, parsed),
      render: record,
      fields: POOL_FIELDS,
    };
  }
  if (verb === 'update') {
    const fields = POOL_FIELDS.filter((f) => f.field !== 'supplierId');
    const parsed = parse(args, flagSet(['data'], fields), ['poolEntryId']);
    return {
      parsed,
      method: 'PATCH',
      path: pathOf('/pool-entries', parsed.positionals[0]!),
      body: updateBody(fields, parsed),
      render: record,
      fields,
    };
  }
  if (verb === 'list') {
    const parsed = parse(args, flagSet(), ['programmeId']);
    return {
      parsed,
      method: 'GET',
      path: pathOf('/programmes', parsed.positionals[0]!, 'pool'),
      render: list(POOL_COLUMNS),
    };
  }
  throw new UsageError(
    `kaihub pool: join <programmeId> | update <poolEntryId> | list <programmeId> (got "${verb}")`,
  );
}

export function planApplications(verb: string, args: string[]): Plan {
  const one = (extra: string) => {
    const parsed = parse(args, flagSet(), ['applicationId']);
    return { parsed, path: pathOf('/applications', parsed.positionals[0]!) + extra };
  };
  switch (verb) {
    case 'create': {
      const parsed = parse(args, flagSet(['data'], APPLICATION_FIELDS), ['programmeId']);
      return {
        parsed,
        method: 'POST',
        path: pathOf('/programmes', parsed.positionals[0]!, 'applications'),
        body: buildBody(APPLICATION_FIELDS, parsed),
        render: record,
        fields: APPLICATION_FIELDS,
      };
    }
    case 'list': {
      const parsed = parse(args, flagSet(), ['programmeId']);
      return {
        parsed,
        method: 'GET',
        path: pathOf('/programmes', parsed.positionals[0]!, 'applications'),
        render: list(APPLICATION_COLUMNS),
      };
    }
    case 'get':
      return { ...one(''), method: 'GET', render: record };
    case 'update': {
      const parsed = parse(args, flagSet(['data'], APPLICATION_UPDATE_FIELDS), ['applicationId']);
      return {
        parsed,
        method: 'PATCH',
        path: pathOf('/applications', parsed.positionals[0]!),
        body: updateBody(APPLICATION_UPDATE_FIELDS, parsed),
        render: record,
        fields: APPLICATION_UPDATE_FIELDS,
      };
    }
    case 'submit':
      return { ...one('/submit'), method: 'POST', render: record };
    case 'select':
    case 'reject': {
      const fields = verb === 'select' ? SELECT_FIELDS : REJECT_FIELDS;
      const parsed = parse(args, flagSet(['data'], fields), ['applicationId']);
      return {
        parsed,
        method: 'POST',
        path: `${pathOf('/applications', parsed.positionals[0]!)}/${verb}`,
        body: buildBody(fields, parsed),
        render: record,
        fields,
      };
    }
  }
  throw new UsageError(
    `kaihub applications: create <programmeId> | list <programmeId> | get | update | submit | select | reject <applicationId> (got "${verb}")`,
  );
}

export function planReviews(verb: string, args: string[]): Plan {
  if (verb === 'score') {
    // scores are an object: --data '{"scores": {"feasibility": 80, "impact": 70}}'
    const parsed = parse(args, flagSet(['data'], REVIEW_FIELDS), ['applicationId']);
    return {
      parsed,
      method: 'POST',
      path: `${pathOf('/applications', parsed.positionals[0]!)}/reviews`,
      body: buildBody(REVIEW_FIELDS, parsed),
      render: record,
      fields: REVIEW_FIELDS,
    };
  }
  if (verb === 'list') {
    const parsed = parse(args, flagSet(), ['applicationId']);
    return {
      parsed,
      method: 'GET',
      path: `${pathOf('/applications', parsed.positionals[0]!)}/reviews`,
      render: list(REVIEW_COLUMNS),
    };
  }
  throw new UsageError(`kaihub reviews: score <applicationId> | list <applicationId> (got "${verb}")`);
}
