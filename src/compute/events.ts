import type { SqlExecutor } from '../storage/database.ts';
import { newId } from '../storage/ids.ts';
import { iso } from './values.ts';

/**
 * An allocation's history (provisioned, a failed attempt and why, drift found and repaired, a warning,
 * reclaim…), kept so that what the scheduler did is visible beside what the hub decided.
 */
export interface ComputeEvent {
  id: string;
  allocationId: string | null;
  poolId: string | null;
  kind: string;
  detail: unknown;
  createdAt: string;
}

export async function recordEvent(
  db: SqlExecutor,
  e: { allocationId?: string | null; poolId?: string | null; kind: string; detail?: unknown },
  now: number,
): Promise<void> {
  await db.run(
    'INSERT INTO compute_events (id, allocation_id, pool_id, kind, detail, created_at) VALUES (?, ?, ?, ?, ?, ?)',
    [newId('gev'), e.allocationId ?? null, e.poolId ?? null, e.kind, JSON.stringify(e.detail ?? {}), now],
  );
}

export async function eventsOf(
  db: SqlExecutor,
  where: { allocationId?: string; poolId?: string },
  limit = 200,
): Promise<ComputeEvent[]> {
  const [column, value] =
    where.allocationId !== undefined
      ? ['allocation_id', where.allocationId]
      : ['pool_id', where.poolId ?? ''];
  const rows = await db.all(
    `SELECT id, allocation_id, pool_id, kind, detail, created_at FROM compute_events WHERE ${column} = ?
     ORDER BY created_at DESC, id DESC LIMIT ${limit}`,
    [value],
  );
  return rows.map((r) => ({
    id: r.id as string,
    allocationId: (r.allocation_id as string | null) ?? null,
    poolId: (r.pool_id as string | null) ?? null,
    kind: r.kind as string,
    detail: JSON.parse(r.detail as string),
    createdAt: iso(r.created_at)!,
  }));
}

/**
 * Tells an organisation through its event stream and webhooks (docs/billing.md "Alerts"): a
 * utilisation warning, a reclaim, an offer of freed GPUs. Once per `dedupeKey`.
 */
export async function notifyOrganization(
  db: SqlExecutor,
  organizationId: string,
  kind: string,
  dedupeKey: string,
  payload: unknown,
  now: number,
): Promise<void> {
  const id = newId('evt');
  const inserted = await db.all(
    `INSERT INTO organization_events (id, organization_id, kind, dedupe_key, payload_json, created_at)
     VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id`,
    [id, organizationId, kind, dedupeKey, JSON.stringify(payload), now],
  );
  if (inserted.length === 0) return;
  await db.run(
    `INSERT INTO webhook_deliveries (event_id, webhook_id, status, attempts, next_attempt_at)
     SELECT ?, id, 'pending', 0, ? FROM webhooks WHERE organization_id = ? AND disabled_at IS NULL`,
    [id, now, organizationId],
  );
}
