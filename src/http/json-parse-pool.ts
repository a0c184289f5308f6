import { availableParallelism } from 'node:os';
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads';
import { JsonBodyFailure, type JsonLimitCode } from './json-limits.mjs';
import { DEFAULT_PIECE_WEIGHT, decodePiece, type Piece, PieceAssembler } from './json-pieces.mjs';

/**
 * Large request bodies are parsed off the event loop: decoding and parsing a 16 MB chat body held
 * every other request for 112–176 ms on a quiet machine and 0.5–0.8 s on a busy one
 * (docs/benchmarks.md, "Large request bodies: what a 16 MB body costs everyone else"). A few worker
 * threads, started on first use and stopped when idle, decode, parse and check a body and send it
 * back in pieces (json-pieces.mjs) that the event loop takes one per turn (docs/decisions/0012).
 */

/** What the event loop sends a worker. The chunks are transferred when they own their memory. */
export interface ParseJob {
  id: number;
  chunks: Uint8Array[];
  maxDepth: number;
  pieceWeight: number;
}

/** What a worker answers once every piece of the body is queued on its pieces port. */
export interface ParseJobResult {
  id: number;
  pieces: number;
  failure: { code: 'invalid_json' | JsonLimitCode; message: string; path: string | null } | null;
}

interface Job {
  resolve(value: Record<string, unknown> | JsonBodyFailure): void;
  reject(error: Error): void;
  remaining: number;
  assembler: PieceAssembler;
}

/** A worker stops after this long without a body to parse (and the next large body starts one). */
const IDLE_MS = 30_000;

class ParseWorker {
  readonly worker: Worker;
  private readonly pieces: MessagePort;
  readonly jobs = new Map<number, Job>();
  /** Jobs whose pieces are all queued, in the order the worker finished them. */
  private readonly ready: Job[] = [];
  private draining = false;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(private readonly onGone: (worker: ParseWorker) => void) {
    const { port1, port2 } = new MessageChannel();
    this.pieces = port1;
    this.worker = new Worker(new URL('./json-parse-worker.mjs', import.meta.url), {
      workerData: { pieces: port2 },
      transferList: [port2],
    });
    // an idle parser never keeps the process alive
    this.worker.unref();
    this.pieces.unref();
    this.worker.on('message', (result: ParseJobResult) => this.finished(result));
    this.worker.on('error', (error) => this.gone(error));
    this.worker.on('exit', (code) => this.gone(new Error(`JSON parse worker exited with code ${code}`)));
  }

  start(job: ParseJob, transfer: ArrayBuffer[], waiting: Job): void {
    clearTimeout(this.idleTimer);
    this.jobs.set(job.id, waiting);
    this.worker.postMessage(job, transfer);
  }

  private finished(result: ParseJobResult): void {
    const job = this.jobs.get(result.id);
    if (!job) return;
    this.jobs.delete(result.id);
    if (result.failure) {
      const { code, message, path } = result.failure;
      job.resolve(new JsonBodyFailure(code, message, path));
    } else {
      job.remaining = result.pieces;
      this.ready.push(job);
      if (!this.draining) {
        this.draining = true;
        setImmediate(this.drain);
      }
    }
    this.idleIfDone();
  }

  /** One piece per event-loop turn: the I/O of other requests runs between two pieces. */
  private readonly drain = (): void => {
    const job = this.ready[0];
    if (!job) {
      this.draining = false;
      return;
    }
    // the worker queues every piece before it reports, so they are all here
    const received = receiveMessageOnPort(this.pieces);
    if (!received) {
      this.gone(new Error('JSON parse worker reported pieces that never arrived'));
      return;
    }
    job.assembler.apply(decodePiece(received.message as Piece | string));
    if (--job.remaining === 0) {
      this.ready.shift();
      job.resolve(job.assembler.root as Record<string, unknown>);
      this.idleIfDone();
    }
    if (this.ready.length > 0) setImmediate(this.drain);
    else this.draining = false;
  };

  private idleIfDone(): void {
    if (this.jobs.size > 0 || this.ready.length > 0) return;
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      this.onGone(this);
      void this.worker.terminate();
    }, IDLE_MS);
    this.idleTimer.unref();
  }

  /** A crashed worker (out of memory, a bug) fails its own bodies only; the next one starts afresh. */
  private gone(error: Error): void {
    clearTimeout(this.idleTimer);
    this.onGone(this);
    for (const job of this.jobs.values()) job.reject(error);
    for (const job of this.ready) job.reject(error);
    this.jobs.clear();
    this.ready.length = 0;
    void this.worker.terminate();
  }
}

export class JsonParsePool {
  private readonly workers: ParseWorker[] = [];
  private nextId = 1;

  constructor(
    private readonly size = Math.max(1, Math.min(4, availableParallelism() - 1)),
    private readonly pieceWeight = DEFAULT_PIECE_WEIGHT,
  ) {}

  /** Parses the body held in `chunks` (which it may detach) as a JSON object within `maxDepth`. */
  parse(chunks: Buffer[], maxDepth: number): Promise<Record<string, unknown> | JsonBodyFailure> {
    const transfer = new Set<ArrayBuffer>();
    for (const chunk of chunks) {
      // a chunk that is the whole of its memory (what a socket read gives) moves without a copy
      const memory = chunk.buffer as ArrayBuffer;
      if (chunk.byteOffset === 0 && chunk.byteLength === memory.byteLength) transfer.add(memory);
    }
    const job: ParseJob = { id: this.nextId++, chunks, maxDepth, pieceWeight: this.pieceWeight };
    return new Promise((resolve, reject) => {
      this.pick().start(job, [...transfer], {
        resolve,
        reject,
        remaining: 0,
        assembler: new PieceAssembler(),
      });
    });
  }

  /** The least busy worker, or a new one while the pool is not full. */
  private pick(): ParseWorker {
    let best: ParseWorker | undefined;
    for (const w of this.workers) if (!best || w.jobs.size < best.jobs.size) best = w;
    if (best && (best.jobs.size === 0 || this.workers.length >= this.size)) return best;
    const worker = new ParseWorker((gone) => {
      const i = this.workers.indexOf(gone);
      if (i !== -1) this.workers.splice(i, 1);
    });
    this.workers.push(worker);
    return worker;
  }
}
