/**
 * Where a run's work goes once it is created: the hub's own in-process queue, or (with `REDIS_URL`)
 * BullMQ, served by any number of `kaihub eval worker` processes.
 */
export interface EvaluationJobs {
  readonly kind: 'hub' | 'bullmq';
  /** Work on the run's items; a run already queued or being worked on here is not queued twice. */
  enqueue(run: { id: string; itemCount: number }): Promise<void>;
  close(): Promise<void>;
}
