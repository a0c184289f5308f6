import type { TokenPrices } from '../billing/money.ts';
import type { UpstreamTarget } from '../providers/adapter.ts';
import { placementBits } from '../providers/features.ts';
import type { Database } from '../storage/database.ts';
import type { RoutingStrategy } from './catalog-records.ts';
import { CATALOG_REVISION_SETTING } from './catalog-service.ts';
import { type CredentialBox, CredentialError } from './credentials.ts';
import { inForce, type PriceRow, priceRows, tokenPrices } from './product-prices.ts';

/** setTimeout's longest delay; a change further away is re-armed for when this one fires. */
const MAX_TIMER_MS = 2_147_483_647;

export interface RoutableDeployment {
  id: string;
  adapter: string;
  baseUrl: string;
  /** Decrypted once per snapshot, kept only in memory. */
  apiKey: string | null;
  upstreamModel: string;
  weight: number;
  priority: number;
  /** What the adapter can express for this target (`providers/features.ts` bits), read once here. */
  features: number;
  /** Calls in flight this replica sends it at most (routing/load.ts); its own or the hub's default. */
  maxConcurrent: number;
  /** What the adapter is given for every call, built once per snapshot. */
  target: UpstreamTarget;
}

export interface RoutableProduct {
  id: string;
  model: string;
  displayName: string;
  supplierId: string;
  supplierName: string;
  modality: string;
  residency: string;
  contextWindow: number;
  createdAtSeconds: number;
  prices: TokenPrices;
  /** Public model ids to try, in order, when no deployment of this product could answer. */
  fallbackModels: readonly string[];
  /** How one priority tier's deployments are ordered: see routing/router.ts. */
  routingStrategy: RoutingStrategy;
  /** Active deployments, best priority (lowest number) first. */
  deployments: RoutableDeployment[];
}

/**
 * What the request path reads: active products of active suppliers by public model id, with their
 * deployments, in memory. Rebuilt at once after a change on this replica, and within
 * `pollIntervalMs` after a change on another (the catalog revision, one indexed row, tells).
 */
export interface SnapshotOptions {
  /** The feature bits the named adapter supports for a target (the adapter registry answers). */
  featuresOf(adapter: string, target: UpstreamTarget): number;
  /** A deployment's concurrency cap when it sets none. */
  defaultMaxConcurrent: number;
}

/** An active deployment left out of routing because no secret key the hub holds opens its credential. */
export interface UnreadableCredential {
  deploymentId: string;
  productId: string;
  keyId: string | null;
}

export class CatalogSnapshot {
  private products = new Map<string, RoutableProduct>();
  private unreadable: UnreadableCredential[] = [];
  private fingerprint = '';
  private timer: NodeJS.Timeout | undefined;
  private reloading: Promise<void> | undefined;
  private reloadAgain: Promise<void> | undefined;
  /** Scheduled price changes not yet in force, by model, soonest first (product_prices). */
  private pending = new Map<string, PriceRow[]>();
  private priceTimer: NodeJS.Timeout | undefined;
  /**
   * When the soonest pending change comes due. Lookups check it too: a timer fires on the event
   * loop's turn, after a call that arrived at or past the change may already have been admitted.
   */
  private nextDueAt = Number.POSITIVE_INFINITY;
  private stopped = false;

  constructor(
    private readonly db: Database,
    private readonly credentials: CredentialBox,
    private readonly options: SnapshotOptions,
    private readonly onError: (error: unknown) => void = () => {},
  ) {}

  byModel(model: string): RoutableProduct | undefined {
    if (Date.now() >= this.nextDueAt) this.applyDuePrices();
    return this.products.get(model);
  }

  all(): IterableIterator<RoutableProduct> {
    if (Date.now() >= this.nextDueAt) this.applyDuePrices();
    return this.products.values();
  }

  /** Shown by /readyz: otherwise the product would just vanish from /v1/models. */
  unreadableCredentials(): readonly UnreadableCredential[] {
    return this.unreadable;
  }

  start(pollIntervalMs = 1000): void {
    this.timer = setInterval(() => {
      this.refreshIfChanged().catch(this.onError);
    }, pollIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.priceTimer);
    this.priceTimer = undefined;
  }

  /**
   * Puts every scheduled price change that has come due into force, then waits for the next one. A
   * product whose price changes is replaced by a new object, never changed in place: a call holds the
   * product it was admitted with (its hold, its fallback decisions and its usage record all read
   * `product.prices`), so a change that comes due during a call does not touch it (docs/billing.md).
   * No catalog write and no query: every replica's snapshot does this on its own clock.
   */
  private applyDuePrices(): void {
    clearTimeout(this.priceTimer);
    this.priceTimer = undefined;
    const now = Date.now();
    let soonest = Number.POSITIVE_INFINITY;
    for (const [model, changes] of this.pending) {
      let due: PriceRow | undefined;
      while (changes.length > 0 && changes[0]!.effectiveFrom <= now) due = changes.shift();
      const product = this.products.get(model);
      if (due && product) this.products.set(model, withPrices(product, tokenPrices(due)));
      if (changes.length === 0) this.pending.delete(model);
      else soonest = Math.min(soonest, changes[0]!.effectiveFrom);
    }
    this.nextDueAt = soonest;
    if (soonest === Number.POSITIVE_INFINITY || this.stopped) return;
    this.priceTimer = setTimeout(
      () => {
        try {
          this.applyDuePrices();
        } catch (error) {
          this.onError(error);
        }
      },
      Math.min(Math.max(soonest - now, 0), MAX_TIMER_MS),
    );
    this.priceTimer.unref();
  }

  /**
   * Coalesces concurrent reloads: many admin edits in a burst cost one rebuild each way. A reload
   * asked for while one runs waits for it and then loads once more, because the running one may
   * have read the tables before the edit that asked.
   */
  reload(): Promise<void> {
    if (this.reloading) {
      this.reloadAgain ??= this.reloading
        .catch(() => {})
        .then(() => {
          this.reloadAgain = undefined;
          return this.reload();
        });
      return this.reloadAgain;
    }
    this.reloading = this.load().finally(() => {
      this.reloading = undefined;
    });
    return this.reloading;
  }

  private async currentFingerprint(): Promise<string> {
    const row = await this.db.get<{ value: string }>('SELECT value FROM settings WHERE key = ?', [
      CATALOG_REVISION_SETTING,
    ]);
    return row?.value ?? '';
  }

  private async refreshIfChanged(): Promise<void> {
    if ((await this.currentFingerprint()) !== this.fingerprint) await this.reload();
  }

  private async load(): Promise<void> {
    const fingerprint = await this.currentFingerprint();
    const products = await this.db.all<Record<string, unknown>>(
      `SELECT p.id, p.model, p.display_name, p.supplier_id, s.name AS supplier_name, p.modality, p.residency,
              p.context_window, p.created_at, p.fallback_models, p.routing_strategy,
              CAST(p.price_input_micro_per_1m AS TEXT) AS price_in, CAST(p.price_output_micro_per_1m AS TEXT) AS price_out
         FROM products p JOIN suppliers s ON s.id = p.supplier_id
        WHERE p.status = 'active' AND s.status = 'active'`,
    );
    const deployments = await this.db.all<Record<string, unknown>>(
      `SELECT id, product_id, adapter, base_url, api_key_sealed, upstream_model, weight, priority, max_concurrent,
        base_url_set_by, residency, csap_certified
         FROM deployments WHERE status = 'active' ORDER BY priority, created_at, id`,
    );
    const schedules = await priceRows(this.db);
    const now = Date.now();
    const pending = new Map<string, PriceRow[]>();
    const next = new Map<string, RoutableProduct>();
    const unreadable: UnreadableCredential[] = [];
    const byId = new Map<string, RoutableProduct>();
    for (const r of products) {
      const schedule = schedules.get(r.id as string) ?? [];
      const current = inForce(schedule, now);
      const later = schedule.filter((row) => row.effectiveFrom > now);
      if (later.length > 0) pending.set(r.model as string, later);
      // Keep the property order of withPrices(): one hidden class for every product (decision 0006).
      const product: RoutableProduct = {
        id: r.id as string,
        model: r.model as string,
        displayName: r.display_name as string,
        supplierId: r.supplier_id as string,
        supplierName: r.supplier_name as string,
        modality: r.modality as string,
        residency: r.residency as string,
        contextWindow: Number(r.context_window),
        createdAtSeconds: Math.floor(Number(r.created_at) / 1000),
        // A product with no history row (only ever inserted by hand) has its row's own price.
        prices: current
          ? tokenPrices(current)
          : {
              inputMicroPer1M: BigInt(r.price_in as string),
              outputMicroPer1M: BigInt(r.price_out as string),
            },
        fallbackModels: r.fallback_models ? (JSON.parse(r.fallback_models as string) as string[]) : [],
        routingStrategy: (r.routing_strategy as RoutingStrategy | null) ?? 'weighted',
        deployments: [],
      };
      next.set(product.model, product);
      byId.set(product.id, product);
    }
    for (const r of deployments) {
      const product = byId.get(r.product_id as string);
      if (!product) continue;
      let apiKey: string | null = null;
      if (r.api_key_sealed) {
        try {
          apiKey = this.credentials.open(r.api_key_sealed as string);
        } catch (error) {
          // A key sealed under another secret must not take the whole catalog down: skip that one,
          // and say so where an operator looks (/readyz, the deployment in the admin API).
          unreadable.push({
            deploymentId: r.id as string,
            productId: product.id,
            keyId: error instanceof CredentialError ? error.keyId : null,
          });
          this.onError(new Error(`deployment ${r.id as string}: cannot open its API key (${String(error)})`));
          continue;
        }
      }
      const target: UpstreamTarget = {
        deploymentId: r.id as string,
        baseUrl: r.base_url as string,
        apiKey,
        upstreamModel: r.upstream_model as string,
        publicOnly: r.base_url_set_by === 'supplier_admin',
      };
      product.deployments.push({
        id: r.id as string,
        adapter: r.adapter as string,
        baseUrl: r.base_url as string,
        apiKey,
        upstreamModel: r.upstream_model as string,
        weight: Number(r.weight),
        priority: Number(r.priority),
        features:
          this.options.featuresOf(r.adapter as string, target) |
          placementBits((r.residency as string | null) ?? product.residency, Number(r.csap_certified) === 1),
        maxConcurrent:
          r.max_concurrent === null || r.max_concurrent === undefined
            ? this.options.defaultMaxConcurrent
            : Number(r.max_concurrent),
        target,
      });
    }
    this.products = next;
    this.pending = pending;
    this.unreadable = unreadable;
    this.fingerprint = fingerprint;
    // Also puts in force what came due while this load ran, and re-arms the timer for the new schedule.
    this.applyDuePrices();
  }
}

/** The same product at other prices, a new object with the same shape (see applyDuePrices). */
function withPrices(p: RoutableProduct, prices: TokenPrices): RoutableProduct {
  return {
    id: p.id,
    model: p.model,
    displayName: p.displayName,
    supplierId: p.supplierId,
    supplierName: p.supplierName,
    modality: p.modality,
    residency: p.residency,
    contextWindow: p.contextWindow,
    createdAtSeconds: p.createdAtSeconds,
    prices,
    fallbackModels: p.fallbackModels,
    routingStrategy: p.routingStrategy,
    deployments: p.deployments,
  };
}
