import { createHmac, randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { AuditTrail } from '../audit/audit-log.ts';
import type { CredentialBox } from '../catalog/credentials.ts';
import { NotFoundError, ValidationError } from '../errors.ts';
import type { NetworkPolicy } from '../providers/network.ts';
import type { Database, SqlExecutor } from '../storage/database.ts';
import { newId } from '../storage/ids.ts';
import { parseInput } from '../validation.ts';

const webhookInput = z.strictObject({
  url: z.url({ protocol: /^https?$/ }).max(2000),
});

const eventsQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export interface Webhook {
  id: string;
  organizationId: string;
  url: string;
  createdAt: string;
  disabledAt: string | null;
}

export interface OrganizationEvent {
  id: string;
  kind: string;
  data: unknown;
  createdAt: string;
  deliveries: { webhookId: string; status: string; attempts: number; lastError: string | null }[];
}

/**
 * `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the webhook's secret>`: the receiver
 * recomputes it and refuses an old timestamp, so a captured delivery cannot be replayed later.
 */
export function signature(secret: string, body: string, unixSeconds: number): string {
  const mac = createHmac('sha256', secret).update(`${unixSeconds}.${body}`).digest('hex');
  return `t=${unixSeconds},v1=${mac}`;
}

const COLUMNS = 'id, organization_id, url, created_at, disabled_at';

function toWebhook(r: Record<string, unknown>): Webhook {
  return {
    id: r.id as string,
    organizationId: r.organization_id as string,
    url: r.url as string,
    createdAt: new Date(Number(r.created_at)).toISOString(),
    disabledAt:
      r.disabled_at === null || r.disabled_at === undefined
        ? null
        : new Date(Number(r.disabled_at)).toISOString(),
  };
}

/**
 * An organisation's webhooks and events (docs/billing.md#alerts). The URL is the organisation's: like a
 * supplier admin's deployment URL it must be https to a public address or a network the operator
 * allows (KAIHUB_SUPPLIER_NETWORKS), checked again at every delivery.
 */
export class WebhookService {
  constructor(
    private readonly db: Database,
    private readonly box: CredentialBox,
    private readonly networks: NetworkPolicy,
  ) {}

  async create(
    organizationId: string,
    input: unknown,
    trail: AuditTrail,
  ): Promise<Webhook & { secret: string }> {
    const v = parseInput(webhookInput, input);
    const problem = this.networks.urlProblem(v.url);
    if (problem) throw ValidationError.of('url', problem);
    const id = newId('whk');
    const secret = `whsec_${randomBytes(24).toString('base64url')}`;
    return this.db.transaction(async (tx) => {
      const org = await tx.get('SELECT id FROM organizations WHERE id = ?', [organizationId]);
      if (!org) throw new NotFoundError('organization', organizationId);
      await tx.run(
        'INSERT INTO webhooks (id, organization_id, url, secret_sealed, created_at) VALUES (?, ?, ?, ?, ?)',
        [id, organizationId, v.url, this.box.seal(secret), Date.now()],
      );
      const after = await this.get(id, tx);
      await trail(tx, { entityId: id, after });
      return { ...after, secret };
    });
  }

  async get(id: string, db: SqlExecutor = this.db): Promise<Webhook> {
    const row = await db.get(`SELECT ${COLUMNS} FROM webhooks WHERE id = ?`, [id]);
    if (!row) throw new NotFoundError('webhook', id);
    return toWebhook(row);
  }

  async list(organizationId: string): Promise<Webhook[]> {
    const rows = await this.db.all(
      `SELECT ${COLUMNS} FROM webhooks WHERE organization_id = ? ORDER BY created_at, id`,
      [organizationId],
    );
    return rows.map(toWebhook);
  }

  async disable(id: string, trail: AuditTrail): Promise<Webhook> {
    return this.db.transaction(async (tx) => {
      const before = await this.get(id, tx);
      await tx.run('UPDATE webhooks SET disabled_at = ? WHERE id = ? AND disabled_at IS NULL', [
        Date.now(),
        id,
      ]);
      // what was still to be sent to it is not
      await tx.run(
        "UPDATE webhook_deliveries SET status = 'failed', last_error = 'webhook disabled' WHERE webhook_id = ? AND status = 'pending'",
        [id],
      );
      const after = await this.get(id, tx);
      await trail(tx, { entityId: id, before, after });
      return after;
    });
  }

  async events(organizationId: string, query: unknown): Promise<OrganizationEvent[]> {
    const q = parseInput(eventsQuery, query);
    const rows = await this.db.all<{ id: string; kind: string; payload_json: string; created_at: number }>(
      `SELECT id, kind, payload_json, created_at FROM organization_events WHERE organization_id = ?
       ORDER BY created_at DESC, id DESC LIMIT ?`,
      [organizationId, q.limit],
    );
    const deliveries = new Map<string, OrganizationEvent['deliveries']>();
    if (rows.length > 0) {
      for (const d of await this.db.all<{
        event_id: string;
        webhook_id: string;
        status: string;
        attempts: number;
        last_error: string | null;
      }>(
        `SELECT event_id, webhook_id, status, attempts, last_error FROM webhook_deliveries
         WHERE event_id IN (${rows.map(() => '?').join(', ')}) ORDER BY webhook_id`,
        rows.map((r) => r.id),
      )) {
        const list = deliveries.get(d.event_id) ?? [];
        list.push({
          webhookId: d.webhook_id,
          status: d.status,
          attempts: Number(d.attempts),
          lastError: d.last_error,
        });
        deliveries.set(d.event_id, list);
      }
    }
    return rows.map((r) => ({
      id: r.id,
      kind: r.kind,
      data: JSON.parse(r.payload_json),
      createdAt: new Date(Number(r.created_at)).toISOString(),
      deliveries: deliveries.get(r.id) ?? [],
    }));
  }
}
