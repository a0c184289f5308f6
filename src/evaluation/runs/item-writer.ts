/**
 * Writes answers as they come, grouped: an answer that arrives while nothing is being written is
 * written at once, alone; those that arrive while a write is in flight go together in the next
 * transaction. At low load nothing waits; at high load one commit carries many answers (on
 * PostgreSQL a commit is a WAL flush, which would otherwise be paid once per item). An answer is
 * acknowledged only once it is committed, so what a killed process loses is what was being asked or
 * written at that instant — asked again on resume, like a call in flight.
 */
import type { ItemOutcome } from './run-records.ts';
import type { RunStore } from './run-store.ts';

export type ItemWrite =
  | { kind: 'answer'; runId: string; seq: number; outcome: ItemOutcome; conversation: boolean }
  | { kind: 'failure'; runId: string; seq: number; error: string; requestIds: string[] };

interface Pending {
  write: ItemWrite;
  resolve: (written: boolean) => void;
  reject: (error: unknown) => void;
}

/** The most answers one transaction carries. */
const MAX_BATCH = 256;

export class ItemWriter {
  private queue: Pending[] = [];
  private flushing = false;

  constructor(private readonly store: RunStore) {}

  /** Resolves once committed: true when written, false when the item had been answered already. */
  write(write: ItemWrite): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.queue.push({ write, resolve, reject });
      if (!this.flushing) {
        this.flushing = true;
        void this.flush();
      }
    });
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, MAX_BATCH);
      try {
        const now = Date.now();
        const written = await this.store.db.transaction(async (tx) => {
          const out: boolean[] = [];
          for (const { write: w } of batch) {
            if (w.kind === 'answer')
              out.push(await this.store.recordAnswer(w.runId, w.seq, w.outcome, now, w.conversation, tx));
            else {
              await this.store.recordFailure(w.runId, w.seq, w.error, w.requestIds, tx);
              out.push(true);
            }
          }
          return out;
        });
        for (let i = 0; i < batch.length; i++) batch[i]!.resolve(written[i]!);
      } catch (error) {
        for (const p of batch) p.reject(error);
      }
    }
    this.flushing = false;
  }
}
