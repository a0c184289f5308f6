import type { Redis } from 'ioredis';
import type { CallerRateLimits } from '../accounts/key-cache.ts';
import { accountId, voucherShare } from '../billing/ledger.ts';
import type { MicroKrw } from '../billing/money.ts';
import type { UsageRecord } from '../billing/usage-journal.ts';
import type { RoutableProduct } from '../catalog/catalog-snapshot.ts';
import type { Logger } from '../observability/logger.ts';
import { ReportThrottle } from '../observability/report-throttle.ts';
import type { Database } from '../storage/database.ts';
import type {
  Admission,
  AdmissionDecision,
  AdmissionRefusal,
  AdmissionRequest,
  AdmissionTicket,
} from './admission.ts';
import {
  extraHold,
  insufficient,
  type OrganizationFunds,
  readOrganizationFunds,
  type VoucherFunds,
  voucherPart,
  voucherRefusal,
  walletRefusal,
  worstCaseOf,
} from './budget-holds.ts';
import { Bucket, headersOfLevels, type Kind, rateRefusal, type Scope } from './rate-limits.ts';
import { runScript } from './redis-connection.ts';
import { SCRIPTS } from './redis-scripts.ts';
import {
  Allowance,
  type AllowanceOwner,
  type AllowanceReturn,
  type AllowanceSettings,
  DEFAULT_ALLOWANCE_SETTINGS,
} from './shared-allowances.ts';

/**
 * Rate limits and budget holds shared by every replica through Redis (decision 0019, docs/billing.md
 * "Several replicas"). The same rules as the in-memory `RateLimits` and `BudgetHolds`, but the buckets
 * and the accounts' counters live in Redis, and one Lua script checks and takes all of them at once:
 * one round trip per admission and at most one per settle, and none at all for a caller with neither
 * limits nor prepaid funds nor vouchers (the common postpaid case stays in memory).
 *
 * What a replica keeps in memory is what rarely changes: an organisation's spend mode and its vouchers'
 * terms, read from the database on first use and again when told of a change (pub/sub,
 * `shared-events.ts`). The ledger stays the truth: it never lets a voucher go below zero whatever
 * the counters say.
 */

/** Lua numbers are doubles: amounts beyond this are not exact there. */
const MAX_EXACT = BigInt(Number.MAX_SAFE_INTEGER);
const STALE_RETRIES = 3;

export interface SharedLimitsSettings {
  /** Prefix of every key and of the pub/sub channel (several hubs, or tests, on one Redis). */
  prefix: string;
  /** How long a hold lives unless settled: the longest a call can take, plus a margin. */
  leaseMs: number;
  /** Allowances (decision 0027); `maxCalls` below 2 turns them off: one script per call. */
  allowances?: Partial<AllowanceSettings>;
}

/** An organisation as this replica knows it, with its Redis keys. */
export class SharedFunds {
  readonly holdsKey: string;
  readonly holdKey: string;
  readonly verKey: string;
  readonly ivKey: string;
  readonly counterPrefix: string;
  readonly walletKey: string;
  constructor(
    readonly funds: OrganizationFunds,
    /** `ver` of each account when the balances were read; null: unknown (Redis was unreachable). */
    readonly versions: Record<string, string> | null,
    readonly base: string,
    /** When the versions were read (this replica's clock). */
    readonly readAt: number,
  ) {
    this.holdsKey = `${base}holds`;
    this.holdKey = `${base}hold`;
    this.verKey = `${base}ver`;
    this.ivKey = `${base}iv`;
    this.counterPrefix = `${base}a:`;
    this.walletKey = `${base}a:${funds.wallet.id}`;
  }
  versionOf(account: string): string {
    if (this.versions === null) return 'unknown';
    return this.versions[account] ?? '0';
  }
}

/** A caller's buckets for one call, in the order their refusals are reported. */
interface BucketUse {
  key: string;
  capacity: number;
  amount: number;
  scope: Scope;
  kind: Kind;
}

function exact(amount: MicroKrw): string {
  return (amount > MAX_EXACT ? MAX_EXACT : amount).toString();
}

/** Admitted with nothing held and no limit: a postpaid organisation without vouchers or limits. */
const FREE: AdmissionDecision = { admitted: true, ticket: { voucherId: null, settle() {}, release() {} } };

const UNAVAILABLE: AdmissionRefusal = {
  status: 503,
  code: 'limits_unavailable',
  type: 'service_unavailable',
  retryAfterSeconds: 1,
  message:
    '예산 확인을 지금 할 수 없습니다(Redis 연결 불가). 잠시 후 다시 시도하세요. / ' +
    'Budget checks are unavailable right now (Redis unreachable); please retry shortly.',
};

/** A settle script's keys and arguments, kept until Redis confirms it. */
interface UnsentSettle {
  readonly keys: string[];
  readonly args: (string | number)[];
  /** Sent again until then (before its hold's lease ends); 0: never (no hold). */
  readonly until: number;
  sending: boolean;
}

/**
 * How long before its lease a hold's settle stops being sent again (the hub's and Redis's clocks
 * differ): 10 s, or a quarter of a shorter lease.
 */
const resendMarginMs = (leaseMs: number): number => Math.min(10_000, leaseMs / 4);

/**
 * Redis's refusals of a command it did not run (a busy script, a restart loading its data, a replica,
 * memory, a cluster moving): a settle refused so is sent again. Any other reply error is the script's
 * own, which would fail again.
 */
const NOT_RUN = /^(BUSY|LOADING|READONLY|MASTERDOWN|OOM|TRYAGAIN|CLUSTERDOWN|NOREPLICAS)\b/;

/** The settle script's argument (ARGV[8]) telling it a copy may have run before: '1' when sent again. */
const SETTLE_RESENT = 7;

class SharedTicket implements AdmissionTicket {
  private open = true;
  constructor(
    readonly owner: SharedAdmission,
    readonly shared: SharedFunds,
    readonly holdId: string,
    readonly voucher: VoucherFunds | null,
    public voucherHeld: MicroKrw,
    public walletHeld: MicroKrw,
    readonly request: AdmissionRequest,
    /** Token buckets to correct when the call ends; null: none. */
    readonly tokenBuckets: string[] | null,
    readonly tokens: number,
    readonly responseHeaders: Readonly<Record<string, string>> | null,
    /** Until when a settle Redis did not answer is sent again: 0 without a hold (SharedAdmission.sendSettle). */
    readonly resendUntil: number,
  ) {}

  get voucherId(): string | null {
    return this.voucher?.id ?? null;
  }

  reroute(product: RoutableProduct): AdmissionRefusal | null {
    return this.owner.reroute(this, product);
  }

  settle(record: UsageRecord): void {
    if (!this.open) return;
    this.open = false;
    const cost = record.costMicroKrw > 0n ? record.costMicroKrw : 0n;
    const share = voucherPart(this.voucher, record, cost);
    const tokens = this.tokens - (record.promptTokens + record.completionTokens);
    if (this.holdId === '' || cost === 0n) {
      this.owner.finish(this, share, cost, tokens);
      return;
    }
    // The hold turns into the charge only once the charge is in the ledger (decision 0021: on
    // PostgreSQL it is posted just after the record). Settled earlier, a replica initialising a counter
    // from the ledger in between would count neither the hold nor the charge: richer than the truth.
    this.owner.charged(record.requestId).then(
      () => this.owner.finish(this, share, cost, tokens),
      () => {}, // never rejects; a charge that cannot be posted leaves the hold to its lease
    );
  }

  release(): void {
    if (!this.open) return;
    this.open = false;
    this.owner.finish(this, 0n, 0n, this.tokens);
  }
}

export class SharedAdmission implements Admission, AllowanceOwner {
  private readonly organizations = new Map<string, SharedFunds>();
  /** Allowances admitting calls, by organisation, key and product. */
  private readonly allowances = new Map<string, Allowance>();
  /** Retired allowances whose calls are still running or whose charges are not in the ledger yet. */
  private readonly draining = new Set<Allowance>();
  /** Settles Redis has not confirmed, sent again by the sweeper (sendSettle). */
  private readonly unsettled = new Set<UnsentSettle>();
  /** A PING asked before the unconfirmed settles are sent again (resendUnsettled). */
  private probing = false;
  private closed = false;
  /** When each organisation, key and product last asked: a second ask within a slice takes an allowance. */
  private readonly recent = new Map<string, number>();
  /** Calls' worth the next allowance of each asks for. */
  private readonly sizes = new Map<string, number>();
  private readonly leasing = new Set<string>();
  /** Organisations refused lately, and until when they are decided call by call. */
  private readonly scarce = new Map<string, number>();
  private readonly allowanceSettings: AllowanceSettings;
  private sweeper: NodeJS.Timeout | null = null;
  private readonly loading = new Map<string, Promise<SharedFunds>>();
  private readonly idleTtlMs: number;
  private readonly maxReadAgeMs: number;
  /** Redis failures: one line a second at most, with how many failed since. */
  private readonly failureReports = new ReportThrottle(1000);

  constructor(
    private readonly redis: Redis,
    private readonly db: Database,
    /** Resolves once every usage record written so far is in the ledger (UsageJournal.sync). */
    private readonly synced: () => Promise<void>,
    private readonly settings: SharedLimitsSettings,
    private readonly logger: Logger,
    /** Resolves once this call's charge is in the ledger (UsageJournal.whenCharged). */
    readonly charged: (requestId: string) => Promise<void> = async () => {},
  ) {
    // a counter outlives every hold on it: it can only expire when no live hold is left
    this.idleTtlMs = settings.leaseMs * 2 + 60_000;
    // A read may initialise a missing counter only while younger than a counter's idle life: charges
    // the counters absorbed since the read do not change versions, but they keep the counters alive
    // for that long, so a counter missing now cannot have absorbed any charge after a younger read.
    this.maxReadAgeMs = Math.floor(this.idleTtlMs / 2);
    this.onError = this.onError.bind(this);
    const allowances = { ...DEFAULT_ALLOWANCE_SETTINGS, ...settings.allowances };
    allowances.firstCalls = Math.min(allowances.firstCalls, allowances.maxCalls);
    this.allowanceSettings = allowances;
  }

  admit(request: AdmissionRequest): AdmissionDecision | Promise<AdmissionDecision> {
    const shared = this.organizations.get(request.caller.organizationId);
    if (shared !== undefined) {
      if (Date.now() - shared.readAt < this.maxReadAgeMs) return this.decide(request, shared, 0);
      this.forget(request.caller.organizationId);
    }
    return this.loadAndDecide(request);
  }

  /** The organisation's deposits, vouchers or spend mode changed: read them again at its next call. */
  forget(organizationId: string): void {
    this.organizations.delete(organizationId);
    this.loading.delete(organizationId);
    this.retireAll(organizationId);
  }

  /** Every allowance retires and gives back what it can; resolves once all have (at most `ms`). */
  async close(ms = 2_000): Promise<void> {
    this.retireAll(null);
    const until = Date.now() + ms;
    while ((this.draining.size > 0 || this.unsettled.size > 0) && Date.now() < until) {
      for (const a of this.draining) a.flush();
      this.resendUnsettled();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    // what Redis has not confirmed by now is left to its lease; nothing starts the sweeper again
    this.closed = true;
    this.unsettled.clear();
    if (this.sweeper !== null) clearInterval(this.sweeper);
    this.sweeper = null;
  }

  /**
   * Before a deposit's transaction: bump the wallet's version, so that a replica that read the ledger
   * before it and initialises the counter afterwards is told to read again. Null: Redis unreachable.
   */
  prepareDeposit(organizationId: string): Promise<string | null> {
    return this.prepareChange(organizationId, accountId.wallet(organizationId));
  }

  /** The deposit committed: the wallet's counter learns of it, exactly once (redis-scripts.ts). */
  deposited(organizationId: string, amount: MicroKrw, token: string | null): Promise<void> {
    return this.changed(organizationId, accountId.wallet(organizationId), amount, token);
  }

  /**
   * Before a transaction that moves money into or out of one of the organisation's accounts outside a
   * call (a deposit, a voucher's unspent balance returned when its programme closes): the version
   * bump that `changed` compares with. Null: Redis unreachable.
   */
  async prepareChange(organizationId: string, account: string): Promise<string | null> {
    try {
      return String(
        await runScript(this.redis, SCRIPTS.fundsPrepare, [`${this.base(organizationId)}ver`], [account]),
      );
    } catch (error) {
      this.onError(error);
      return null;
    }
  }

  /** The change committed: the account's counter moves by `amount` exactly once, or is read again. */
  async changed(
    organizationId: string,
    account: string,
    amount: MicroKrw,
    token: string | null,
  ): Promise<void> {
    const base = this.base(organizationId);
    try {
      await runScript(
        this.redis,
        SCRIPTS.fundsCommit,
        [`${base}ver`, `${base}iv`, `${base}a:${account}`],
        // no token (Redis was down before the commit): the counter is dropped and read again
        [account, exact(amount), token ?? '0'],
      );
    } catch (error) {
      this.onError(error);
    }
  }

  /** µ₩ held by every replica for the organisation now. */
  async heldFor(organizationId: string): Promise<MicroKrw> {
    // this replica's allowances give back what no call holds first (same connection: Redis runs it before)
    this.retireAll(organizationId);
    const base = this.base(organizationId);
    try {
      const held = await runScript(this.redis, SCRIPTS.held, [`${base}holds`, `${base}hold`], [`${base}a:`]);
      return BigInt(held as string);
    } catch (error) {
      this.onError(error);
      return 0n;
    }
  }

  /**
   * A fallback product: the call layer asks synchronously, so coverage is decided here and the extra
   * worst case is held without waiting for Redis (prepaid included: the counters may go below zero by
   * that difference until the call ends; the ledger still caps the voucher).
   */
  reroute(ticket: SharedTicket, product: RoutableProduct): AdmissionRefusal | null {
    const voucher = ticket.voucher;
    if (voucher !== null && !voucher.covers(product, Date.now()))
      return insufficient(
        `바우처가 ${product.model}을(를) 지원하지 않습니다. / The voucher does not cover ${product.model}.`,
      );
    if (ticket.holdId === '') return null;
    const worst = worstCaseOf(ticket.request, product);
    const { moreVoucher, moreWallet } = extraHold(worst, voucher, ticket.voucherHeld, ticket.walletHeld);
    if (moreVoucher === 0n && moreWallet === 0n) return null;
    ticket.voucherHeld += moreVoucher;
    ticket.walletHeld += moreWallet;
    this.sendExtend(ticket.shared, ticket.holdId, voucher, moreVoucher, moreWallet);
    return null;
  }

  /** Holds `more` on a hold in Redis (EXTEND), not awaited: the call goes on meanwhile. */
  private sendExtend(
    shared: SharedFunds,
    holdId: string,
    voucher: VoucherFunds | null,
    moreVoucher: MicroKrw,
    moreWallet: MicroKrw,
  ): void {
    runScript(
      this.redis,
      SCRIPTS.extend,
      [
        shared.holdsKey,
        shared.holdKey,
        voucher === null ? shared.walletKey : shared.counterPrefix + voucher.account.id,
        shared.walletKey,
      ],
      [
        holdId,
        voucher === null ? '' : voucher.account.id,
        exact(moreVoucher),
        shared.funds.wallet.id,
        exact(moreWallet),
        '0',
      ],
    ).catch(this.onError);
  }

  /** The end of a call: one script call, not awaited (the client has its answer). */
  finish(ticket: SharedTicket, share: MicroKrw, cost: MicroKrw, tokens: number): void {
    const held = ticket.holdId !== '';
    const buckets = ticket.tokenBuckets;
    if (!held && (buckets === null || tokens === 0)) return;
    const shared = ticket.shared;
    const voucher = ticket.voucher;
    const keys = [
      shared.holdsKey,
      shared.holdKey,
      shared.verKey,
      voucher === null ? shared.walletKey : shared.counterPrefix + voucher.account.id,
      shared.walletKey,
    ];
    if (buckets !== null) for (const b of buckets) keys.push(b);
    const settle: UnsentSettle = {
      keys,
      args: [
        ticket.holdId,
        held && voucher !== null ? voucher.account.id : '',
        held ? shared.funds.wallet.id : '',
        exact(share),
        exact(cost),
        this.idleTtlMs,
        tokens,
        '0', // SETTLE_RESENT
      ],
      until: ticket.resendUntil,
      sending: false,
    };
    this.sendSettle(settle);
  }

  /**
   * A settle whose reply did not come (a timeout, a lost connection: it may or may not have run) is
   * sent again until Redis answers, while its hold's lease runs; then a hold that is gone was settled
   * by the first, and the script answers 'dup'. Otherwise the hold would count against the
   * organisation's funds until its lease ran out (minutes), on every replica. Rate limits alone (no
   * hold) leave nothing to tell a second run by: not sent again.
   */
  private sendSettle(settle: UnsentSettle): void {
    settle.sending = true;
    runScript(this.redis, SCRIPTS.settle, settle.keys, settle.args).then(
      () => {
        settle.sending = false;
        this.unsettled.delete(settle);
      },
      (error: unknown) => {
        settle.sending = false;
        this.onError(error);
        const failedToRun =
          error instanceof Error && error.name === 'ReplyError' && !NOT_RUN.test(error.message);
        if (!failedToRun && !this.closed && settle.until > Date.now()) {
          settle.args[SETTLE_RESENT] = '1';
          this.unsettled.add(settle);
          this.sweep();
        } else {
          this.unsettled.delete(settle);
        }
      },
    );
  }

  /**
   * Sends the unconfirmed settles again once Redis has answered a PING sent after them: on one
   * connection replies come in order, so a copy still queued in a stalled Redis has run by then (and
   * the next answers 'dup'); a stall therefore never piles up copies, one PING a sweep at most.
   */
  private resendUnsettled(): void {
    if (this.unsettled.size === 0 || this.probing || this.closed) return;
    this.probing = true;
    this.redis.ping().then(
      () => {
        this.probing = false;
        const now = Date.now();
        for (const settle of this.unsettled) {
          if (settle.sending) continue;
          if (settle.until > now) this.sendSettle(settle);
          else this.unsettled.delete(settle);
        }
      },
      () => {
        this.probing = false;
      },
    );
  }

  private base(organizationId: string): string {
    return `${this.settings.prefix}{${organizationId}}:`;
  }

  private async loadAndDecide(request: AdmissionRequest): Promise<AdmissionDecision> {
    const shared = await this.load(request.caller.organizationId);
    return this.decide(request, shared, 0);
  }

  private decide(
    request: AdmissionRequest,
    shared: SharedFunds,
    attempt: number,
  ): AdmissionDecision | Promise<AdmissionDecision> {
    const limits = request.caller.rateLimits ?? null;
    const money = shared.funds.prepaid || shared.funds.vouchers.length > 0;
    if (!money && limits === null) return FREE;
    const settings = this.allowanceSettings;
    if (settings.maxCalls < 2) return this.viaRedis(request, shared, money, limits, attempt, null, 1);
    const now = Date.now();
    const scarce = this.scarce.get(request.caller.organizationId);
    if (scarce !== undefined) {
      if (now < scarce) return this.viaRedis(request, shared, money, limits, attempt, null, 1);
      this.scarce.delete(request.caller.organizationId);
    }
    const key = `${request.caller.organizationId}\u0000${request.caller.keyId}\u0000${request.product.id}`;
    const allowance = this.allowances.get(key);
    if (allowance !== undefined) {
      if (allowance.shared === shared && sameLimits(allowance.limits, limits)) {
        const ticket = allowance.admit(request, now);
        if (ticket !== null) return { admitted: true, ticket };
      }
      this.retire(allowance);
    }
    // a second call within a slice asks for an allowance; one at a time, the others go alone meanwhile
    const last = this.recent.get(key);
    this.recent.set(key, now);
    this.sweep();
    if (last === undefined || now - last >= settings.sliceMs || this.leasing.has(key))
      return this.viaRedis(request, shared, money, limits, attempt, null, 1);
    return this.viaRedis(
      request,
      shared,
      money,
      limits,
      attempt,
      key,
      this.sizes.get(key) ?? settings.firstCalls,
    );
  }

  giveBack(allowance: Allowance, r: AllowanceReturn, seq: number): Promise<boolean> {
    const shared = allowance.shared;
    const keys = [
      shared.holdsKey,
      shared.holdKey,
      shared.verKey,
      r.voucherAccount === '' ? shared.walletKey : shared.counterPrefix + r.voucherAccount,
      shared.walletKey,
      `${shared.base}gb:${allowance.id}`,
    ];
    const args: (string | number)[] = [
      seq,
      r.holdId,
      r.voucherAccount,
      shared.funds.wallet.id,
      exact(r.backVoucher),
      exact(r.backWallet),
      exact(r.usedVoucher),
      exact(r.usedWallet),
      exact(r.excessShare),
      exact(r.excessCost),
      this.idleTtlMs,
      r.last ? '1' : '0',
    ];
    for (let i = 0; i < allowance.buckets.length; i++) {
      const b = allowance.buckets[i]!;
      keys.push(b.key);
      args.push(r.unitsBack[i]!, b.capacity);
    }
    return runScript(this.redis, SCRIPTS.giveBack, keys, args).then(
      () => true,
      (error: unknown) => {
        this.onError(error);
        return false;
      },
    );
  }

  extend(allowance: Allowance, moreVoucher: MicroKrw, moreWallet: MicroKrw): void {
    this.sendExtend(allowance.shared, allowance.holdId, allowance.voucher, moreVoucher, moreWallet);
  }

  done(allowance: Allowance): void {
    this.draining.delete(allowance);
  }

  private retire(allowance: Allowance): void {
    if (this.allowances.get(allowance.key) === allowance) this.allowances.delete(allowance.key);
    const { maxCalls } = this.allowanceSettings;
    // the next one sized by how this one went: used up early, twice as large; mostly unused, half
    const size = allowance.size;
    if (allowance.exhausted && Date.now() - allowance.takenAt < this.allowanceSettings.sliceMs / 2)
      this.sizes.set(allowance.key, Math.min(maxCalls, size * 2));
    else if (allowance.calls * 4 < size) this.sizes.set(allowance.key, Math.max(2, Math.floor(size / 2)));
    // its key and product stay recent: the next call asks for the next allowance at once, sized as above
    if ((this.recent.get(allowance.key) ?? 0) < allowance.lastAdmitAt)
      this.recent.set(allowance.key, allowance.lastAdmitAt);
    this.draining.add(allowance);
    allowance.retire();
    this.sweep();
  }

  /** Retires the allowances of one organisation (null: all). */
  private retireAll(organizationId: string | null): void {
    for (const a of [...this.allowances.values()])
      if (organizationId === null || a.organizationId === organizationId) this.retire(a);
  }

  /** Allowances retire when old or idle and send what their calls used meanwhile. */
  private sweep(): void {
    if (this.sweeper !== null || this.closed) return;
    this.sweeper = setInterval(() => {
      const now = Date.now();
      const { sliceMs, idleMs } = this.allowanceSettings;
      for (const a of [...this.allowances.values()]) {
        if (now - a.takenAt >= sliceMs || now - a.lastAdmitAt >= idleMs) this.retire(a);
        else a.flush();
      }
      for (const a of this.draining) a.flush();
      this.resendUnsettled();
      for (const [organizationId, until] of this.scarce) if (now >= until) this.scarce.delete(organizationId);
      for (const [key, at] of this.recent)
        if (now - at >= sliceMs) {
          this.recent.delete(key);
          // a key and product quiet for a slice starts again from the first size
          if (!this.allowances.has(key)) this.sizes.delete(key);
        }
      if (
        this.allowances.size === 0 &&
        this.draining.size === 0 &&
        this.unsettled.size === 0 &&
        this.recent.size === 0 &&
        this.scarce.size === 0 &&
        this.leasing.size === 0
      ) {
        clearInterval(this.sweeper!);
        this.sweeper = null;
      }
    }, this.allowanceSettings.flushMs);
    this.sweeper.unref();
  }

  private async viaRedis(
    request: AdmissionRequest,
    shared: SharedFunds,
    money: boolean,
    limits: CallerRateLimits | null,
    attempt: number,
    /** Asking for an allowance: its key (null: this call alone). */
    allowanceKey: string | null,
    calls: number,
  ): Promise<AdmissionDecision> {
    if (allowanceKey !== null) this.leasing.add(allowanceKey);
    let decision: AdmissionDecision;
    try {
      decision = await this.admitViaRedis(request, shared, money, limits, attempt, allowanceKey, calls);
    } finally {
      if (allowanceKey !== null) this.leasing.delete(allowanceKey);
    }
    const organizationId = request.caller.organizationId;
    if (decision.admitted || decision.code === UNAVAILABLE.code) return decision;
    // near the end of its funds or limits an organisation is decided call by call, exactly, for a while:
    // allowances would keep money and requests that finished calls give back from the calls still coming
    this.scarce.set(organizationId, Date.now() + this.allowanceSettings.sliceMs);
    this.sweep();
    if (!this.holdsAllowances(organizationId)) return decision;
    // this replica's own allowances may hold what the call needs: they give it back first, once
    this.retireAll(organizationId);
    await Promise.all(
      [...this.draining].filter((a) => a.organizationId === organizationId).map((a) => a.whenSent()),
    );
    return this.admitViaRedis(request, shared, money, limits, attempt, null, 1);
  }

  private holdsAllowances(organizationId: string): boolean {
    for (const a of this.allowances.values()) if (a.organizationId === organizationId) return true;
    return false;
  }

  private async admitViaRedis(
    request: AdmissionRequest,
    shared: SharedFunds,
    money: boolean,
    limits: CallerRateLimits | null,
    attempt: number,
    allowanceKey: string | null,
    calls: number,
  ): Promise<AdmissionDecision> {
    const { funds } = shared;
    const { product, caller } = request;
    const worst = money ? worstCaseOf(request, product) : 0n;
    // Lua's doubles are exact up to 2^53: an allowance never holds more
    if (calls > 1 && worst > 0n && worst * BigInt(calls) > MAX_EXACT) calls = Number(MAX_EXACT / worst);
    const lease = calls > 1 ? this.settings.leaseMs + this.allowanceSettings.sliceMs : this.settings.leaseMs;
    const takenAt = Date.now();
    const keys = [shared.holdsKey, shared.holdKey, shared.verKey, shared.ivKey];
    const args: (string | number)[] = [];
    const candidates: VoucherFunds[] = [];
    if (worst > MAX_EXACT)
      return {
        admitted: false,
        ...insufficient(
          '이 요청의 최대 비용이 너무 큽니다: max_tokens를 줄이세요. / This request can cost too much; lower max_tokens.',
        ),
      };
    if (money) {
      const now = Date.now();
      for (const v of funds.vouchers) if (v.covers(product, now)) candidates.push(v);
      args.push(
        request.requestId,
        lease,
        this.idleTtlMs,
        shared.counterPrefix,
        funds.prepaid ? '1' : '0',
        worst.toString(),
        1 + candidates.length,
      );
      keys.push(shared.walletKey);
      for (const v of candidates) keys.push(shared.counterPrefix + v.account.id);
    } else {
      args.push('', lease, this.idleTtlMs, shared.counterPrefix, '0', '0', 0);
    }
    const buckets = limits === null ? null : bucketsOf(shared, request, limits);
    args.push(buckets === null ? 0 : buckets.length, calls, this.allowanceSettings.part);
    if (money) {
      const wallet = funds.wallet;
      args.push(wallet.id, exact(wallet.balance), shared.versionOf(wallet.id), '0', '0');
      for (const v of candidates)
        args.push(
          v.account.id,
          exact(v.account.balance),
          shared.versionOf(v.account.id),
          exact(voucherShare(worst, v.copayBp)),
          v.onExhausted === 'self-pay' ? '1' : '0',
        );
    }
    if (buckets !== null)
      for (const b of buckets) {
        keys.push(b.key);
        args.push(b.capacity, b.amount);
      }

    let reply: (string | number)[];
    try {
      reply = (await runScript(this.redis, SCRIPTS.admit, keys, args)) as (string | number)[];
    } catch (error) {
      this.onError(error);
      // timed out on a connection that is still up: the script may yet run, and its hold must not
      // stay spoken for until its lease ends (minutes); a refused call gives back its buckets' share
      if (money) this.abandon(shared, request.requestId, funds.prepaid, buckets);
      return this.unavailable(funds, candidates);
    }
    const outcome = reply[0];
    if (outcome === 'ok') {
      const chosen = Number(reply[1]);
      const voucher = chosen >= 2 ? candidates[chosen - 2]! : null;
      const taken = Number(reply[4]);
      if (allowanceKey !== null && taken >= 2) {
        const allowance = new Allowance(this, this.allowanceSettings, {
          id: request.requestId,
          key: allowanceKey,
          organizationId: caller.organizationId,
          shared,
          limits,
          holdId: money ? request.requestId : '',
          voucher,
          voucherHeld: BigInt(reply[2]!),
          walletHeld: BigInt(reply[3]!),
          buckets:
            buckets === null
              ? []
              : buckets.map((b) => ({ key: b.key, capacity: b.capacity, scope: b.scope, kind: b.kind })),
          units: buckets === null ? [] : buckets.map((b) => b.amount * taken),
          levels: buckets === null ? [] : buckets.map((_, i) => Number(reply[5 + i])),
          size: calls,
          takenAt,
          levelsAt: Date.now(),
        });
        const previous = this.allowances.get(allowanceKey);
        if (previous !== undefined) this.retire(previous);
        this.allowances.set(allowanceKey, allowance);
        this.sweep();
        // the allowance was sized on this call: it fits
        const ticket = allowance.admit(request, takenAt);
        if (ticket !== null) return { admitted: true, ticket };
        this.retire(allowance);
        return this.viaRedis(request, shared, money, limits, attempt, null, 1);
      }
      return {
        admitted: true,
        ticket: new SharedTicket(
          this,
          shared,
          money ? request.requestId : '',
          voucher,
          BigInt(reply[2]!),
          BigInt(reply[3]!),
          request,
          tokenBucketsOf(buckets),
          request.estimatedPromptTokens + (request.maxCompletionTokens ?? 0),
          buckets === null ? null : headersFrom(buckets, reply, 5),
          // the lease began after `takenAt`, when the script ran: stop resending before it can end
          money ? takenAt + this.settings.leaseMs - resendMarginMs(this.settings.leaseMs) : 0,
        ),
      };
    }
    if (outcome === 'rate') {
      const use = buckets![Number(reply[1]) - 1]!;
      const refused = rateRefusal(
        bucketAt(use, Number(reply[1 + Number(reply[1])])),
        use.amount,
        use.scope,
        use.kind,
        limits!,
      )!;
      refused.headers = headersFrom(buckets!, reply, 2);
      return { admitted: false, ...refused };
    }
    if (outcome === 'voucher')
      return {
        admitted: false,
        ...voucherRefusal(candidates[Number(reply[1]) - 2]!.id, BigInt(reply[2]!), BigInt(reply[3]!)),
      };
    if (outcome === 'wallet') {
      const chosen = Number(reply[1]);
      return {
        admitted: false,
        ...walletRefusal(
          BigInt(reply[2]!),
          BigInt(reply[3]!),
          chosen >= 2 ? candidates[chosen - 2]!.id : null,
        ),
      };
    }
    // 'stale': a deposit or a charge reached Redis after this replica read the ledger; read it again
    this.forget(caller.organizationId);
    if (attempt >= STALE_RETRIES) {
      this.logger.error({ organizationId: caller.organizationId }, 'shared holds: counters kept changing');
      return { admitted: false, ...UNAVAILABLE };
    }
    const again = await this.load(caller.organizationId);
    return this.decide(request, again, attempt + 1);
  }

  private abandon(shared: SharedFunds, holdId: string, refused: boolean, buckets: BucketUse[] | null): void {
    const keys = [shared.holdsKey, shared.holdKey];
    const args: (string | number)[] = [holdId, shared.counterPrefix, refused ? '1' : '0'];
    if (refused && buckets !== null)
      for (const b of buckets) {
        keys.push(b.key);
        args.push(b.amount);
      }
    // EVAL, not EVALSHA: this runs when Redis is slow, and a script Redis does not know yet (a restart,
    // a new version) would answer NOSCRIPT too late for the fallback to follow
    this.redis.eval(SCRIPTS.abandon.lua, keys.length, ...keys, ...args).catch(() => {});
  }

  /**
   * Redis unreachable or slow: a prepaid organisation is refused (503), since nothing could stop it
   * overspending across replicas; a postpaid one is admitted without a hold or limit (it is never
   * refused for money; the ledger charges its vouchers up to their balance and the wallet the rest).
   */
  private unavailable(funds: OrganizationFunds, candidates: VoucherFunds[]): AdmissionDecision {
    if (funds.prepaid) return { admitted: false, ...UNAVAILABLE };
    const voucherId = candidates[0]?.id ?? null;
    if (voucherId === null) return FREE;
    return { admitted: true, ticket: { voucherId, settle() {}, release() {} } };
  }

  private onError(error: unknown): void {
    const failures = this.failureReports.take();
    if (failures === 0) return;
    this.logger.error(
      { err: error, failures },
      'shared limits: Redis command failed (prepaid calls refused with 503, others admitted)',
    );
  }

  private load(organizationId: string): Promise<SharedFunds> {
    let loading = this.loading.get(organizationId);
    if (loading === undefined) {
      const started = this.read(organizationId);
      loading = started;
      this.loading.set(organizationId, started);
      started.then(
        (shared) => {
          // a `forget` while reading dropped this read: the next call reads again
          if (this.loading.get(organizationId) === started) {
            this.loading.delete(organizationId);
            this.organizations.set(organizationId, shared);
          }
        },
        () => {
          if (this.loading.get(organizationId) === started) this.loading.delete(organizationId);
        },
      );
    }
    return loading;
  }

  private async read(organizationId: string): Promise<SharedFunds> {
    await this.synced();
    const base = this.base(organizationId);
    // the versions first: a change that lands after them and before the ledger read is noticed
    const readAt = Date.now();
    let versions: Record<string, string> | null;
    try {
      versions = await this.redis.hgetall(`${base}ver`);
    } catch (error) {
      this.onError(error);
      versions = null;
    }
    const funds = await readOrganizationFunds(this.db, organizationId);
    return new SharedFunds(funds, versions, base, readAt);
  }
}

function sameLimits(a: CallerRateLimits | null, b: CallerRateLimits | null): boolean {
  if (a === b) return true;
  if (a === null || b === null) return false;
  return (
    a.keyRequests === b.keyRequests &&
    a.keyTokens === b.keyTokens &&
    a.organizationRequests === b.organizationRequests &&
    a.organizationTokens === b.organizationTokens
  );
}

function bucketsOf(shared: SharedFunds, request: AdmissionRequest, limits: CallerRateLimits): BucketUse[] {
  const tokens = request.estimatedPromptTokens + (request.maxCompletionTokens ?? 0);
  const keyId = request.caller.keyId;
  const out: BucketUse[] = [];
  if (limits.keyRequests !== null)
    out.push({
      key: `${shared.base}rl:k:r:${keyId}`,
      capacity: limits.keyRequests,
      amount: 1,
      scope: 'key',
      kind: 'requests',
    });
  if (limits.organizationRequests !== null)
    out.push({
      key: `${shared.base}rl:o:r`,
      capacity: limits.organizationRequests,
      amount: 1,
      scope: 'organization',
      kind: 'requests',
    });
  if (limits.keyTokens !== null)
    out.push({
      key: `${shared.base}rl:k:t:${keyId}`,
      capacity: limits.keyTokens,
      amount: tokens,
      scope: 'key',
      kind: 'tokens',
    });
  if (limits.organizationTokens !== null)
    out.push({
      key: `${shared.base}rl:o:t`,
      capacity: limits.organizationTokens,
      amount: tokens,
      scope: 'organization',
      kind: 'tokens',
    });
  return out;
}

function tokenBucketsOf(buckets: BucketUse[] | null): string[] | null {
  if (buckets === null) return null;
  let out: string[] | null = null;
  for (const b of buckets)
    if (b.kind === 'tokens') {
      out ??= [];
      out.push(b.key);
    }
  return out;
}

function bucketAt(use: BucketUse, level: number): Bucket {
  const bucket = new Bucket(use.capacity, 0);
  bucket.level = level;
  return bucket;
}

/** OpenAI's `x-ratelimit-*` headers from the levels the script returned (from `offset` on). */
function headersFrom(
  buckets: BucketUse[],
  reply: (string | number)[],
  offset: number,
): Record<string, string> {
  return headersOfLevels(
    buckets,
    buckets.map((_, i) => Number(reply[offset + i])),
  );
}
