import type { Dispatcher } from 'undici';
import { request } from 'undici';
import type { CredentialBox } from '../catalog/credentials.ts';
import type { Logger } from '../observability/logger.ts';
import type { Database } from '../storage/database.ts';
import { signature } from './webhooks.ts';

export interface DispatcherSettings {
  /** How often due deliveries are looked for. */
  intervalMs: number;
  /** The first retry's delay; each later one doubles it, up to an hour. */
  retryBaseMs: number;
  /** Attempts before a delivery is given up (`failed`). */
  maxAttempts: number;
  timeoutMs: number;
}

export const DEFAULT_DISPATCHER_SETTINGS: DispatcherSettings = {
  intervalMs: 1000,
  retryBaseMs: 5000,
  maxAttempts: 10,
  timeoutMs: 10_000,
};

const MAX_BACKOFF_MS = 3600_000;
const BATCH = 50;
/** Deliveries under way at once on one replica. */
const SENDERS = 8;

interface Due {
  event_id: string;
  webhook_id: string;
  attempts: number;
  next_attempt_at: number;
  url: string;
  secret_sealed: string;
  organization_id: string;
  kind: string;
  payload_json: string;
  created_at: number;
}

/**
 * Sends organisation events to their webhooks, off the request path: a timer looks for due deliveries,
 * claims each (so two replicas do not both send it), POSTs the signed body through the pool that only
 * connects where the operator allows, and on failure retries with exponential backoff. Delivery is at
 * least once: a receiver dedupes by the `x-kaihub-event-id` header.
 */
export class WebhookDispatcher {
  private timer: NodeJS.Timeout | undefined;
  /** The pass looking for due deliveries and claiming them (one at a time). */
  private running: Promise<void> | undefined;
  /** Deliveries under way: a pass does not wait for them, so a hung receiver holds one sender only. */
  private readonly sending = new Set<Promise<void>>();
  private stopped = false;

  constructor(
    private readonly db: Database,
    private readonly box: CredentialBox,
    private readonly pool: Dispatcher,
    private readonly logger: Logger,
    private readonly settings: DispatcherSettings = DEFAULT_DISPATCHER_SETTINGS,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      this.running ??= this.claimDue(Date.now())
        .then(() => {})
        .catch((error: unknown) => {
          // the database is down or closing: the deliveries stay due, the next pass tries again
          if (!this.stopped) this.logger.warn({ err: error }, 'webhook dispatch failed');
        })
        .finally(() => {
          this.running = undefined;
        });
    }, this.settings.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running;
    await Promise.all(this.sending);
  }

  /** One pass: every due delivery there is room for, claimed and sent. Exposed for tests. */
  async tick(now = Date.now()): Promise<void> {
    await Promise.all(await this.claimDue(now));
  }

  /**
   * Claims due deliveries, up to `SENDERS` under way at once, and starts sending them; resolves with
   * the deliveries it started once they are claimed, without waiting for the receivers.
   */
  private async claimDue(now: number): Promise<Promise<void>[]> {
    const room = SENDERS - this.sending.size;
    if (room <= 0) return [];
    const due = await this.db.all<Due>(
      `SELECT d.event_id, d.webhook_id, d.attempts, d.next_attempt_at, w.url, w.secret_sealed, e.organization_id,
         e.kind, e.payload_json, e.created_at
       FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id JOIN organization_events e ON e.id = d.event_id
       WHERE d.status = 'pending' AND d.next_attempt_at <= ? ORDER BY d.next_attempt_at LIMIT ${Math.min(room, BATCH)}`,
      [now],
    );
    const started: Promise<void>[] = [];
    for (const d of due) {
      if (this.stopped) break;
      // the claim: pushes the next attempt past this one's timeout, counted from now (not from the
      // pass's start); another replica's claim wins or loses whole
      const until = Math.max(now, Date.now()) + this.settings.timeoutMs * 2;
      const claimed = await this.db.run(
        `UPDATE webhook_deliveries SET next_attempt_at = ? WHERE event_id = ? AND webhook_id = ?
         AND status = 'pending' AND next_attempt_at = ?`,
        [until, d.event_id, d.webhook_id, Number(d.next_attempt_at)],
      );
      if (claimed === 0) continue;
      const delivery: Promise<void> = this.deliver(d)
        .catch((error: unknown) => {
          // recording the outcome failed (the database is down): the claim runs out and it is sent again
          if (!this.stopped) this.logger.warn({ err: error }, 'webhook delivery not recorded');
        })
        .finally(() => this.sending.delete(delivery));
      this.sending.add(delivery);
      started.push(delivery);
    }
    return started;
  }

  private async deliver(d: Due): Promise<void> {
    const body = JSON.stringify({
      id: d.event_id,
      type: d.kind,
      organizationId: d.organization_id,
      createdAt: new Date(Number(d.created_at)).toISOString(),
      data: JSON.parse(d.payload_json),
    });
    let error: string | null = null;
    try {
      const secret = this.box.open(d.secret_sealed);
      const res = await request(d.url, {
        method: 'POST',
        dispatcher: this.pool,
        headers: {
          'content-type': 'application/json',
          'user-agent': 'kaihub-webhooks/1',
          'x-kaihub-event-id': d.event_id,
          'x-kaihub-signature': signature(secret, body, Math.floor(Date.now() / 1000)),
        },
        body,
        headersTimeout: this.settings.timeoutMs,
        bodyTimeout: this.settings.timeoutMs,
      });
      await res.body.dump();
      if (res.statusCode < 200 || res.statusCode >= 300) error = `HTTP ${res.statusCode}`;
    } catch (e) {
      error = String((e as Error)?.message ?? e).slice(0, 300);
    }
    const attempts = Number(d.attempts) + 1;
    if (error === null) {
      await this.db.run(
        `UPDATE webhook_deliveries SET status = 'delivered', attempts = ?, delivered_at = ?, last_error = NULL
         WHERE event_id = ? AND webhook_id = ?`,
        [attempts, Date.now(), d.event_id, d.webhook_id],
      );
      return;
    }
    const failed = attempts >= this.settings.maxAttempts;
    const delay = Math.min(this.settings.retryBaseMs * 2 ** (attempts - 1), MAX_BACKOFF_MS);
    await this.db.run(
      `UPDATE webhook_deliveries SET status = ?, attempts = ?, next_attempt_at = ?, last_error = ?
       WHERE event_id = ? AND webhook_id = ?`,
      [failed ? 'failed' : 'pending', attempts, Date.now() + delay, error, d.event_id, d.webhook_id],
    );
    if (failed)
      this.logger.warn({ eventId: d.event_id, webhookId: d.webhook_id, error }, 'webhook delivery given up');
  }
}
