/**
 * Judged battles run by the hub (docs/evaluation-rounds.md#battle-runs): for each prompt and each pair
 * of models, the hub asks both products through the call layer as the evaluation account, asks the
 * judge twice with the positions swapped (pairwise-judge.ts), and records the decided battle in the
 * arena with `source: judge`. Every item keeps its log (the prompt, both answers, the judge prompts and
 * raw verdicts); answers are kept too, so a run taken up again — the same request again, or a hub that
 * restarted — asks nothing it has answered. An item's battle and its `decided` mark are written in one
 * transaction, so no battle is recorded twice.
 */
import { z } from 'zod';
import type { AuditTrail } from '../../audit/audit-log.ts';
import { NotFoundError, ValidationError } from '../../errors.ts';
import type { Logger } from '../../observability/logger.ts';
import type { Database, SqlExecutor } from '../../storage/database.ts';
import { newId } from '../../storage/ids.ts';
import { rowBatches } from '../../storage/row-batches.ts';
import { parseInput } from '../../validation.ts';
import { modelName } from '../rounds/definition.ts';
import { type Answer, askWithRetries, type ModelAsker, type RetrySettings } from '../runs/model-asker.ts';
import { canonicalJson, sha256Hex } from '../suites/canonical-json.ts';
import type { ChatMessage } from '../suites/prompts.ts';
import { inlineDataOnly, loadSuite } from '../suites/suite-load.ts';
import { type CallParameters, callParameters } from '../suites/suite-spec.ts';
import type { ArenaService } from './arenas.ts';
import { insertBattles } from './arenas.ts';
import {
  type BattleOutcome,
  type BattlePrompt,
  combineVerdicts,
  type PairVerdict,
  pairwiseMessages,
  parsePairVerdict,
} from './pairwise-judge.ts';

/** The most items (prompts × pairs) one run holds. */
export const MAX_BATTLE_ITEMS = 20_000;
const DEFAULT_ANSWER_PARAMETERS: CallParameters = { temperature: 0, max_tokens: 1024 };
const DEFAULT_JUDGE_PARAMETERS: CallParameters = { temperature: 0, max_tokens: 1024 };

const text = z.string().min(1).max(100_000);
const promptInput = z.union([
  text,
  z
    .strictObject({
      id: z.string().trim().min(1).max(200).optional(),
      system: z.string().max(20_000).optional(),
      prompt: text.optional(),
      turns: z.array(text).min(1).max(10).optional(),
    })
    .refine((p) => (p.prompt === undefined) !== (p.turns === undefined), {
      message: 'prompt 또는 turns 하나 / one of prompt, turns',
    }),
]);

const createInput = z
  .strictObject({
    /** Two or more products; every pair of them battles on every prompt (round-robin). */
    models: z
      .array(modelName)
      .min(2)
      .max(16)
      .refine((m) => new Set(m).size === m.length, { message: 'each model once' }),
    prompts: z.array(promptInput).min(1).max(MAX_BATTLE_ITEMS).optional(),
    /** A judged suite (KoMT-Bench, LogicKor, K2-Eval, kaihub-judge) with its data inline. */
    suite: z.record(z.string(), z.unknown()).optional(),
    /** The arena's judge by default. */
    judgeModel: modelName.optional(),
    /** What the products are asked with (a suite's own parameters otherwise). */
    parameters: callParameters.optional(),
    judgeParameters: callParameters.optional(),
    concurrency: z.number().int().min(1).max(64).optional(),
    /** false: a new run even when a run of the same arena, models, judge and prompts exists. */
    resume: z.boolean().default(true),
  })
  .refine((v) => (v.prompts === undefined) !== (v.suite === undefined), {
    path: ['prompts'],
    message: 'prompts 또는 suite 하나 / one of prompts, suite',
  });

const itemsQuery = z.strictObject({
  status: z.enum(['pending', 'decided', 'unparsed', 'failed']).optional(),
  afterSeq: z.coerce.number().int().min(-1).default(-1),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

interface BattleRunSpec {
  models: string[];
  judgeModel: string;
  prompts: BattlePrompt[];
  suite: string | null;
  parameters: CallParameters;
  judgeParameters: CallParameters;
}

export type BattleRunStatus = 'running' | 'completed' | 'incomplete';

export interface BattleRunView {
  id: string;
  arenaId: string;
  models: string[];
  judgeModel: string;
  suite: string | null;
  prompts: number;
  status: BattleRunStatus;
  concurrency: number;
  /** Items by state: decided ones are recorded battles (ties among them), unparsed ones are not. */
  progress: { total: number; pending: number; decided: number; unparsed: number; failed: number };
  outcomes: { a: number; b: number; tie: number };
  createdAt: string;
  createdBy: string;
  finishedAt: string | null;
}

interface JudgeLog {
  order: 'straight' | 'swapped';
  positions: { A: string; B: string };
  prompt: ChatMessage[];
  verdict: string;
  parsed: PairVerdict | null;
  requestId: string;
}

export interface BattleItemView {
  seq: number;
  promptId: string;
  a: string;
  b: string;
  status: 'pending' | 'decided' | 'unparsed' | 'failed';
  outcome: BattleOutcome | null;
  battleId: string | null;
  error: string | null;
  log: { prompt: BattlePrompt; answers: { a: string[]; b: string[] }; judge: JudgeLog[] } | null;
}

/** What the service needs of the evaluation side: its asker and the products it can call. */
export interface BattleRunDeps {
  asker(): Promise<ModelAsker>;
  /** The product's model name for the evaluation account, or null when it has no such product. */
  product(model: string): Promise<string | null>;
}

class AskFailure extends Error {}

function failureText(answer: Extract<Answer, { ok: false }>): string {
  return `${answer.status} ${answer.code ?? ''}: ${answer.message}`.trim();
}

export class BattleRuns {
  private readonly active = new Map<string, Promise<void>>();
  private readonly stop = new AbortController();

  constructor(
    private readonly db: Database,
    private readonly arenas: ArenaService,
    private readonly evaluation: BattleRunDeps,
    private readonly settings: RetrySettings & { concurrency: number },
    private readonly logger: Logger,
  ) {}

  /**
   * A new run, or (with `resume`) the run of the same arena, models, judge and prompts: its failed
   * items asked again, what it answered kept. Work goes on in the background; `done` resolves when it ends.
   */
  async start(
    arenaId: string,
    body: unknown,
    trail: AuditTrail,
    actorId: string,
  ): Promise<{ run: BattleRunView; resumed: boolean; done: Promise<void> }> {
    const v = parseInput(createInput, body);
    const arena = await this.arenas.get(arenaId);
    const judge = v.judgeModel ?? arena.judgeModel;
    if (judge === null) throw ValidationError.of('judgeModel', '심판 모델을 정하세요 / name the judge');
    const spec = await this.spec(v, judge);
    const pairs = (spec.models.length * (spec.models.length - 1)) / 2;
    if (pairs * spec.prompts.length > MAX_BATTLE_ITEMS)
      throw ValidationError.of('prompts', `at most ${MAX_BATTLE_ITEMS} prompts × pairs in one run`);
    const hash = sha256Hex(canonicalJson({ arenaId, spec }));
    const now = Date.now();
    let id: string;
    let resumed = false;
    if (v.resume) {
      const existing = await this.db.get<{ id: string }>(
        'SELECT id FROM eval_battle_runs WHERE spec_hash = ? AND arena_id = ? ORDER BY created_at DESC LIMIT 1',
        [hash, arenaId],
      );
      if (existing) {
        id = existing.id;
        resumed = true;
        await this.db.transaction(async (tx) => {
          const retried = await tx.run(
            `UPDATE eval_battle_run_items SET status = 'pending', error = NULL, updated_at = ?
             WHERE run_id = ? AND status = 'failed'`,
            [now, existing.id],
          );
          const pending = await tx.get<{ n: number }>(
            "SELECT COUNT(*) AS n FROM eval_battle_run_items WHERE run_id = ? AND status = 'pending'",
            [existing.id],
          );
          if (Number(pending?.n) > 0)
            await tx.run("UPDATE eval_battle_runs SET status = 'running', finished_at = NULL WHERE id = ?", [
              existing.id,
            ]);
          await trail(tx, {
            entityId: existing.id,
            after: { id: existing.id, arenaId, resumed: true, retried },
          });
        });
      }
    }
    if (!resumed) {
      id = newId('bru');
      const concurrency = v.concurrency ?? this.settings.concurrency;
      await this.db.transaction(async (tx) => {
        await tx.run(
          `INSERT INTO eval_battle_runs (id, arena_id, spec_hash, spec_json, judge_model, concurrency, status,
             created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?)`,
          [id, arenaId, hash, JSON.stringify(spec), judge, concurrency, now, actorId],
        );
        await insertItems(tx, id, spec, now);
        await trail(tx, {
          entityId: id,
          after: {
            id,
            arenaId,
            models: spec.models,
            judgeModel: judge,
            prompts: spec.prompts.length,
            concurrency,
          },
        });
      });
    }
    const done = this.work(id!);
    return { run: await this.view(arenaId, id!), resumed, done };
  }

  /** Runs left `running` by a hub that stopped: taken up where they were. */
  async resumeUnfinished(): Promise<number> {
    const rows = await this.db.all<{ id: string }>(
      "SELECT id FROM eval_battle_runs WHERE status = 'running'",
    );
    for (const r of rows) void this.work(r.id);
    return rows.length;
  }

  async close(): Promise<void> {
    this.stop.abort();
    await Promise.allSettled([...this.active.values()]);
  }

  async view(arenaId: string, id: string, db: SqlExecutor = this.db): Promise<BattleRunView> {
    const r = await db.get<Record<string, unknown>>(
      'SELECT * FROM eval_battle_runs WHERE id = ? AND arena_id = ?',
      [id, arenaId],
    );
    if (!r) throw new NotFoundError('battle run', id);
    const spec = JSON.parse(r.spec_json as string) as BattleRunSpec;
    const counts = await db.all<{ status: string; outcome: string | null; n: number }>(
      'SELECT status, outcome, COUNT(*) AS n FROM eval_battle_run_items WHERE run_id = ? GROUP BY status, outcome',
      [id],
    );
    const progress = { total: 0, pending: 0, decided: 0, unparsed: 0, failed: 0 };
    const outcomes = { a: 0, b: 0, tie: 0 };
    for (const c of counts) {
      const n = Number(c.n);
      progress.total += n;
      progress[c.status as 'pending'] += n;
      if (c.status === 'decided') outcomes[c.outcome as BattleOutcome] += n;
    }
    return {
      id,
      arenaId,
      models: spec.models,
      judgeModel: spec.judgeModel,
      suite: spec.suite,
      prompts: spec.prompts.length,
      status: r.status as BattleRunStatus,
      concurrency: Number(r.concurrency),
      progress,
      outcomes,
      createdAt: new Date(Number(r.created_at)).toISOString(),
      createdBy: r.created_by as string,
      finishedAt: r.finished_at === null ? null : new Date(Number(r.finished_at)).toISOString(),
    };
  }

  async items(arenaId: string, id: string, query: unknown): Promise<BattleItemView[]> {
    const q = parseInput(itemsQuery, query);
    await this.view(arenaId, id);
    const rows = await this.db.all<Record<string, unknown>>(
      `SELECT seq, prompt_id, model_a, model_b, status, outcome, battle_id, error, log_json
       FROM eval_battle_run_items WHERE run_id = ? AND seq > ? ${q.status ? 'AND status = ?' : ''}
       ORDER BY seq LIMIT ?`,
      q.status ? [id, q.afterSeq, q.status, q.limit] : [id, q.afterSeq, q.limit],
    );
    return rows.map((r) => ({
      seq: Number(r.seq),
      promptId: r.prompt_id as string,
      a: r.model_a as string,
      b: r.model_b as string,
      status: r.status as BattleItemView['status'],
      outcome: (r.outcome as BattleOutcome | null) ?? null,
      battleId: (r.battle_id as string | null) ?? null,
      error: (r.error as string | null) ?? null,
      log: r.log_json === null ? null : JSON.parse(r.log_json as string),
    }));
  }

  /** The prompts from the request or its suite; every product known to the evaluation account. */
  private async spec(v: z.infer<typeof createInput>, judge: string): Promise<BattleRunSpec> {
    let prompts: BattlePrompt[];
    let suite: string | null = null;
    let parameters = v.parameters;
    let judgeParameters = v.judgeParameters;
    if (v.suite !== undefined) {
      const loaded = (() => {
        try {
          const judged = { judge: { model: judge }, ...v.suite };
          return loadSuite(judged, inlineDataOnly);
        } catch (error) {
          if (!(error instanceof ValidationError)) throw error;
          throw new ValidationError(error.fields.map((f) => ({ ...f, field: `suite.${f.field}` })));
        }
      })();
      if (loaded.kind !== 'judge')
        throw ValidationError.of(
          'suite',
          '대결에는 평가형(judge) 스위트만 씁니다 / battles take a judged suite (open questions)',
        );
      suite = loaded.name;
      parameters ??= loaded.parameters;
      judgeParameters ??= loaded.judge?.parameters;
      prompts = loaded.prepared.map((p) => ({
        id: p.itemId,
        system: p.request.type === 'conversation' ? p.request.system : null,
        turns: p.request.type === 'conversation' ? p.request.turns : [],
      }));
    } else {
      prompts = v.prompts!.map((p, i) =>
        typeof p === 'string'
          ? { id: String(i + 1), system: null, turns: [p] }
          : { id: p.id ?? String(i + 1), system: p.system ?? null, turns: p.turns ?? [p.prompt!] },
      );
    }
    const ids = new Set(prompts.map((p) => p.id));
    if (ids.size !== prompts.length)
      throw ValidationError.of('prompts', '프롬프트 id 중복 / duplicate prompt ids');
    const models: string[] = [];
    for (const [i, m] of v.models.entries()) models.push(await this.known(m, `models.${i}`));
    return {
      models,
      judgeModel: await this.known(judge, 'judgeModel'),
      prompts,
      suite,
      parameters: parameters ?? DEFAULT_ANSWER_PARAMETERS,
      judgeParameters: judgeParameters ?? DEFAULT_JUDGE_PARAMETERS,
    };
  }

  private async known(model: string, field: string): Promise<string> {
    const name = await this.evaluation.product(model);
    if (name === null)
      throw ValidationError.of(
        field,
        `'${model}' 상품이 없거나 배포가 없습니다 / no product '${model}' with a deployment`,
      );
    return name;
  }

  /** Works on the run unless this process already does; resolves when it has no pending item left. */
  private work(id: string): Promise<void> {
    const running = this.active.get(id);
    if (running) return running;
    const task = this.execute(id)
      .catch((error: unknown) => this.logger.error({ err: error, battleRunId: id }, 'battle run failed'))
      .finally(() => this.active.delete(id));
    this.active.set(id, task);
    return task;
  }

  private async execute(id: string): Promise<void> {
    const signal = this.stop.signal;
    const run = await this.db.get<{ spec_json: string; arena_id: string; concurrency: number }>(
      'SELECT spec_json, arena_id, concurrency FROM eval_battle_runs WHERE id = ?',
      [id],
    );
    if (!run) return;
    const spec = JSON.parse(run.spec_json) as BattleRunSpec;
    const items = await this.db.all<{ seq: number; prompt_seq: number; model_a: string; model_b: string }>(
      `SELECT seq, prompt_seq, model_a, model_b FROM eval_battle_run_items
       WHERE run_id = ? AND status = 'pending' ORDER BY seq`,
      [id],
    );
    const asker = await this.evaluation.asker();
    const ask = (model: string, messages: readonly ChatMessage[], parameters: CallParameters) =>
      askWithRetries(asker, model, messages, parameters, this.settings, signal);
    const kept = await this.db.all<{ prompt_seq: number; model: string; answers_json: string }>(
      'SELECT prompt_seq, model, answers_json FROM eval_battle_run_answers WHERE run_id = ?',
      [id],
    );
    // one ask per prompt and model, shared by every pair it is in
    const answers = new Map<string, Promise<string[]>>(
      kept.map((k) => [
        `${k.prompt_seq}:${k.model}`,
        Promise.resolve(JSON.parse(k.answers_json) as string[]),
      ]),
    );
    const answerOf = (promptSeq: number, model: string): Promise<string[]> => {
      const key = `${promptSeq}:${model}`;
      let answer = answers.get(key);
      if (answer === undefined) {
        answer = this.converse(id, promptSeq, spec.prompts[promptSeq]!, model, spec.parameters, ask);
        answers.set(key, answer);
      }
      return answer;
    };
    let next = 0;
    const worker = async () => {
      while (next < items.length && !signal.aborted) {
        const item = items[next++]!;
        await this.battle(id, run.arena_id, spec, item, answerOf, ask);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Number(run.concurrency)) }, worker));
    if (signal.aborted) return;
    const left = await this.db.get<{ pending: number; failed: number }>(
      `SELECT SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END) AS pending,
              SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS failed
       FROM eval_battle_run_items WHERE run_id = ?`,
      [id],
    );
    if (Number(left?.pending ?? 0) > 0) return;
    const status: BattleRunStatus = Number(left?.failed ?? 0) > 0 ? 'incomplete' : 'completed';
    await this.db.run(
      "UPDATE eval_battle_runs SET status = ?, finished_at = ? WHERE id = ? AND status = 'running'",
      [status, Date.now(), id],
    );
    this.logger.info({ battleRunId: id, status }, 'battle run finished');
  }

  /** A product's answers to a prompt, turn by turn in one conversation; kept once all are in. */
  private async converse(
    runId: string,
    promptSeq: number,
    prompt: BattlePrompt,
    model: string,
    parameters: CallParameters,
    ask: (m: string, messages: readonly ChatMessage[], p: CallParameters) => Promise<Answer>,
  ): Promise<string[]> {
    const conversation: ChatMessage[] = prompt.system ? [{ role: 'system', content: prompt.system }] : [];
    const texts: string[] = [];
    const requestIds: string[] = [];
    for (const turn of prompt.turns) {
      conversation.push({ role: 'user', content: turn });
      const answer = await ask(model, conversation, parameters);
      if (!answer.ok) throw new AskFailure(`${model}: ${failureText(answer)}`);
      texts.push(answer.text);
      requestIds.push(answer.requestId);
      conversation.push({ role: 'assistant', content: answer.text });
    }
    await this.db.run(
      `INSERT INTO eval_battle_run_answers (run_id, prompt_seq, model, answers_json, request_ids_json)
       VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
      [runId, promptSeq, model, JSON.stringify(texts), JSON.stringify(requestIds)],
    );
    return texts;
  }

  private async battle(
    runId: string,
    arenaId: string,
    spec: BattleRunSpec,
    item: { seq: number; prompt_seq: number; model_a: string; model_b: string },
    answerOf: (promptSeq: number, model: string) => Promise<string[]>,
    ask: (m: string, messages: readonly ChatMessage[], p: CallParameters) => Promise<Answer>,
  ): Promise<void> {
    const prompt = spec.prompts[item.prompt_seq]!;
    const a = item.model_a;
    const b = item.model_b;
    try {
      const answersA = await answerOf(item.prompt_seq, a);
      const answersB = await answerOf(item.prompt_seq, b);
      const judge: JudgeLog[] = [];
      for (const order of ['straight', 'swapped'] as const) {
        const positions = order === 'straight' ? { A: a, B: b } : { A: b, B: a };
        const messages =
          order === 'straight'
            ? pairwiseMessages(prompt, answersA, answersB)
            : pairwiseMessages(prompt, answersB, answersA);
        const verdict = await ask(spec.judgeModel, messages, spec.judgeParameters);
        if (!verdict.ok) throw new AskFailure(`judge ${spec.judgeModel}: ${failureText(verdict)}`);
        judge.push({
          order,
          positions,
          prompt: messages,
          verdict: verdict.text,
          parsed: parsePairVerdict(verdict.text),
          requestId: verdict.requestId,
        });
      }
      const outcome = combineVerdicts(judge[0]!.parsed, judge[1]!.parsed);
      const log = JSON.stringify({ prompt, answers: { a: answersA, b: answersB }, judge });
      await this.db.transaction(async (tx) => {
        const battleId = outcome === null ? null : newId('btl');
        const changed = await tx.run(
          `UPDATE eval_battle_run_items SET status = ?, outcome = ?, battle_id = ?, log_json = ?, error = NULL,
             updated_at = ? WHERE run_id = ? AND seq = ? AND status = 'pending'`,
          [outcome === null ? 'unparsed' : 'decided', outcome, battleId, log, Date.now(), runId, item.seq],
        );
        // another process decided it first: its battle stands, this one is not recorded
        if (changed === 0 || battleId === null) return;
        await insertBattles(tx, [
          [battleId, arenaId, a, b, outcome, 'judge', spec.judgeModel, null, prompt.id, runId, Date.now()],
        ]);
      });
    } catch (error) {
      if (!(error instanceof AskFailure)) throw error;
      await this.db.run(
        `UPDATE eval_battle_run_items SET status = 'failed', error = ?, updated_at = ?
         WHERE run_id = ? AND seq = ? AND status = 'pending'`,
        [error.message, Date.now(), runId, item.seq],
      );
    }
  }
}

/** Rows per INSERT: 8 parameters each. */
const ITEM_CHUNK = 250;

async function insertItems(tx: SqlExecutor, runId: string, spec: BattleRunSpec, now: number): Promise<void> {
  const rows: (string | number)[][] = [];
  spec.prompts.forEach((prompt, p) => {
    for (let i = 0; i < spec.models.length; i++)
      for (let j = i + 1; j < spec.models.length; j++)
        rows.push([runId, rows.length, p, prompt.id, spec.models[i]!, spec.models[j]!, 'pending', now]);
  });
  for (const chunk of rowBatches(rows, ITEM_CHUNK)) {
    await tx.run(
      `INSERT INTO eval_battle_run_items (run_id, seq, prompt_seq, prompt_id, model_a, model_b, status, updated_at)
       VALUES ${chunk.map(() => '(?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
      chunk.flat(),
    );
  }
}
