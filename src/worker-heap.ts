import v8 from 'node:v8';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * `npm start` gives node `--max-semi-space-size=16 --min-semi-space-size=16` for the request path on
 * the main thread (fewer scavenges at 1,000 requests/s; `start:throughput` lets it grow to 32, decision
 * 0037). V8's flags are process-wide, and they win over a worker's `resourceLimits`: every worker thread
 * started its young generation at 16 MB and could grow it to 2 × 32 MB, for a journal applier that allocates a few kilobytes a record (measured: 16 MB of
 * new space committed in the applier at idle, in a hub of 125–155 MB). A worker's heap is sized when
 * its isolate is created on its own thread, from the flags as they are then; so the semi-space flags
 * are set aside until the worker is online and put back as they were. The main isolate's heap was
 * sized at start and does not read them again (docs/decisions/0028-worker-young-generation.md).
 */
const SEMI_SPACE_FLAGS = ['max-semi-space-size', 'min-semi-space-size'] as const;

type SemiSpaceFlag = (typeof SEMI_SPACE_FLAGS)[number];

/** The semi-space flags node was started with (command line, then NODE_OPTIONS), as V8 has them. */
export function semiSpaceFlags(
  execArgv: readonly string[] = process.execArgv,
  nodeOptions: string | undefined = process.env.NODE_OPTIONS,
): Map<SemiSpaceFlag, string> {
  const found = new Map<SemiSpaceFlag, string>();
  // NODE_OPTIONS is applied before the command line, so the command line's value wins
  const args = [...(nodeOptions?.split(/\s+/).filter(Boolean) ?? []), ...execArgv];
  for (let i = 0; i < args.length; i++) {
    const m = /^--([a-z_-]+)(?:=(.*))?$/.exec(args[i]!);
    if (!m) continue;
    const name = m[1]!.replaceAll('_', '-');
    const flag = SEMI_SPACE_FLAGS.find((f) => f === name);
    if (flag === undefined) continue;
    const value = m[2] ?? args[++i];
    if (value !== undefined && /^\d+$/.test(value)) found.set(flag, value);
  }
  return found;
}

let starting = 0;
let held: Map<SemiSpaceFlag, string> | null = null;

/**
 * A worker thread whose young generation is V8's own default, or what `resourceLimits` says, rather
 * than the main thread's tuning. Several workers may start at once: the flags come back when the last
 * one is online (or failed before).
 */
export function startWorker(url: URL | string, options: WorkerOptions): Worker {
  const flags = held ?? semiSpaceFlags();
  if (flags.size === 0) return new Worker(url, options);
  if (starting === 0) {
    held = flags;
    for (const flag of flags.keys()) v8.setFlagsFromString(`--${flag}=0`);
  }
  starting++;
  let worker: Worker;
  try {
    worker = new Worker(url, options);
  } catch (error) {
    started();
    throw error;
  }
  let done = false;
  const once = (): void => {
    if (done) return;
    done = true;
    worker.off('online', once);
    worker.off('exit', once);
    started();
  };
  worker.once('online', once);
  worker.once('exit', once);
  return worker;
}

function started(): void {
  starting--;
  if (starting > 0 || held === null) return;
  for (const [flag, value] of held) v8.setFlagsFromString(`--${flag}=${value}`);
  held = null;
}
