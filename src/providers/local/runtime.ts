import { access } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import type {
  Llama,
  LlamaChat,
  LlamaContext,
  LlamaContextSequence,
  LlamaEmbeddingContext,
  LlamaModel,
} from 'node-llama-cpp';
import { abortedCallError } from '../abort.ts';
import { UpstreamError } from '../adapter.ts';

export interface LocalRuntimeOptions {
  /** Folder holding the GGUF files; a deployment's `upstreamModel` is a file name inside it. */
  modelsDir: string;
  /** CPU threads per model context (1 is fastest on small machines; see the README). */
  threads: number;
  /** Sequences per model: how many requests one model serves at the same time; the rest queue. */
  parallel: number;
  /** Upper bound of the context per sequence; the model's own training context if smaller. */
  maxContextSize?: number;
}

/** One sequence of a model's context with the chat bound to it. */
export interface Slot {
  sequence: LlamaContextSequence;
  chat: LlamaChat;
}

/**
 * A loaded model: one context with `parallel` sequences, handed out first come first served, so a
 * model never evaluates more than `parallel` requests at once and the others wait in order.
 */
export class LoadedModel {
  private readonly free: Slot[];
  private readonly waiting: { resolve(slot: Slot): void; reject(error: unknown): void }[] = [];
  private embedding: Promise<LlamaEmbeddingContext> | null = null;

  constructor(
    readonly model: LlamaModel,
    readonly context: LlamaContext,
    slots: Slot[],
    private readonly threads: number,
  ) {
    this.free = slots;
  }

  get contextSize(): number {
    return this.context.contextSize;
  }

  /**
   * Waits for a free sequence; gives up (without taking one) when `signal` aborts first, with the
   * error its reason calls for (`abortedCallError`).
   */
  acquire(signal: AbortSignal): Promise<Slot> {
    const slot = this.free.shift();
    if (slot) return Promise.resolve(slot);
    return new Promise<Slot>((resolvePromise, reject) => {
      const entry = {
        resolve: (s: Slot) => {
          signal.removeEventListener('abort', onAbort);
          resolvePromise(s);
        },
        reject,
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(entry);
        if (i >= 0) this.waiting.splice(i, 1);
        // the hub's time-out (504 for a client still waiting) or the client gone, as the reason says
        reject(abortedCallError(signal));
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(entry);
    });
  }

  release(slot: Slot): void {
    const next = this.waiting.shift();
    if (next) next.resolve(slot);
    else this.free.push(slot);
  }

  get queued(): number {
    return this.waiting.length;
  }

  embeddingContext(): Promise<LlamaEmbeddingContext> {
    this.embedding ??= this.model.createEmbeddingContext({ threads: this.threads });
    return this.embedding;
  }
}

/**
 * node-llama-cpp in-process: the binding is imported on first use (a hub without local deployments
 * never loads it), models are loaded lazily on their first request and kept.
 */
export class LocalRuntime {
  private llama: Promise<Llama> | null = null;
  private readonly models = new Map<string, Promise<LoadedModel>>();

  constructor(readonly options: LocalRuntimeOptions) {}

  /** The file of a deployment's `upstreamModel`: a plain name inside the models folder, nothing else. */
  modelPath(upstreamModel: string): string {
    if (basename(upstreamModel) !== upstreamModel || upstreamModel.startsWith('.'))
      throw new UpstreamError(
        'http',
        `local model "${upstreamModel}" must be a file name in the models folder`,
        {
          status: 400,
          type: 'invalid_request_error',
        },
      );
    return join(resolve(this.options.modelsDir), upstreamModel);
  }

  private getLlama(): Promise<Llama> {
    this.llama ??= (async () => {
      const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
      // CPU only, prebuilt binary only: never build or download anything at run time
      return getLlama({
        gpu: false,
        build: 'never',
        progressLogs: false,
        logLevel: LlamaLogLevel.error,
        maxThreads: this.options.threads,
      });
    })();
    this.llama.catch(() => {
      this.llama = null;
    });
    return this.llama;
  }

  model(upstreamModel: string): Promise<LoadedModel> {
    const path = this.modelPath(upstreamModel);
    let loaded = this.models.get(path);
    if (!loaded) {
      loaded = this.load(path);
      this.models.set(path, loaded);
      // a failed load is not cached: the file may be copied in later
      loaded.catch(() => this.models.delete(path));
    }
    return loaded;
  }

  private async load(path: string): Promise<LoadedModel> {
    try {
      await access(path);
    } catch {
      throw new UpstreamError('connect', `local model file not found: ${basename(path)}`);
    }
    const llama = await this.getLlama();
    const { LlamaChat } = await import('node-llama-cpp');
    try {
      const model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
      const parallel = this.options.parallel;
      const contextSize = Math.min(model.trainContextSize, this.options.maxContextSize ?? 4096);
      const context = await model.createContext({
        sequences: parallel,
        contextSize,
        threads: this.options.threads,
      });
      const slots: Slot[] = [];
      for (let i = 0; i < parallel; i++) {
        const sequence = context.getSequence();
        slots.push({ sequence, chat: new LlamaChat({ contextSequence: sequence }) });
      }
      return new LoadedModel(model, context, slots, this.options.threads);
    } catch (error) {
      throw new UpstreamError('connect', `local model ${basename(path)} failed to load: ${String(error)}`);
    }
  }

  async close(): Promise<void> {
    const llama = this.llama;
    this.models.clear();
    this.llama = null;
    if (llama) await (await llama.catch(() => null))?.dispose();
  }
}
