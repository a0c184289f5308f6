/**
 * Each product's latest completed score per suite, as the catalogue shows it beside the product
 * (`/v1/models` metadata, the admin API's product view): held in memory, read again every few seconds
 * (runs finish in other processes too) and at once when one finishes here.
 */
import type { RunRecord } from './run-records.ts';
import type { RunStore } from './run-store.ts';

export interface ProductScore {
  suite: string;
  suiteHash: string;
  kind: string;
  metric: 'accuracy' | 'judge_score';
  score: number | null;
  stderr: number | null;
  interval: [number, number] | null;
  range: { min: number; max: number };
  n: number;
  unparsed: number;
  runId: string;
  evaluatedAt: string;
}

function toScore(run: RunRecord): ProductScore | null {
  const r = run.result;
  if (r === null || run.finishedAt === null) return null;
  return {
    suite: run.suite.name,
    suiteHash: run.suite.hash,
    kind: run.suite.kind,
    metric: r.metric,
    score: r.overall.score,
    stderr: r.overall.stderr,
    interval: r.overall.interval,
    range: r.range,
    n: r.overall.n,
    unparsed: r.overall.unparsed,
    runId: run.id,
    evaluatedAt: run.finishedAt,
  };
}

export class LatestScores {
  private byProduct = new Map<string, ProductScore[]>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: RunStore,
    private readonly onError: (error: unknown) => void = () => {},
  ) {}

  /** The product's scores, by suite name; empty when it has none. */
  of(productId: string): readonly ProductScore[] {
    return this.byProduct.get(productId) ?? [];
  }

  async refresh(): Promise<void> {
    const next = new Map<string, ProductScore[]>();
    for (const run of await this.store.latestCompleted()) {
      const score = toScore(run);
      if (score === null) continue;
      const list = next.get(run.productId);
      if (list === undefined) next.set(run.productId, [score]);
      else list.push(score);
    }
    this.byProduct = next;
  }

  start(intervalMs = 5_000): void {
    this.timer = setInterval(() => {
      this.refresh().catch(this.onError);
    }, intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
