/**
 * What a round needs of a suite run (the evaluation runs of src/evaluation/runs/, when this hub has
 * them): a score given as a run id is filled in from it and checked against it. Only a completed run
 * counts.
 */
export interface RunSummary {
  runId: string;
  status: string;
  suiteHash: string | null;
  /** The catalogue product the run asked: a team's score must come from the team's own product. */
  productId: string;
  model: string;
  /** The run's overall score on the suite's own scale (accuracy 0–1, a judge's scale); null: none. */
  score: number | null;
  stderr: number | null;
  n: number;
  unparsed: number;
}

export interface RunResults {
  get(runId: string): Promise<RunSummary | undefined>;
}

/**
 * The runs' store as far as a round reads it (the shape of src/evaluation/runs/run-store.ts's
 * `RunRecord`), so the composition root wires `runResultsFrom(runStore)` without this folder
 * depending on the runner.
 */
export interface RunRecordLike {
  id: string;
  productId: string;
  model: string;
  status: string;
  suite: { hash: string };
  result: { overall: { score: number | null; stderr: number | null; n: number; unparsed: number } } | null;
}

export function runResultsFrom(store: { get(id: string): Promise<RunRecordLike | undefined> }): RunResults {
  return {
    async get(runId) {
      const run = await store.get(runId);
      if (!run) return undefined;
      const overall = run.result?.overall;
      return {
        runId: run.id,
        status: run.status,
        suiteHash: run.suite.hash,
        productId: run.productId,
        model: run.model,
        score: overall?.score ?? null,
        stderr: overall?.stderr ?? null,
        n: overall?.n ?? 0,
        unparsed: overall?.unparsed ?? 0,
      };
    },
  };
}
