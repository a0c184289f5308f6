/**
 * `kaihub eval rounds …`, `kaihub eval arenas …`, `kaihub eval battles …` and `kaihub eval ratings …`:
 * evaluation rounds and arenas on a running hub's /admin/v1 (docs/evaluation-rounds.md). A round's
 * definition and bulk inputs come from a JSON file (`--file`), or `--data`; single entries from flags.
 */
import { readFileSync } from 'node:fs';
import { planBattleRun } from './battle-run-command.ts';
import { buildBody, buildQuery, fieldSpecs, type ParsedArgs, UsageError } from './flags.ts';
import { flagSet, list, type Plan, parse, pathOf, record } from './plan.ts';
import { kst, type Row } from './resources.ts';
import { renderTable } from './table.ts';

/** The `kaihub eval` verbs this file answers (the others — run, worker, pull — live elsewhere). */
export const EVAL_ROUND_COMMANDS = new Set(['rounds', 'round', 'arenas', 'arena', 'battles', 'ratings']);

const ROUND_COLUMNS = [
  { header: 'ID', value: (r: Row) => r.id },
  { header: '차수 Round', value: (r: Row) => `${r.sequence}. ${r.name}` },
  { header: '상태 Status', value: (r: Row) => r.status },
  { header: '팀 Teams', value: (r: Row) => (r.teams as Row[]).map((t) => t.name).join(', ') },
  { header: '생존 Survivors', value: (r: Row) => r.survivors, align: 'right' as const },
  { header: '공개 Published (KST)', value: (r: Row) => (r.publishedAt ? kst(r.publishedAt) : '—') },
];

const ARENA_COLUMNS = [
  { header: 'ID', value: (r: Row) => r.id },
  { header: '이름 Name', value: (r: Row) => r.name },
  { header: '심판 Judge', value: (r: Row) => r.judgeModel ?? '사람 / people' },
  { header: '대결 Battles', value: (r: Row) => r.battles, align: 'right' as const },
  { header: '공개 Public', value: (r: Row) => (r.public ? 'yes' : 'no') },
];

const fixed = (v: unknown, digits = 1) => (typeof v === 'number' ? v.toFixed(digits) : '—');
const interval = (e: Row | null | undefined) =>
  e ? `${fixed(e.value)} [${fixed(e.lower)}–${fixed(e.upper)}]` : '—';

const STATUS: Record<string, string> = {
  survives: '생존 survives',
  eliminated: '탈락 eliminated',
  disqualified: '실격 disqualified',
  pending: '미정 pending',
};

const RESULT_COLUMNS = [
  { header: '순위 Rank', value: (r: Row) => r.rank ?? '—', align: 'right' as const },
  { header: '팀 Team', value: (r: Row) => r.name },
  { header: '목표 Target', value: (r: Row) => r.targetModel },
  { header: '종합 Score [95% CI]', value: (r: Row) => interval(r.overall as Row | null) },
  {
    header: '기준 대비 % of ref',
    value: (r: Row) => interval((r.benchmark as Row | null)?.percentOfReference as Row | undefined),
  },
  {
    header: '95%',
    value: (r: Row) => {
      const b = r.benchmark as Row | null;
      return b ? (b.reachesThreshold ? '✓' : '✗') : '—';
    },
  },
  { header: '결과 Status', value: (r: Row) => STATUS[String(r.status)] ?? r.status },
  { header: '근거 Decided by', value: (r: Row) => r.decidedBy },
];

function renderResult(result: unknown): string {
  const r = result as { teams: Row[]; preview?: boolean; missing: string[]; cut: Row | null };
  const lines = [renderTable(RESULT_COLUMNS, r.teams)];
  for (const t of r.teams)
    for (const g of (t.gates as Row[]).filter((x) => !x.passed))
      lines.push(`실격 disqualified ${t.name}: ${g.gateId} — ${g.reason} (근거 evidence: ${g.evidence})\n`);
  const cut = r.cut as { tieGroup: string[]; tieBreak: string[] } | null;
  if (cut && cut.tieGroup.length > 0)
    lines.push(`동점 처리 tie-break (${cut.tieBreak.join(' → ')}): ${cut.tieGroup.join(', ')}\n`);
  if (r.preview) lines.push('미리보기 / preview: 마감 전 / not closed yet\n');
  if (r.missing.length > 0)
    lines.push(`빠진 입력 / missing:\n${r.missing.map((m) => `  - ${m}`).join('\n')}\n`);
  return lines.join('');
}

function renderRatings(result: unknown): string {
  const r = result as { ratings: Row[]; battles: number; bootstrap: number; arena: Row };
  const columns = [
    { header: '순위 Rank', value: (x: Row) => x.rank, align: 'right' as const },
    { header: '모델 Model', value: (x: Row) => x.model },
    { header: '점수 Rating', value: (x: Row) => fixed(x.rating), align: 'right' as const },
    { header: '95% CI', value: (x: Row) => `${fixed(x.lower)}–${fixed(x.upper)}` },
    { header: '대결 Battles', value: (x: Row) => x.battles, align: 'right' as const },
    { header: '승/패/무 W/L/T', value: (x: Row) => `${x.wins}/${x.losses}/${x.ties}` },
  ];
  const head = `${r.arena.name}: ${r.battles} battles, ${r.bootstrap} bootstrap resamples\n`;
  return r.ratings.length === 0 ? `${head}(없음 / none)\n` : head + renderTable(columns, r.ratings);
}

/**
 * `--file <path>` as the JSON body, `--data` and field flags on top. With `lines` (battles), the file may
 * also be JSON lines, one item a line, which become the body's `lines` list.
 */
function bodyFrom(parsed: ParsedArgs, fields = fieldSpecs('_'), lines?: string): Record<string, unknown> {
  const file = parsed.values.get('file');
  let body: Record<string, unknown> = {};
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new UsageError(
        `--file: 읽을 수 없습니다 / cannot read ${file}: ${(error as NodeJS.ErrnoException).code}`,
      );
    }
    let whole: unknown;
    let problem: string | undefined;
    try {
      whole = JSON.parse(text);
    } catch (error) {
      problem = (error as Error).message;
    }
    const isObject = whole !== null && typeof whole === 'object' && !Array.isArray(whole);
    if (isObject && (lines === undefined || lines in (whole as object)))
      body = whole as Record<string, unknown>;
    else if (lines !== undefined) body = { [lines]: jsonLines(file, text) };
    else
      throw new UsageError(
        `--file: ${file}: JSON 객체가 아닙니다 / not a JSON object${problem ? ` (${problem})` : ''}`,
      );
  }
  return { ...body, ...buildBody(fields, parsed) };
}

function jsonLines(file: string, text: string): unknown[] {
  const items: unknown[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      items.push(JSON.parse(line));
    } catch (error) {
      throw new UsageError(
        `--file: ${file}:${i + 1}: JSON이 올바르지 않습니다 / not JSON (${(error as Error).message})`,
      );
    }
  });
  return items;
}

const SCORE_FIELDS = fieldSpecs(
  'organizationId suiteId score:number stderr:number n:number unparsed:number suiteHash runId note',
);
const GATE_FIELDS = fieldSpecs('gateId organizationId evidence reason');
const ARENA_FIELDS = fieldSpecs('name description judgeModel');

function planRounds(verb: string, args: string[]): Plan {
  const round = (parsed: ParsedArgs) => pathOf('/rounds', parsed.positionals[0] ?? '');
  const bulk = (sub: string, key: string): Plan => {
    const parsed = parse(args, flagSet(['data', 'file']), ['roundId']);
    const body = bodyFrom(parsed);
    if (!(key in body))
      throw new UsageError(`--file 또는 --data에 "${key}" 목록이 필요합니다 / give a "${key}" list`);
    return { parsed, method: 'POST', path: `${round(parsed)}/${sub}`, body, render: list(DATA_COLUMNS) };
  };
  switch (verb) {
    case 'list': {
      const parsed = parse(args, flagSet(), []);
      return { parsed, method: 'GET', path: '/rounds', render: list(ROUND_COLUMNS) };
    }
    case 'get': {
      const parsed = parse(args, flagSet(), ['roundId']);
      return { parsed, method: 'GET', path: round(parsed), render: record };
    }
    case 'create': {
      const parsed = parse(args, flagSet(['data', 'file']), []);
      return { parsed, method: 'POST', path: '/rounds', body: bodyFrom(parsed), render: record };
    }
    case 'update': {
      const parsed = parse(args, flagSet(['data', 'file']), ['roundId']);
      return { parsed, method: 'PATCH', path: round(parsed), body: bodyFrom(parsed), render: record };
    }
    case 'open':
    case 'close':
    case 'publish': {
      const parsed = parse(args, flagSet(), ['roundId']);
      return {
        parsed,
        method: 'POST',
        path: `${round(parsed)}/${verb}`,
        render: verb === 'close' ? renderResult : record,
      };
    }
    case 'result': {
      const parsed = parse(args, flagSet(), ['roundId']);
      return { parsed, method: 'GET', path: `${round(parsed)}/result`, render: renderResult };
    }
    case 'references':
      return bulk('references', 'references');
    case 'members':
      return bulk('panel-members', 'members');
    case 'panel-scores':
      return bulk('panel-scores', 'scores');
    case 'scores': {
      // one score by flags, or many from --file
      const parsed = parse(args, flagSet(['data', 'file'], SCORE_FIELDS), ['roundId']);
      const single = buildBody(SCORE_FIELDS, parsed);
      const body = Object.keys(single).length > 0 ? { scores: [single] } : bodyFrom(parsed);
      return {
        parsed,
        method: 'POST',
        path: `${round(parsed)}/scores`,
        body,
        render: list(DATA_COLUMNS),
        fields: SCORE_FIELDS,
      };
    }
    case 'gate': {
      const parsed = parse(
        args,
        flagSet(GATE_FIELDS, ['passed', 'failed']),
        ['roundId'],
        new Set(['passed', 'failed']),
      );
      const passed = parsed.values.has('passed');
      if (passed === parsed.values.has('failed'))
        throw new UsageError(
          'kaihub eval rounds gate: --passed 또는 --failed 하나 / one of --passed, --failed',
        );
      return {
        parsed,
        method: 'POST',
        path: `${round(parsed)}/gate-decisions`,
        body: { decisions: [{ ...buildBody(GATE_FIELDS, parsed), passed }] },
        render: list(DATA_COLUMNS),
        fields: GATE_FIELDS,
      };
    }
  }
  throw new UsageError(
    `kaihub eval rounds: list | get | create | update | open | references | scores | members | panel-scores | gate | result | close | publish (got "${verb}")`,
  );
}

/** What a bulk recording answers: each record as JSON, one a line. */
const DATA_COLUMNS = [{ header: '기록 Recorded', value: (r: Row) => JSON.stringify(r) }];

function planArenas(verb: string, args: string[]): Plan {
  if (verb === 'list') {
    const parsed = parse(args, flagSet(), []);
    return { parsed, method: 'GET', path: '/arenas', render: list(ARENA_COLUMNS) };
  }
  if (verb === 'create') {
    const parsed = parse(args, flagSet(['data', 'public'], ARENA_FIELDS), [], new Set(['public']));
    const body = buildBody(ARENA_FIELDS, parsed);
    if (parsed.values.has('public')) body.public = true;
    return { parsed, method: 'POST', path: '/arenas', body, render: record, fields: ARENA_FIELDS };
  }
  throw new UsageError(
    `kaihub eval arenas: list | create --name N [--judge-model M] [--public] (got "${verb}")`,
  );
}

function planBattles(verb: string, args: string[]): Plan {
  if (verb === 'run') return planBattleRun(args);
  if (verb !== 'add')
    throw new UsageError(
      `kaihub eval battles: add <arenaId> --file battles.jsonl | run <arenaId> --models a,b --prompts F (got "${verb}")`,
    );
  const fields = fieldSpecs('source judgeModel');
  const parsed = parse(args, flagSet(['data', 'file'], fields), ['arenaId']);
  const body = bodyFrom(parsed, fields, 'battles');
  return {
    parsed,
    method: 'POST',
    path: `${pathOf('/arenas', parsed.positionals[0] ?? '')}/battles`,
    body,
    render: record,
    fields,
  };
}

function planRatings(args: string[]): Plan {
  const fields = fieldSpecs('bootstrap:number seed:number');
  const parsed = parse(args, flagSet(fields), ['arenaId']);
  return {
    parsed,
    method: 'GET',
    path: `${pathOf('/arenas', parsed.positionals[0] ?? '')}/ratings${buildQuery(fields, parsed)}`,
    render: renderRatings,
    fields,
  };
}

export function planEvalRounds(command: string, args: string[]): Plan {
  const [verb = '', ...rest] = args;
  if (command === 'rounds' || command === 'round') return planRounds(verb, rest);
  if (command === 'arenas' || command === 'arena') return planArenas(verb, rest);
  if (command === 'battles') return planBattles(verb, rest);
  return planRatings(args);
}

export const EVAL_ROUNDS_USAGE = `  kaihub eval rounds list | get <id> | create --file round.json | update <id> --file partial.json
                     | open <id> | references <id> --file refs.json | members <id> --file members.json
                     | scores <id> --organization-id ID --suite-id S --score X [--stderr E] [--n N]
                       [--unparsed U] [--run-id R | --note "출처 / source"]  (또는 / or --file scores.json)
                     | panel-scores <id> --file panel.json
                     | gate <id> --gate-id G --organization-id ID --passed|--failed --evidence E --reason R
                     | result <id> | close <id> | publish <id>       평가 차수 / evaluation rounds
  kaihub eval arenas list | create --name N [--judge-model M] [--public]      아레나 / arenas
  kaihub eval battles add <arenaId> --file battles.jsonl [--source judge|human] [--judge-model M]
                     한 줄에 {"a": "m1", "b": "m2", "outcome": "a|b|tie"} / one battle a line
  kaihub eval battles run <arenaId> --models a,b[,c] --prompts <file> [--judge M] [--format komt-bench]
                     [--concurrency N] [--new] [--json]
                     허브가 두 상품에 묻고 심판이 자리를 바꿔 두 번 판정합니다 / the hub asks both products and
                     the judge twice, positions swapped; prompts: .txt (한 줄에 하나 / one a line), .json list,
                     .jsonl (kaihub-judge, komt-bench, logickor) or a judged suite file (.yaml); again: resumes
  kaihub eval ratings <arenaId> [--bootstrap 200] [--seed 1]   Bradley–Terry 점수와 95% 구간 / ratings
`;
