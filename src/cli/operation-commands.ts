/** `kaihub catalog import | export` and `kaihub credentials reseal`: the operator's bulk actions. */
import { readFileSync } from 'node:fs';
import { UsageError } from './flags.ts';
import { flagSet, type Plan, parse } from './plan.ts';

interface ImportReport {
  dryRun: boolean;
  suppliers: { created: string[]; updated: { name: string; fields: string[] }[]; unchanged: number };
  products: {
    created: string[];
    updated: { model: string; fields: string[] }[];
    unchanged: number;
    kept: { model?: string; supplier?: string; field: string; current: unknown; file: unknown }[];
    otherSupplier: { model: string; file: string }[];
  };
}

function renderImport(result: unknown): string {
  const r = result as ImportReport;
  const lines = [r.dryRun ? '미리 보기(바뀐 것 없음) / dry run: nothing changed' : '가져왔습니다 / imported'];
  const names = (items: string[]) => (items.length ? items.join(', ') : '-');
  lines.push(`공급기업 suppliers: 생성 created ${names(r.suppliers.created)}`);
  for (const u of r.suppliers.updated) lines.push(`  갱신 updated ${u.name}: ${u.fields.join(', ')}`);
  lines.push(`상품 products: 생성 created ${names(r.products.created)}`);
  for (const u of r.products.updated) lines.push(`  갱신 updated ${u.model}: ${u.fields.join(', ')}`);
  lines.push(`  변경 없음 unchanged: ${r.products.unchanged}`);
  for (const k of r.products.kept) {
    lines.push(
      `  유지(운영자가 바꾼 값) kept, changed by the operator: ${k.model ?? k.supplier}.${k.field} = ${JSON.stringify(k.current)} (파일 file: ${JSON.stringify(k.file)})`,
    );
  }
  for (const o of r.products.otherSupplier)
    lines.push(`  건너뜀 skipped ${o.model}: 파일에서는 다른 공급기업 / listed under ${o.file} in the file`);
  if (r.products.kept.length > 0)
    lines.push('파일 값으로 바꾸려면 --overwrite / to take the file’s values: --overwrite');
  return `${lines.join('\n')}\n`;
}

function readJsonFile(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new UsageError(`${path}: 읽을 수 없는 JSON / cannot read as JSON (${(error as Error).message})`);
  }
}

export function planCatalog(verb: string, args: string[]): Plan {
  if (verb === 'import') {
    const switches = new Set(['dry-run', 'overwrite']);
    const parsed = parse(args, flagSet([...switches]), ['file'], switches);
    const query = new URLSearchParams();
    if (parsed.values.has('dry-run')) query.set('dryRun', 'true');
    if (parsed.values.has('overwrite')) query.set('overwrite', 'true');
    const q = query.toString();
    return {
      parsed,
      method: 'POST',
      path: `/catalog/import${q ? `?${q}` : ''}`,
      body: readJsonFile(parsed.positionals[0]!),
      render: renderImport,
    };
  }
  if (verb === 'export') {
    const parsed = parse(args, flagSet(), []);
    return {
      parsed,
      method: 'GET',
      path: '/catalog/export',
      render: (r) => `${JSON.stringify(r, null, 2)}\n`,
    };
  }
  throw new UsageError(`kaihub catalog: import <file> [--dry-run] [--overwrite] | export (got "${verb}")`);
}

export function planCredentials(verb: string, args: string[]): Plan {
  if (verb !== 'reseal') throw new UsageError(`kaihub credentials: reseal (got "${verb}")`);
  const parsed = parse(args, flagSet(), []);
  return {
    parsed,
    method: 'POST',
    path: '/credentials/reseal',
    render: (result) => {
      const r = result as {
        keyId: string;
        resealed: { deploymentId: string }[];
        alreadyCurrent: number;
        unreadable: { deploymentId: string; keyId: string | null }[];
      };
      const lines = [
        `현재 키 current key: ${r.keyId}`,
        `다시 봉인 resealed: ${r.resealed.map((x) => x.deploymentId).join(', ') || '-'}`,
        `이미 현재 키 already current: ${r.alreadyCurrent}`,
      ];
      for (const u of r.unreadable)
        lines.push(
          `열 수 없음 unreadable: ${u.deploymentId} (키 key ${u.keyId ?? '?'}) — apiKey를 다시 설정하세요 / set its apiKey again`,
        );
      return `${lines.join('\n')}\n`;
    },
  };
}
