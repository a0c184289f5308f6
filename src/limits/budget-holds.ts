import { accountId, splitCharge, voucherShare } from '../billing/ledger.ts';
import { costOf, formatKrw, type MicroKrw } from '../billing/money.ts';
import type { UsageRecord } from '../billing/usage-journal.ts';
import type { RoutableProduct } from '../catalog/catalog-snapshot.ts';
import type { Database } from '../storage/database.ts';
import type {
  Admission,
  AdmissionDecision,
  AdmissionRefusal,
  AdmissionRequest,
  AdmissionTicket,
} from './admission.ts';

/**
 * Budget holds (docs/billing.md): before a call, the worst case it can cost is held on the voucher
 * that pays for it and on the organisation's wallet; when it ends, the real cost of the product that
 * served is charged and the rest released. One replica keeps the holds in memory, exactly; the
 * ledger, charged when usage records are applied (billing/ledger.ts), stays the truth.
 *
 * What a replica knows of an account: the balance it read, minus what it charged since, minus what
 * is held. Reading a balance waits until every usage record this replica wrote is in the ledger, and
 * charges made while the read is under way are subtracted again: at worst an account looks poorer
 * than it is until the next read, never richer.
 */

/** The money one account can still promise. */
export class Account {
  held = 0n;
  /** Charged here since the balance was read. */
  spent = 0n;
  constructor(
    readonly id: string,
    public balance: MicroKrw,
  ) {}
  available(): MicroKrw {
    return this.balance - this.spent - this.held;
  }
}

export class VoucherFunds {
  constructor(
    readonly id: string,
    readonly account: Account,
    readonly copayBp: number,
    readonly validFrom: number,
    readonly validUntil: number,
    /** Product ids it pays for; null: every product. */
    readonly eligible: ReadonlySet<string> | null,
    readonly onExhausted: 'block' | 'self-pay',
    /** Supplier ids whose products it pays for; null: every supplier. Both lists must allow a product. */
    readonly eligibleSuppliers: ReadonlySet<string> | null = null,
  ) {}
  covers(product: RoutableProduct, at: number): boolean {
    return (
      at >= this.validFrom &&
      at < this.validUntil &&
      (this.eligible === null || this.eligible.has(product.id)) &&
      (this.eligibleSuppliers === null || this.eligibleSuppliers.has(product.supplierId))
    );
  }
}

export class OrganizationFunds {
  constructor(
    readonly prepaid: boolean,
    readonly wallet: Account,
    /** Soonest to expire first: they are spent in that order. */
    readonly vouchers: readonly VoucherFunds[],
  ) {}
}

function applyCharges(
  funds: OrganizationFunds,
  charges: readonly { accountId: string; amount: MicroKrw }[],
): void {
  for (const c of charges) {
    if (c.accountId === funds.wallet.id) funds.wallet.spent += c.amount;
    else for (const v of funds.vouchers) if (v.account.id === c.accountId) v.account.spent += c.amount;
  }
}

/** The KRW of a refusal's message, rounded up to the won. */
function won(micro: MicroKrw): string {
  return formatKrw(((micro + 999_999n) / 1_000_000n) * 1_000_000n);
}

export function insufficient(message: string): AdmissionRefusal {
  return { status: 429, code: 'insufficient_quota', message };
}

/** A prepaid call whose voucher (programme policy `block`) cannot hold its share of the worst case. */
export function voucherRefusal(voucherId: string, available: MicroKrw, share: MicroKrw): AdmissionRefusal {
  return insufficient(
    `바우처 잔액(${won(available)}원)이 이 요청의 최대 비용 중 바우처 부담분(${won(share)}원)보다 적습니다. ` +
      `/ Voucher ${voucherId} has ${won(available)} KRW left; this request can cost it up to ${won(share)} KRW ` +
      '(lower max_tokens, or ask the operator for more).',
  );
}

/** A prepaid call whose wallet cannot hold its part of the worst case. */
export function walletRefusal(
  available: MicroKrw,
  walletHeld: MicroKrw,
  voucherId: string | null,
): AdmissionRefusal {
  return insufficient(
    `지갑 잔액(${won(available)}원)이 부족합니다: 이 요청은 최대 ${won(walletHeld)}원을 자부담합니다. ` +
      `/ The wallet has ${won(available)} KRW available; this request can cost it up to ${won(walletHeld)} KRW ` +
      `(${voucherId === null ? 'no voucher covers this product' : `co-payment of voucher ${voucherId}`}).`,
  );
}

/** The most a request can cost on `product`: its prompt estimate and `max_tokens` (else the context left). */
export function worstCaseOf(request: AdmissionRequest, product: RoutableProduct): MicroKrw {
  const completion =
    request.maxCompletionTokens ?? Math.max(product.contextWindow - request.estimatedPromptTokens, 0);
  return costOf(request.estimatedPromptTokens, completion, product.prices);
}

/** What a fallback's worst case needs held beyond what the call holds, split as the first product's was. */
export function extraHold(
  worst: MicroKrw,
  voucher: VoucherFunds | null,
  voucherHeld: MicroKrw,
  walletHeld: MicroKrw,
): { moreVoucher: MicroKrw; moreWallet: MicroKrw } {
  const voucherNeed = voucher === null ? 0n : voucherShare(worst, voucher.copayBp);
  const walletNeed = worst - voucherNeed;
  return {
    moreVoucher: voucherNeed > voucherHeld ? voucherNeed - voucherHeld : 0n,
    moreWallet: walletNeed > walletHeld ? walletNeed - walletHeld : 0n,
  };
}

/** As the ledger will: the voucher's share of a call's cost, when the call was made in its validity. */
export function voucherPart(voucher: VoucherFunds | null, record: UsageRecord, cost: MicroKrw): MicroKrw {
  return voucher !== null &&
    record.createdAtMs >= voucher.validFrom &&
    record.createdAtMs < voucher.validUntil
    ? voucherShare(cost, voucher.copayBp)
    : 0n;
}

/** One admitted call's hold: what is held where, until `settle` or `release`. */
class Hold implements AdmissionTicket {
  constructor(
    private readonly holds: BudgetHolds,
    private readonly funds: OrganizationFunds,
    private voucher: VoucherFunds | null,
    private voucherHeld: MicroKrw,
    private walletHeld: MicroKrw,
    private readonly request: AdmissionRequest,
  ) {}

  get voucherId(): string | null {
    return this.voucher?.id ?? null;
  }

  reroute(product: RoutableProduct): AdmissionRefusal | null {
    // the worst case on the fallback's prices, paid as the first product's would be
    const worst = this.holds.worstCase(this.request, product);
    const voucher = this.voucher;
    if (voucher !== null && !voucher.covers(product, Date.now()))
      return insufficient(
        `바우처가 ${product.model}을(를) 지원하지 않습니다. / The voucher does not cover ${product.model}.`,
      );
    const { moreVoucher, moreWallet } = extraHold(worst, voucher, this.voucherHeld, this.walletHeld);
    if (this.funds.prepaid) {
      if (voucher !== null && moreVoucher > voucher.account.available())
        return insufficient('바우처 잔액이 부족합니다. / The voucher cannot cover the fallback.');
      if (moreWallet > this.funds.wallet.available())
        return insufficient('지갑 잔액이 부족합니다. / The wallet cannot cover the fallback.');
    }
    if (voucher !== null) voucher.account.held += moreVoucher;
    this.funds.wallet.held += moreWallet;
    this.voucherHeld += moreVoucher;
    this.walletHeld += moreWallet;
    return null;
  }

  settle(record: UsageRecord): void {
    const voucher = this.voucher;
    this.unhold();
    const cost = record.costMicroKrw;
    if (cost <= 0n) return;
    // as the ledger will: the voucher pays its share as far as it goes, when the call is in its validity
    let fromVoucher = 0n;
    if (
      voucher !== null &&
      record.createdAtMs >= voucher.validFrom &&
      record.createdAtMs < voucher.validUntil
    ) {
      fromVoucher = splitCharge(
        cost,
        voucher.copayBp,
        voucher.account.balance - voucher.account.spent,
      ).voucher;
    }
    this.holds.charged(
      this.request.caller.organizationId,
      this.funds,
      voucher,
      fromVoucher,
      cost - fromVoucher,
    );
  }

  release(): void {
    this.unhold();
  }

  private unhold(): void {
    if (this.voucher !== null) this.voucher.account.held -= this.voucherHeld;
    this.funds.wallet.held -= this.walletHeld;
    this.voucherHeld = 0n;
    this.walletHeld = 0n;
    this.voucher = null;
  }
}

/** Admitted with nothing held: a postpaid organisation without vouchers, the common case. */
const FREE: AdmissionDecision = { admitted: true, ticket: { voucherId: null, settle() {}, release() {} } };

export class BudgetHolds implements Admission {
  private readonly organizations = new Map<string, OrganizationFunds>();
  private readonly loading = new Map<string, Promise<OrganizationFunds>>();
  /** Charges made while the organisation's funds are being read again: applied to what is read. */
  private readonly lateCharges = new Map<string, { accountId: string; amount: MicroKrw }[]>();

  constructor(
    private readonly db: Database,
    /** Resolves once every usage record written so far is in the ledger (UsageJournal.sync). */
    private readonly synced: () => Promise<void>,
  ) {}

  admit(request: AdmissionRequest): AdmissionDecision | Promise<AdmissionDecision> {
    const funds = this.organizations.get(request.caller.organizationId);
    if (funds !== undefined) return this.decide(request, funds);
    return this.load(request.caller.organizationId).then((f) => this.decide(request, f));
  }

  /** The organisation's deposits, vouchers or spend mode changed: read them again at its next call. */
  forget(organizationId: string): void {
    // holds in flight keep their own objects: they release into accounts no longer read, harmlessly,
    // and their charges also reach the accounts read next (`charged`)
    this.organizations.delete(organizationId);
    this.loading.delete(organizationId);
    this.lateCharges.delete(organizationId);
  }

  /**
   * A call was charged. Its hold may belong to funds read before a `forget`: the charge then also goes
   * to the funds read since (or being read), which may not include it yet. Should they include it
   * already, the account looks poorer than it is until the next read: never richer.
   */
  charged(
    organizationId: string,
    funds: OrganizationFunds,
    voucher: VoucherFunds | null,
    fromVoucher: MicroKrw,
    fromWallet: MicroKrw,
  ): void {
    if (voucher !== null) voucher.account.spent += fromVoucher;
    funds.wallet.spent += fromWallet;
    const current = this.organizations.get(organizationId);
    if (current === funds) return;
    const charges = [{ accountId: funds.wallet.id, amount: fromWallet }];
    if (voucher !== null && fromVoucher > 0n)
      charges.push({ accountId: voucher.account.id, amount: fromVoucher });
    if (current !== undefined) {
      applyCharges(current, charges);
    } else if (this.loading.has(organizationId)) {
      const late = this.lateCharges.get(organizationId);
      if (late === undefined) this.lateCharges.set(organizationId, charges);
      else late.push(...charges);
    }
  }

  /** µ₩ held on this replica for the organisation (shown with its funds). */
  heldFor(organizationId: string): MicroKrw {
    const funds = this.organizations.get(organizationId);
    if (funds === undefined) return 0n;
    let held = funds.wallet.held;
    for (const v of funds.vouchers) held += v.account.held;
    return held;
  }

  worstCase(request: AdmissionRequest, product: RoutableProduct): MicroKrw {
    return worstCaseOf(request, product);
  }

  private decide(request: AdmissionRequest, funds: OrganizationFunds): AdmissionDecision {
    if (!funds.prepaid && funds.vouchers.length === 0) return FREE;
    const { product } = request;
    const worst = this.worstCase(request, product);
    const now = Date.now();
    let voucher: VoucherFunds | null = null;
    for (const v of funds.vouchers) {
      if (v.covers(product, now) && v.account.available() > 0n) {
        voucher = v;
        break;
      }
    }
    let voucherHeld = 0n;
    if (voucher !== null) {
      const share = voucherShare(worst, voucher.copayBp);
      const available = voucher.account.available();
      if (share <= available) {
        voucherHeld = share;
      } else if (voucher.onExhausted === 'self-pay' || !funds.prepaid) {
        voucherHeld = available;
      } else {
        return { admitted: false, ...voucherRefusal(voucher.id, available, share) };
      }
    }
    const walletHeld = worst - voucherHeld;
    if (funds.prepaid && walletHeld > funds.wallet.available()) {
      return {
        admitted: false,
        ...walletRefusal(funds.wallet.available(), walletHeld, voucher?.id ?? null),
      };
    }
    if (voucher !== null) voucher.account.held += voucherHeld;
    funds.wallet.held += walletHeld;
    return { admitted: true, ticket: new Hold(this, funds, voucher, voucherHeld, walletHeld, request) };
  }

  private load(organizationId: string): Promise<OrganizationFunds> {
    let loading = this.loading.get(organizationId);
    if (loading === undefined) {
      loading = this.read(organizationId).then(
        (funds) => {
          // a `forget` while reading dropped this read: the next call reads again
          if (this.loading.get(organizationId) === loading) {
            this.loading.delete(organizationId);
            this.organizations.set(organizationId, funds);
            const late = this.lateCharges.get(organizationId);
            this.lateCharges.delete(organizationId);
            if (late !== undefined) applyCharges(funds, late);
          }
          return funds;
        },
        (error: unknown) => {
          if (this.loading.get(organizationId) === loading) this.loading.delete(organizationId);
          throw error;
        },
      );
      this.loading.set(organizationId, loading);
    }
    return loading;
  }

  private async read(organizationId: string): Promise<OrganizationFunds> {
    await this.synced();
    return readOrganizationFunds(this.db, organizationId);
  }
}

/**
 * An organisation's spend mode, its vouchers still valid (soonest to expire first, with their terms)
 * and the balances of them and of its wallet, as the ledger has them now.
 */
export async function readOrganizationFunds(
  db: Database,
  organizationId: string,
): Promise<OrganizationFunds> {
  const org = await db.get<{ spend_mode: string }>('SELECT spend_mode FROM organizations WHERE id = ?', [
    organizationId,
  ]);
  const now = Date.now();
  const rows = await db.all<{
    id: string;
    copay_bp: number;
    valid_from: number;
    valid_until: number;
    eligible_products: string | null;
    eligible_suppliers: string | null;
    on_exhausted: 'block' | 'self-pay';
    balance: string | null;
  }>(
    `SELECT v.id, v.copay_bp, v.valid_from, v.valid_until, p.eligible_products, p.eligible_suppliers, p.on_exhausted,
       CAST(a.balance_micro_krw AS TEXT) AS balance
     FROM vouchers v JOIN programmes p ON p.id = v.programme_id
     LEFT JOIN ledger_accounts a ON a.id = 'voucher:' || v.id
     WHERE v.organization_id = ? AND v.valid_until > ?
     ORDER BY v.valid_until, v.id`,
    [organizationId, now],
  );
  const wallet = await db.get<{ balance: string }>(
    'SELECT CAST(balance_micro_krw AS TEXT) AS balance FROM ledger_accounts WHERE id = ?',
    [accountId.wallet(organizationId)],
  );
  return new OrganizationFunds(
    org?.spend_mode === 'prepaid',
    new Account(accountId.wallet(organizationId), BigInt(wallet?.balance ?? '0')),
    rows.map(
      (r) =>
        new VoucherFunds(
          r.id,
          new Account(accountId.voucher(r.id), BigInt(r.balance ?? '0')),
          Number(r.copay_bp),
          Number(r.valid_from),
          Number(r.valid_until),
          r.eligible_products ? new Set(JSON.parse(r.eligible_products) as string[]) : null,
          r.on_exhausted,
          r.eligible_suppliers ? new Set(JSON.parse(r.eligible_suppliers) as string[]) : null,
        ),
    ),
  );
}
