import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Database } from '../storage/database.ts';

const SETTING = 'admin_token_sha256';

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

export interface AdminTokenCheck {
  verify(presented: string): boolean;
  /** Set only on the start that generated the token: to be printed once, then never again. */
  generated: string | undefined;
}

/**
 * The operator's bearer token. Given by KAIHUB_ADMIN_TOKEN, it is used as is; otherwise the first
 * start generates one and stores only its hash, and later starts verify against that hash.
 */
export async function loadAdminToken(db: Database, configured: string | undefined): Promise<AdminTokenCheck> {
  let generated: string | undefined;
  let expected: Buffer;
  if (configured) {
    expected = sha256(configured);
  } else {
    const row = await db.get<{ value: string }>('SELECT value FROM settings WHERE key = ?', [SETTING]);
    if (row) {
      expected = Buffer.from(row.value, 'hex');
    } else {
      generated = `kaihub-admin-${randomBytes(24).toString('base64url')}`;
      expected = sha256(generated);
      const inserted = await db.run(
        'INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING',
        [SETTING, expected.toString('hex'), Date.now()],
      );
      if (inserted === 0) {
        // another replica generated one at the same moment: theirs stands
        generated = undefined;
        const winner = await db.get<{ value: string }>('SELECT value FROM settings WHERE key = ?', [SETTING]);
        expected = Buffer.from(winner!.value, 'hex');
      }
    }
  }
  return {
    generated,
    verify: (presented) => timingSafeEqual(sha256(presented), expected),
  };
}
