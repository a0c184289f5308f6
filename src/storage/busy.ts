// Its own module, not database.ts: the journal applier's bundle takes sqlite.ts and what it imports,
// and must not take database.ts's engine loading (and pg) with it.

/**
 * How long a write waits for a lock another connection or session holds before it is refused
 * (`StorageBusyError`, 503 `storage_busy`): the same on both engines unless an operator says otherwise
 * (KAIHUB_DATABASE_LOCK_WAIT_MS). Long enough for any transaction of the hub's own to finish.
 */
export const DEFAULT_LOCK_WAIT_MS = 5000;

/**
 * The database did not give a transaction the lock it needed within its wait: another connection held
 * it (on SQLite the journal applier, or another process, past `lockWaitMs`). The transaction never
 * began, so nothing of it was applied, and the same request may be sent again. `code` and the message
 * are the driver's (`SQLITE_BUSY`, "database is locked").
 */
export class StorageBusyError extends Error {
  override name = 'StorageBusyError';
  readonly code: string | undefined;
  constructor(cause: unknown) {
    super((cause as Error | null)?.message ?? String(cause), { cause });
    this.code = (cause as { code?: string } | null)?.code;
  }
}

/**
 * A lock not had in time, whichever engine refused it: SQLite's `StorageBusyError`, or PostgreSQL's
 * lock_not_available (55P03, a `lock_timeout` or `NOWAIT`, which undoes the statement and aborts its
 * transaction). The caller may answer "busy, try again" rather than "internal error". A `SQLITE_BUSY`
 * from anywhere else (a read in autocommit after a write committed) is not one: whether anything was
 * applied is then unknown.
 */
export function isStorageBusy(error: unknown): boolean {
  return error instanceof StorageBusyError || (error as { code?: unknown } | null)?.code === '55P03';
}
