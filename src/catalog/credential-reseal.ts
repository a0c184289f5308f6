import type { AuditTrail } from '../audit/audit-log.ts';
import type { Database } from '../storage/database.ts';
import type { CredentialBox } from './credentials.ts';

export interface ResealReport {
  /** The key everything readable is now sealed under. */
  keyId: string;
  /** Deployments whose credential was sealed again under the current key. */
  resealed: { deploymentId: string; fromKeyId: string | null }[];
  /** How many were already sealed under the current key. */
  alreadyCurrent: number;
  /** Deployments whose credential no key opens: left as they are, for the operator to set anew. */
  unreadable: { deploymentId: string; keyId: string | null }[];
}

/**
 * Seals every stored supplier credential under the current key, deleted deployments' too (only then
 * can the old key be thrown away). Run it once every replica holds the new key: a replica that still
 * has only the old one cannot open what is re-sealed (its /readyz says so).
 */
export async function resealCredentials(
  db: Database,
  credentials: CredentialBox,
  trail: AuditTrail,
): Promise<ResealReport> {
  const rows = await db.all<{ id: string; api_key_sealed: string }>(
    'SELECT id, api_key_sealed FROM deployments WHERE api_key_sealed IS NOT NULL ORDER BY created_at, id',
  );
  const report: ResealReport = {
    keyId: credentials.currentKeyId,
    resealed: [],
    alreadyCurrent: 0,
    unreadable: [],
  };
  for (const row of rows) {
    const state = credentials.inspect(row.api_key_sealed);
    if (state.state === 'current') {
      report.alreadyCurrent++;
      continue;
    }
    if (state.state === 'unreadable') {
      report.unreadable.push({ deploymentId: row.id, keyId: state.keyId });
      continue;
    }
    const sealed = credentials.seal(credentials.open(row.api_key_sealed));
    // One transaction per credential, with its audit entry: a run stopped halfway leaves each
    // credential either re-sealed and recorded, or as it was.
    const changed = await db.transaction(async (tx) => {
      // Only if nobody changed it meanwhile: a key set since then is already sealed under the current key.
      const n = await tx.run(
        'UPDATE deployments SET api_key_sealed = ?, updated_at = ? WHERE id = ? AND api_key_sealed = ?',
        [sealed, Date.now(), row.id, row.api_key_sealed],
      );
      if (n > 0)
        await trail(tx, {
          entityId: row.id,
          before: { credential: { keyId: state.keyId } },
          after: { credential: { keyId: credentials.currentKeyId } },
        });
      return n;
    });
    if (changed === 0) continue;
    report.resealed.push({ deploymentId: row.id, fromKeyId: state.keyId });
  }
  return report;
}
