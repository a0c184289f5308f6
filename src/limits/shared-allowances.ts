import type { CallerRateLimits } from '../accounts/key-cache.ts';
import { voucherShare } from '../billing/ledger.ts';
import type { MicroKrw } from '../billing/money.ts';
import type { UsageRecord } from '../billing/usage-journal.ts';
import type { RoutableProduct } from '../catalog/catalog-snapshot.ts';
import type { AdmissionRefusal, AdmissionRequest, AdmissionTicket } from './admission.ts';
import { extraHold, insufficient, type VoucherFunds, voucherPart, worstCaseOf } from './budget-holds.ts';
import { headersOfLevels } from './rate-limits.ts';
import type { SharedFunds } from './shared-admission.ts';

/**
 * Allowances (decision 0027): a replica takes several calls' worth of an organisation's accounts and of
 * a key's rate-limit buckets in one Redis round trip — one hold, leased like any other, so a dead
 * replica's allowance comes back on its own — and admits the next calls of the same key and product
 * from it in memory. What its calls did not use goes back when it retires: after `sliceMs`, when idle,
 * when a call does not fit, or when the organisation's funds change. What they used becomes the charges
 * the ledger already made (only once the ledger has them, as for a single call's hold).
 */

export interface AllowanceSettings {
  /** How long an allowance admits calls after it was taken. */
  sliceMs: number;
  /** An allowance no call used for this long retires. */
  idleMs: number;
  /** How often used amounts and give-backs are sent while calls go on. */
  flushMs: number;
  /** Each account and bucket gives an allowance at most 1/part of what it has left. */
  part: number;
  /** Calls' worth asked for at first, and at most. */
  firstCalls: number;
  maxCalls: number;
}

export const DEFAULT_ALLOWANCE_SETTINGS: AllowanceSettings = {
  sliceMs: 1_000,
  idleMs: 200,
  flushMs: 100,
  part: 16,
  firstCalls: 8,
  maxCalls: 512,
};

/** A bucket the allowance took from: which one and how it is reported. */
export interface AllowanceBucket {
  key: string;
  capacity: number;
  scope: 'key' | 'organization';
  kind: 'requests' | 'tokens';
}

/** What an allowance sends to Redis: see GIVE_BACK in redis-scripts.ts. */
export interface AllowanceReturn {
  holdId: string;
  voucherAccount: string;
  backVoucher: MicroKrw;
  backWallet: MicroKrw;
  usedVoucher: MicroKrw;
  usedWallet: MicroKrw;
  excessShare: MicroKrw;
  excessCost: MicroKrw;
  last: boolean;
  /** Per bucket, units given back. */
  unitsBack: number[];
}

/** What the allowance needs from its owner (shared-admission.ts). */
export interface AllowanceOwner {
  /**
   * Sends what the allowance gives back and what its calls used, numbered `seq` (sent again after a
   * failure, it is applied once). Resolves true once Redis has it, false when the command failed.
   */
  giveBack(allowance: Allowance, r: AllowanceReturn, seq: number): Promise<boolean>;
  /** Holds `more` on the allowance's hold for a fallback product the allowance cannot cover itself. */
  extend(allowance: Allowance, moreVoucher: MicroKrw, moreWallet: MicroKrw): void;
  /** Resolves once this call's charge is in the ledger. */
  charged(requestId: string): Promise<void>;
  /** The allowance has given back everything and can be dropped. */
  done(allowance: Allowance): void;
}

/**
 * An allowance as it was taken: whose calls it admits, and what the admit script held and took for it
 * (shared-admission.ts builds it from the script's reply).
 */
export interface TakenAllowance {
  /** Names its give-backs' sequence in Redis: the request id of the call that took it. */
  id: string;
  /** The organisation, key and product whose calls it admits (its owner's map key). */
  key: string;
  organizationId: string;
  /** The organisation's funds as read when the allowance was taken (a re-read retires it). */
  shared: SharedFunds;
  limits: CallerRateLimits | null;
  /** The hold in Redis ('' when no money is held: rate limits alone), and on which voucher if any. */
  holdId: string;
  voucher: VoucherFunds | null;
  /** What the hold holds on the voucher and on the wallet. */
  voucherHeld: MicroKrw;
  walletHeld: MicroKrw;
  buckets: readonly AllowanceBucket[];
  /** Per bucket, the units the allowance took. */
  units: readonly number[];
  /** Per bucket, its level in Redis right after the allowance was taken. */
  levels: readonly number[];
  /** Calls' worth it was asked for (the next one of its key is sized from how this one went). */
  size: number;
  takenAt: number;
  /**
   * When the script's reply came (this replica's clock): the levels are Redis's at some moment between
   * `takenAt` and then, so they may already hold what refilled until then.
   */
  levelsAt: number;
}

const ZERO = 0n;

export class Allowance {
  // fixed when it is taken: see TakenAllowance
  readonly id: string;
  readonly key: string;
  readonly organizationId: string;
  readonly shared: SharedFunds;
  readonly limits: CallerRateLimits | null;
  readonly holdId: string;
  readonly voucher: VoucherFunds | null;
  readonly buckets: readonly AllowanceBucket[];
  readonly size: number;
  readonly takenAt: number;
  readonly levelsAt: number;
  /** What no call holds now: admitted calls take from it and give back what they did not use. */
  voucherFree: MicroKrw;
  walletFree: MicroKrw;
  /** Per bucket, units not taken by a call. */
  readonly units: number[];
  /** Per bucket, its level in Redis right after the allowance was taken (for the headers). */
  readonly levels: number[];
  inFlight = 0;
  calls = 0;
  lastAdmitAt: number;
  retired = false;
  /** A call did not fit in what was left (the next allowance of this kind may be larger). */
  exhausted = false;
  private pendingCharges = 0;
  /**
   * A call's charge the journal gave up on: its cost stays in the hold, which the last give-back then
   * keeps for its lease (as SharedTicket.settle leaves a single call's hold), instead of removing it.
   */
  private unconfirmedCharges = false;
  /** The give-back being sent is this allowance's last from this replica. */
  private sendingEnds = false;
  private finished = false;
  /** The give-back Redis has not confirmed yet (sent again until it does), and its number. */
  private sending: AllowanceReturn | null = null;
  private sendingNow = false;
  private seq = 0;
  private waiters: (() => void)[] = [];
  // to send with the next give-back
  private backVoucher = ZERO;
  private backWallet = ZERO;
  private usedVoucher = ZERO;
  private usedWallet = ZERO;
  private excessShare = ZERO;
  private excessCost = ZERO;
  private readonly unitsBack: number[];
  private dirty = false;

  constructor(
    readonly owner: AllowanceOwner,
    readonly settings: AllowanceSettings,
    taken: TakenAllowance,
  ) {
    this.id = taken.id;
    this.key = taken.key;
    this.organizationId = taken.organizationId;
    this.shared = taken.shared;
    this.limits = taken.limits;
    this.holdId = taken.holdId;
    this.voucher = taken.voucher;
    this.buckets = taken.buckets;
    this.size = taken.size;
    this.takenAt = taken.takenAt;
    this.levelsAt = taken.levelsAt;
    this.voucherFree = taken.voucherHeld;
    this.walletFree = taken.walletHeld;
    this.units = [...taken.units];
    this.levels = [...taken.levels];
    this.unitsBack = taken.units.map(() => 0);
    this.lastAdmitAt = taken.takenAt;
  }

  /**
   * A call of the allowance's key and product, admitted from it when every part fits; null when it
   * does not (the caller then retires it and asks Redis).
   */
  admit(request: AdmissionRequest, now: number): SliceTicket | null {
    if (this.retired || now - this.takenAt >= this.settings.sliceMs) return null;
    const voucher = this.voucher;
    if (voucher !== null && !voucher.covers(request.product, now)) return null;
    const worst = this.holdId === '' ? ZERO : worstCaseOf(request, request.product);
    const share = voucher === null ? ZERO : voucherShare(worst, voucher.copayBp);
    const walletPart = worst - share;
    const tokens = request.estimatedPromptTokens + (request.maxCompletionTokens ?? 0);
    const buckets = this.buckets;
    let fits = share <= this.voucherFree && walletPart <= this.walletFree;
    for (let i = 0; fits && i < buckets.length; i++)
      fits = this.units[i]! >= (buckets[i]!.kind === 'requests' ? 1 : tokens);
    if (!fits) {
      this.exhausted = true;
      return null;
    }
    for (let i = 0; i < buckets.length; i++) this.units[i]! -= buckets[i]!.kind === 'requests' ? 1 : tokens;
    this.voucherFree -= share;
    this.walletFree -= walletPart;
    this.inFlight++;
    this.calls++;
    this.lastAdmitAt = now;
    return new SliceTicket(this, share, walletPart, tokens, request, this.headers(now, tokens));
  }

  /**
   * OpenAI's `x-ratelimit-*` headers after a call of `tokens` tokens, as the call alone would have seen
   * them: the bucket as Redis left it, refilled since, plus what this allowance still has.
   */
  headers(now: number, tokens: number): Readonly<Record<string, string>> | null {
    const buckets = this.buckets;
    if (buckets.length === 0) return null;
    // counted from the reply, not from `takenAt`: Redis's levels may hold the refill until then already,
    // and a call alone after this allowance would not see it twice
    const elapsed = Math.max(0, now - this.levelsAt);
    const levels: number[] = [];
    for (let i = 0; i < buckets.length; i++) {
      const capacity = buckets[i]!.capacity;
      const amount = buckets[i]!.kind === 'requests' ? 1 : tokens;
      // what the allowance still has is the bucket's too: together they refill up to the capacity, less
      // this call's own share (as a call alone, and as Redis caps what an allowance gives back)
      const level = this.levels[i]! + (elapsed * capacity) / 60_000 + this.units[i]! + amount;
      levels.push(Math.min(capacity, level) - amount);
    }
    return headersOfLevels(buckets, levels);
  }

  /** No more calls from it: what no call holds goes back now, the rest as its calls end. */
  retire(): void {
    if (this.retired) return;
    this.retired = true;
    this.backVoucher += this.voucherFree;
    this.backWallet += this.walletFree;
    this.voucherFree = ZERO;
    this.walletFree = ZERO;
    for (let i = 0; i < this.units.length; i++) {
      this.unitsBack[i]! += this.units[i]!;
      this.units[i] = 0;
    }
    this.dirty = true;
    this.flush();
  }

  /** A fallback product costs more: held from what is free, or added to the hold in Redis. */
  reroute(ticket: SliceTicket, product: RoutableProduct): AdmissionRefusal | null {
    const voucher = this.voucher;
    if (voucher !== null && !voucher.covers(product, Date.now()))
      return insufficient(
        `바우처가 ${product.model}을(를) 지원하지 않습니다. / The voucher does not cover ${product.model}.`,
      );
    if (this.holdId === '') return null;
    const worst = worstCaseOf(ticket.request, product);
    const { moreVoucher, moreWallet } = extraHold(worst, voucher, ticket.voucherHeld, ticket.walletHeld);
    if (moreVoucher === ZERO && moreWallet === ZERO) return null;
    ticket.voucherHeld += moreVoucher;
    ticket.walletHeld += moreWallet;
    if (!this.retired && moreVoucher <= this.voucherFree && moreWallet <= this.walletFree) {
      this.voucherFree -= moreVoucher;
      this.walletFree -= moreWallet;
    } else {
      // as a single call's fallback: held without waiting (the counters may dip below zero for it)
      this.owner.extend(this, moreVoucher, moreWallet);
    }
    return null;
  }

  /**
   * A call ended having cost `cost` (0: released), `share` of it the voucher's. It is paid from what the
   * call held — and, while the allowance admits calls, from what is free — as the ledger splits it;
   * what no hold covers is charged in Redis as a call without a hold would be.
   */
  end(ticket: SliceTicket, share: MicroKrw, cost: MicroKrw, tokensBack: number, requestId: string): void {
    this.inFlight--;
    const active = !this.retired;
    const availVoucher = ticket.voucherHeld + (active ? this.voucherFree : ZERO);
    const availWallet = ticket.walletHeld + (active ? this.walletFree : ZERO);
    const inVoucher = share < availVoucher ? share : availVoucher;
    const walletCost = cost - share;
    const inWallet = walletCost < availWallet ? walletCost : availWallet;
    if (active) {
      this.voucherFree = availVoucher - inVoucher;
      this.walletFree = availWallet - inWallet;
    } else {
      this.backVoucher += availVoucher - inVoucher;
      this.backWallet += availWallet - inWallet;
      this.dirty = true;
    }
    if (tokensBack !== 0) {
      const target = active ? this.units : this.unitsBack;
      for (let i = 0; i < this.buckets.length; i++)
        if (this.buckets[i]!.kind === 'tokens') target[i]! += tokensBack;
      if (!active) this.dirty = true;
    }
    if (cost > ZERO) {
      this.pendingCharges++;
      const excessVoucher = share - inVoucher;
      const excessWallet = walletCost - inWallet;
      // the hold turns into the charge only once the charge is in the ledger (as SharedTicket.settle)
      this.owner.charged(requestId).then(
        () => {
          this.pendingCharges--;
          this.usedVoucher += inVoucher;
          this.usedWallet += inWallet;
          this.excessShare += excessVoucher;
          this.excessCost += excessVoucher + excessWallet;
          this.dirty = true;
          if (this.retired) this.flush();
        },
        // the journal gave up (a minute without an apply, or closed): the charge is not known to be in
        // the ledger, so its cost stays held to the lease; the allowance still ends
        () => {
          this.pendingCharges--;
          this.unconfirmedCharges = true;
          if (this.retired) this.flush();
        },
      );
    } else if (this.retired) this.flush();
  }

  /**
   * Sends what has gathered, one give-back at a time; a failed one is sent again, with its number,
   * at the next flush. The last (retired, nothing in flight or waiting for the ledger) removes the hold.
   */
  flush(): void {
    if (this.finished || this.sendingNow) return;
    if (this.sending === null) {
      const ends = this.retired && this.inFlight === 0 && this.pendingCharges === 0;
      if (!this.dirty && !ends) return;
      this.dirty = false;
      this.sendingEnds = ends;
      this.sending = {
        holdId: this.holdId,
        voucherAccount: this.voucher?.account.id ?? '',
        backVoucher: this.backVoucher,
        backWallet: this.backWallet,
        usedVoucher: this.usedVoucher,
        usedWallet: this.usedWallet,
        excessShare: this.excessShare,
        excessCost: this.excessCost,
        last: ends && !this.unconfirmedCharges,
        unitsBack: [...this.unitsBack],
      };
      this.seq++;
      this.backVoucher = ZERO;
      this.backWallet = ZERO;
      this.usedVoucher = ZERO;
      this.usedWallet = ZERO;
      this.excessShare = ZERO;
      this.excessCost = ZERO;
      this.unitsBack.fill(0);
    }
    const r = this.sending;
    this.sendingNow = true;
    this.owner.giveBack(this, r, this.seq).then((sent) => {
      this.sendingNow = false;
      // a failed one stays and is sent again by the sweeper: should its hold be reaped meanwhile, the
      // script then charges what was used to the counters ('gone')
      if (sent) {
        this.sending = null;
        if (this.sendingEnds) {
          this.finished = true;
          this.owner.done(this);
        } else if (this.dirty || this.retired) {
          this.flush();
        }
      }
      if (!sent || (this.sending === null && !this.dirty)) this.wake();
    });
  }

  /** Resolves once what has gathered so far reached Redis (or failed to). */
  whenSent(): Promise<void> {
    if (this.finished || (this.sending === null && !this.dirty && !this.sendingNow)) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

/** One call admitted from an allowance. */
export class SliceTicket implements AdmissionTicket {
  private open = true;
  constructor(
    readonly allowance: Allowance,
    public voucherHeld: MicroKrw,
    public walletHeld: MicroKrw,
    readonly tokens: number,
    readonly request: AdmissionRequest,
    readonly responseHeaders: Readonly<Record<string, string>> | null,
  ) {}

  get voucherId(): string | null {
    return this.allowance.voucher?.id ?? null;
  }

  reroute(product: RoutableProduct): AdmissionRefusal | null {
    return this.allowance.reroute(this, product);
  }

  settle(record: UsageRecord): void {
    if (!this.open) return;
    this.open = false;
    const cost = record.costMicroKrw > ZERO ? record.costMicroKrw : ZERO;
    const share = voucherPart(this.allowance.voucher, record, cost);
    const tokensBack = this.tokens - (record.promptTokens + record.completionTokens);
    this.allowance.end(this, share, cost, tokensBack, record.requestId);
  }

  release(): void {
    if (!this.open) return;
    this.open = false;
    this.allowance.end(this, ZERO, ZERO, this.tokens, '');
  }
}
