/**
 * Evaluation runs as the admin API and the CLI see them: create one (or resume the unfinished run of
 * the same manifest), list them, read one with its progress and result, read its items with their
 * prompts, answers, extractions and judge logs.
 */
import { z } from 'zod';
import type { Caller } from '../../accounts/key-cache.ts';
import type { AuditTrail } from '../../audit/audit-log.ts';
import { NotFoundError, ValidationError } from '../../errors.ts';
import type { Database } from '../../storage/database.ts';
import { newId } from '../../storage/ids.ts';
import { parseInput } from '../../validation.ts';
import { inlineDataOnly, type LoadedSuite, loadSuite } from '../suites/suite-load.ts';
import type { EvaluationAccount } from './evaluation-account.ts';
import { buildManifest, manifestHash } from './manifest.ts';
import type { ExecutorKind, RunItemView, RunProgress, RunRecord, RunStatus } from './run-records.ts';
import type { RunStore } from './run-store.ts';

export const DEFAULT_CONCURRENCY = 16;

export interface RunView extends Omit<RunRecord, 'manifestHash'> {
  progress: RunProgress;
}

const STATUSES = ['queued', 'running', 'completed', 'incomplete', 'failed'] as const;

const listQuery = z.strictObject({
  productId: z.string().min(1).optional(),
  model: z.string().min(1).optional(),
  suite: z.string().min(1).optional(),
  status: z.enum(STATUSES).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
});

const itemsQuery = z.strictObject({
  status: z.enum(['pending', 'done', 'failed']).optional(),
  category: z.string().min(1).optional(),
  /** Items after this seq (paging: the last seq of the previous page). */
  afterSeq: z.coerce.number().int().min(-1).default(-1),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

const createBody = z.strictObject({
  model: z.string().min(1).max(128),
  /** The suite spec with its data inline: `data.content` (and `fewShot.content`). */
  suite: z.record(z.string(), z.unknown()),
  concurrency: z.number().int().min(1).max(256).optional(),
  /** false: a new run even when an unfinished run of the same manifest exists. */
  resume: z.boolean().default(true),
  /** true: the run's score never shows in the catalogue (a run for a round, a trial). */
  private: z.boolean().default(false),
});

export interface CreateRun {
  suite: LoadedSuite;
  model: string;
  concurrency?: number | undefined;
  executor: ExecutorKind;
  createdBy: string;
  resume: boolean;
  /** Never shown in the catalogue. */
  private?: boolean | undefined;
}

export class EvaluationService {
  constructor(
    private readonly db: Database,
    private readonly store: RunStore,
    private readonly account: EvaluationAccount,
    /** The product a model name means for the evaluation account (the call layer's resolve). */
    private readonly resolve: (caller: Caller, model: string) => { id: string; model: string } | undefined,
    private readonly defaultConcurrency = DEFAULT_CONCURRENCY,
  ) {}

  /**
   * A new run of `suite` on `model`, its items stored; or, with `resume`, the unfinished run of the
   * same manifest (its failed items asked again). The product and the judge must exist for the
   * evaluation account before anything is stored.
   */
  async create(input: CreateRun, audit: AuditTrail): Promise<{ run: RunView; resumed: boolean }> {
    const caller = await this.account.caller();
    const product = this.resolve(caller, input.model);
    if (!product)
      throw ValidationError.of(
        'model',
        `'${input.model}' 상품이 없거나 배포가 없습니다 / no product '${input.model}' with a deployment`,
      );
    const judge = input.suite.judge;
    if (judge !== null && !this.resolve(caller, judge.model))
      throw ValidationError.of(
        'suite.judge.model',
        `평가 모델 '${judge.model}' 상품이 없거나 배포가 없습니다 / no judge product '${judge.model}' with a deployment`,
      );
    const manifest = buildManifest(input.suite, product.model);
    const hash = manifestHash(manifest);
    const now = Date.now();
    const isPrivate = input.private ?? false;
    if (input.resume) {
      const existing = await this.store.resumable(hash, [input.executor], isPrivate);
      if (existing) {
        await this.db.transaction(async (tx) => {
          const retried = await this.store.retryFailed(existing.id, now, tx);
          await audit(tx, { entityId: existing.id, after: { id: existing.id, resumed: true, retried } });
        });
        return { run: await this.view(existing.id), resumed: true };
      }
    }
    const id = newId('evr');
    const concurrency = input.concurrency ?? this.defaultConcurrency;
    await this.db.transaction(async (tx) => {
      await this.store.create(
        tx,
        {
          id,
          productId: product.id,
          model: product.model,
          manifest,
          manifestHash: hash,
          executor: input.executor,
          concurrency,
          private: isPrivate,
          createdBy: input.createdBy,
        },
        input.suite.prepared,
        now,
      );
      await audit(tx, {
        entityId: id,
        after: {
          id,
          model: product.model,
          suite: manifest.suite,
          concurrency,
          executor: input.executor,
          private: isPrivate,
          seed: manifest.seed,
          hubVersion: manifest.hubVersion,
        },
      });
    });
    return { run: await this.view(id), resumed: false };
  }

  /** The admin API's form: the suite inline (the hub reads no file a request names). */
  async createFromRequest(
    body: unknown,
    executor: ExecutorKind,
    createdBy: string,
    audit: AuditTrail,
  ): Promise<{ run: RunView; resumed: boolean }> {
    const v = parseInput(createBody, body);
    let suite: LoadedSuite;
    try {
      suite = loadSuite(v.suite, inlineDataOnly);
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      throw new ValidationError(error.fields.map((f) => ({ ...f, field: `suite.${f.field}` })));
    }
    return this.create(
      {
        suite,
        model: v.model,
        concurrency: v.concurrency,
        executor,
        createdBy,
        resume: v.resume,
        private: v.private,
      },
      audit,
    );
  }

  async view(id: string): Promise<RunView> {
    const run = await this.store.get(id);
    if (!run) throw new NotFoundError('evaluation run', id);
    const { manifestHash: _hash, ...rest } = run;
    return { ...rest, progress: await this.store.progress(id, Date.now()) };
  }

  async list(query: unknown): Promise<RunRecord[]> {
    const q = parseInput(listQuery, query);
    return this.store.list({
      productId: q.productId,
      model: q.model,
      suite: q.suite,
      status: q.status as RunStatus | undefined,
      limit: q.limit,
    });
  }

  async items(id: string, query: unknown): Promise<RunItemView[]> {
    const q = parseInput(itemsQuery, query);
    if (!(await this.store.get(id))) throw new NotFoundError('evaluation run', id);
    return this.store.items(id, q);
  }
}
