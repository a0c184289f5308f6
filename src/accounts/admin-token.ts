import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { SqlExecutor } from '../storage/database.ts';

const SETTING = 'admin_token_sha256';
/** How long a replica trusts the stored hash it read: a reset reaches every running replica this fast. */
const REFRESH_MS = 1_000;

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function newAdminToken(): string {
  return `kaihub-admin-${randomBytes(24).toString('base64url')}`;
}

export interface AdminTokenCheck {
  verify(presented: string): Promise<boolean>;
  /**
   * Stores the token this start generated, if it did, and returns it to be printed once; undefined
   * when there is nothing to print (configured, already stored, or another replica's stored first).
   * Called only once the hub listens: a start that cannot serve must not leave behind a token nobody saw.
   */
  commit(): Promise<string | undefined>;
}

/**
 * The operator's bearer token. Given by KAIHUB_ADMIN_TOKEN, it is used as is. Otherwise the stored
 * hash is the token; the first start that gets to listen generates one, stores only its hash, and
 * prints it. `kaihub admin-token reset` replaces the stored hash offline; running replicas re-read
 * it within a second.
 */
export async function loadAdminToken(
  db: SqlExecutor,
  configured: string | undefined,
): Promise<AdminTokenCheck> {
  if (configured) {
    const expected = sha256(configured);
    return {
      verify: async (presented) => timingSafeEqual(sha256(presented), expected),
      commit: async () => undefined,
    };
  }
  const readStored = async () => {
    const row = await db.get<{ value: string }>('SELECT value FROM settings WHERE key = ?', [SETTING]);
    return row ? Buffer.from(row.value, 'hex') : undefined;
  };
  let expected = await readStored();
  let generated = expected ? undefined : newAdminToken();
  let readAt = Date.now();
  let refreshing: Promise<void> | undefined;
  const refresh = () => {
    refreshing ??= readStored()
      .then((stored) => {
        if (stored) expected = stored;
        readAt = Date.now();
      })
      .finally(() => {
        refreshing = undefined;
      });
    return refreshing;
  };
  return {
    async verify(presented) {
      if (generated) return timingSafeEqual(sha256(presented), sha256(generated));
      if (Date.now() - readAt > REFRESH_MS) await refresh();
      return expected !== undefined && timingSafeEqual(sha256(presented), expected);
    },
    async commit() {
      if (!generated) return undefined;
      const token = generated;
      const inserted = await db.run(
        'INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING',
        [SETTING, sha256(token).toString('hex'), Date.now()],
      );
      generated = undefined;
      // Another replica stored its token at the same moment: theirs stands, and they print it.
      await refresh();
      return inserted === 1 ? token : undefined;
    },
  };
}

/** Replaces the stored operator token with a new one and returns it (shown once by the caller). */
export async function resetAdminToken(db: SqlExecutor): Promise<string> {
  const token = newAdminToken();
  await db.run(
    `INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)
     ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
    [SETTING, sha256(token).toString('hex'), Date.now()],
  );
  return token;
}
