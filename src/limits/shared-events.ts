import type { Redis } from 'ioredis';
import type { Logger } from '../observability/logger.ts';

/** What a replica does when another (or itself) tells of a change; each handler is cheap and sync. */
export interface SharedEventHandlers {
  keyRevoked(keyHash: string): void;
  /** Suspended, reactivated, spend mode or limits changed: its keys and its funds are read again. */
  organizationChanged(organizationId: string): void;
  /** A deposit or a voucher: its funds are read again. */
  fundsChanged(organizationId: string): void;
}

/**
 * Changes every replica must act on at once, over Redis pub/sub: a revoked key, a suspended
 * organisation, new funds. Published after the database commit; the KeyCache poll stays as the
 * fallback for a message lost while Redis was unreachable (pub/sub keeps nothing for later).
 */
export class SharedEvents {
  private readonly channel: string;

  constructor(
    private readonly publisher: Redis,
    /** A connection of its own: a subscribed connection can do nothing else. */
    private readonly subscriber: Redis,
    prefix: string,
    private readonly handlers: SharedEventHandlers,
    private readonly logger: Logger,
  ) {
    this.channel = `${prefix}events`;
    this.onMessage = this.onMessage.bind(this);
    this.onPublishError = this.onPublishError.bind(this);
  }

  async start(): Promise<void> {
    this.subscriber.on('message', this.onMessage);
    // ioredis subscribes again by itself after a reconnection
    await this.subscriber.subscribe(this.channel);
  }

  keyRevoked(keyHash: string): void {
    this.publish(`k:${keyHash}`);
  }

  organizationChanged(organizationId: string): void {
    this.publish(`o:${organizationId}`);
  }

  fundsChanged(organizationId: string): void {
    this.publish(`f:${organizationId}`);
  }

  private publish(message: string): void {
    this.publisher.publish(this.channel, message).catch(this.onPublishError);
  }

  private onPublishError(error: unknown): void {
    this.logger.warn(
      { err: error },
      'shared events: publish failed; other replicas learn of it by their poll',
    );
  }

  private onMessage(channel: string, message: string): void {
    if (channel !== this.channel) return;
    const id = message.slice(2);
    switch (message.slice(0, 2)) {
      case 'k:':
        this.handlers.keyRevoked(id);
        break;
      case 'o:':
        this.handlers.organizationChanged(id);
        break;
      case 'f:':
        this.handlers.fundsChanged(id);
        break;
    }
  }
}
