/**
 * `kaihub eval battles run <arenaId> --models a,b[,c] --prompts <file> [--judge m]`: the hub runs the
 * judged battles itself (docs/evaluation-rounds.md#battle-runs); this command starts the run, follows
 * it on stderr and prints its counts. Running the same command again takes the run up where it was.
 * The prompts file is read here and sent inline (the hub reads no file a request names).
 */
import { readFileSync } from 'node:fs';
import { basename, dirname, extname, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseYaml } from '../yaml.ts';
import { UsageError } from './flags.ts';
import { flagSet, type Plan, parse, pathOf } from './plan.ts';
import type { Row } from './resources.ts';
import { renderRecord } from './table.ts';

const POLL_MS = 500;

function read(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new UsageError(
      `--prompts: 읽을 수 없습니다 / cannot read ${file}: ${(error as NodeJS.ErrnoException).code}`,
    );
  }
}

/**
 * What a prompts file becomes: a suite file (YAML/JSON with `data`; its data file read beside it), a
 * JSONL data file of `--format` (the hub's kaihub-judge by default; komt-bench, logickor, k2-eval), a
 * JSON list of prompts, or plain text, one prompt a line.
 */
export function promptsBody(file: string, format: string | undefined): Record<string, unknown> {
  const text = read(file);
  const ext = extname(file).toLowerCase();
  if (ext === '.jsonl' || ext === '.csv') {
    const name =
      basename(file, ext)
        .replace(/[^A-Za-z0-9._-]/g, '-')
        .replace(/^[^A-Za-z0-9]+/, '') || 'prompts';
    return { suite: { name, data: { format: format ?? 'kaihub-judge', content: text } } };
  }
  if (ext === '.yaml' || ext === '.yml' || ext === '.json') {
    let spec: unknown;
    try {
      spec = ext === '.json' ? JSON.parse(text) : parseYaml(text);
    } catch (error) {
      throw new UsageError(`--prompts: ${file}: ${(error as Error).message}`);
    }
    if (Array.isArray(spec)) return { prompts: spec };
    const suite = spec as { data?: { file?: string; content?: string } };
    if (suite?.data?.file !== undefined) {
      const { file: dataFile, ...data } = suite.data;
      return { suite: { ...suite, data: { ...data, content: read(resolve(dirname(file), dataFile)) } } };
    }
    return { suite };
  }
  const prompts = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  return { prompts };
}

const summary = (run: Row) => {
  const p = run.progress as Row;
  const o = run.outcomes as Row;
  return {
    id: run.id,
    arenaId: run.arenaId,
    status: run.status,
    models: (run.models as string[]).join(', '),
    judgeModel: run.judgeModel,
    prompts: run.prompts,
    battles: `${p.decided} (A ${o.a} / B ${o.b} / 무승부 tie ${o.tie})`,
    unparsed: p.unparsed,
    failed: p.failed,
  };
};

export function planBattleRun(args: string[]): Plan {
  const parsed = parse(
    args,
    flagSet(['models', 'prompts', 'judge', 'concurrency', 'format', 'new']),
    ['arenaId'],
    new Set(['new']),
  );
  const models = parsed.values
    .get('models')
    ?.split(',')
    .map((m) => m.trim())
    .filter((m) => m !== '');
  const file = parsed.values.get('prompts');
  if (!models || models.length < 2 || file === undefined)
    throw new UsageError('kaihub eval battles run <arenaId> --models a,b --prompts <file> [--judge m]');
  const body: Record<string, unknown> = { models, ...promptsBody(file, parsed.values.get('format')) };
  const judge = parsed.values.get('judge');
  if (judge !== undefined) body.judgeModel = judge;
  const concurrency = parsed.values.get('concurrency');
  if (concurrency !== undefined) body.concurrency = Number(concurrency);
  if (parsed.values.has('new')) body.resume = false;
  const arena = pathOf('/arenas', parsed.positionals[0] ?? '');
  return {
    parsed,
    method: 'POST',
    path: `${arena}/battle-runs`,
    body,
    render: (run) => renderRecord(summary(run as Row) as unknown as Row),
    async follow(started, get, err) {
      let run = started as Row;
      for (;;) {
        const p = run.progress as Row;
        err.write(`\r${run.id}: ${Number(p.total) - Number(p.pending)}/${p.total}`);
        if (run.status !== 'running') break;
        await sleep(POLL_MS);
        run = (await get(`${arena}/battle-runs/${encodeURIComponent(String(run.id))}`)) as Row;
      }
      err.write('\n');
      return run;
    },
  };
}
