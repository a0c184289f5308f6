/**
 * `kaihub memberships | tokens | whoami | audit`: people and what they did, through /admin/v1.
 * Users themselves are a plain resource (resources.ts).
 */
import { buildBody, buildQuery, fieldSpecs, UsageError } from './flags.ts';
import { flagSet, list, type Plan, parse, record } from './plan.ts';
import { kst, type Row, rolesText } from './resources.ts';
import type { Column } from './table.ts';

const col = (header: string, key: string): Column<Row> => ({ header, value: (r) => r[key] });
const id = (text: string | undefined) => encodeURIComponent(text ?? '');

const MEMBERSHIP_FIELDS = fieldSpecs('role supplierId organizationId');
const MEMBERSHIP_COLUMNS: Column<Row>[] = [
  col('ID', 'id'),
  col('역할 Role', 'role'),
  col('공급기업 Supplier', 'supplierId'),
  col('기관 Organization', 'organizationId'),
  { header: '생성 Created (KST)', value: (r) => kst(r.createdAt) },
];

export function planMemberships(verb: string, args: string[]): Plan {
  if (verb === 'list') {
    const parsed = parse(args, flagSet(), ['userId']);
    return {
      parsed,
      method: 'GET',
      path: `/users/${id(parsed.positionals[0])}/memberships`,
      render: list(MEMBERSHIP_COLUMNS),
    };
  }
  if (verb === 'add') {
    const parsed = parse(args, flagSet(['data'], MEMBERSHIP_FIELDS), ['userId']);
    return {
      parsed,
      method: 'POST',
      path: `/users/${id(parsed.positionals[0])}/memberships`,
      body: buildBody(MEMBERSHIP_FIELDS, parsed),
      render: record,
      fields: MEMBERSHIP_FIELDS,
    };
  }
  if (verb === 'remove') {
    const parsed = parse(args, flagSet(), ['membershipId']);
    const membership = parsed.positionals[0];
    return {
      parsed,
      method: 'DELETE',
      path: `/memberships/${id(membership)}`,
      render: () => `삭제했습니다 / removed ${membership}\n`,
    };
  }
  throw new UsageError(
    `kaihub memberships: list <userId> | add <userId> --role R | remove <membershipId> (got "${verb}")`,
  );
}

const TOKEN_FIELDS = fieldSpecs('name expiresInDays:number');
const TOKEN_COLUMNS: Column<Row>[] = [
  col('ID', 'id'),
  col('이름 Name', 'name'),
  col('접두사 Prefix', 'prefix'),
  { header: '만료 Expires (KST)', value: (r) => kst(r.expiresAt) },
  { header: '최근 사용 Last used (KST)', value: (r) => kst(r.lastUsedAt) },
  { header: '폐기 Revoked (KST)', value: (r) => kst(r.revokedAt) },
];

export function planTokens(verb: string, args: string[]): Plan {
  if (verb === 'list') {
    const parsed = parse(args, flagSet(), ['userId']);
    return {
      parsed,
      method: 'GET',
      path: `/users/${id(parsed.positionals[0])}/tokens`,
      render: list(TOKEN_COLUMNS),
    };
  }
  if (verb === 'create') {
    const parsed = parse(args, flagSet(['data'], TOKEN_FIELDS), ['userId']);
    return {
      parsed,
      method: 'POST',
      path: `/users/${id(parsed.positionals[0])}/tokens`,
      body: buildBody(TOKEN_FIELDS, parsed),
      render: record,
      fields: TOKEN_FIELDS,
      notice:
        '토큰은 지금 한 번만 표시됩니다. KAIHUB_TOKEN으로 쓰세요. / The token is shown only this once: use it as KAIHUB_TOKEN.\n',
    };
  }
  if (verb === 'revoke') {
    const parsed = parse(args, flagSet(), ['tokenId']);
    return { parsed, method: 'DELETE', path: `/tokens/${id(parsed.positionals[0])}`, render: record };
  }
  throw new UsageError(`kaihub tokens: list <userId> | create <userId> | revoke <tokenId> (got "${verb}")`);
}

export function planWhoami(args: string[]): Plan {
  const parsed = parse(args, flagSet(), []);
  return {
    parsed,
    method: 'GET',
    path: '/me',
    render: (result) => {
      const me = result as Row & { user: Row | null };
      const lines = [
        ['actor', me.actorId],
        ['name', me.user?.name ?? '(운영자 토큰 / operator token)'],
        ['email', me.user?.email ?? ''],
        ['roles', (me.roles as string[]).join(' ') || '(없음 / none)'],
        ['memberships', rolesText(me.user?.memberships)],
      ];
      return `${lines.map(([k, v]) => `${String(k).padEnd(12)} ${v}`).join('\n')}\n`;
    },
  };
}

export const AUDIT_FILTERS = fieldSpecs('actorId entityType entityId action requestId from to limit');
const AUDIT_COLUMNS: Column<Row>[] = [
  { header: '시각 Time (KST)', value: (r) => kst(r.createdAt) },
  col('행위자 Actor', 'actorId'),
  col('동작 Action', 'action'),
  col('대상 Entity', 'entityType'),
  col('ID', 'entityId'),
  col('요청 Request', 'requestId'),
];

export function planAudit(args: string[]): Plan {
  const parsed = parse(args, flagSet(AUDIT_FILTERS), []);
  return {
    parsed,
    method: 'GET',
    path: `/audit${buildQuery(AUDIT_FILTERS, parsed)}`,
    fields: AUDIT_FILTERS,
    render: list(AUDIT_COLUMNS),
  };
}
