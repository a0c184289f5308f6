import { z } from 'zod';
import type { AuditTrail } from '../audit/audit-log.ts';
import { ConflictError, NotFoundError, ValidationError } from '../errors.ts';
import type { Database } from '../storage/database.ts';
import { parseInput } from '../validation.ts';
import { accountId, balancesOf, lockBalances, postTransaction } from './ledger.ts';
import { formatKrw, type MicroKrw, PriceFormatError, parseKrwAmount } from './money.ts';

/**
 * An operator's correction of an organisation's wallet or voucher (docs/billing.md#corrections): one
 * new `correction` transaction, never a change to what was posted. A wallet moves against
 * `external:corrections` (the hub's own adjustments: one account sums what corrections gave or took);
 * a voucher moves against its programme's budget, as an issue does, so that budget plus vouchers stays
 * what the programme was funded with.
 */

/** A signed KRW amount: "-1.5", "12"; never zero. */
const signedKrw = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const text = typeof value === 'number' ? String(value) : value.trim();
  const negative = text.startsWith('-');
  try {
    const amount = parseKrwAmount(negative || text.startsWith('+') ? text.slice(1) : value);
    if (amount === 0n) {
      ctx.addIssue({ code: 'custom', message: 'must not be 0 KRW' });
      return z.NEVER;
    }
    return negative ? -amount : amount;
  } catch (error) {
    ctx.addIssue({
      code: 'custom',
      message: error instanceof PriceFormatError ? error.message : String(error),
    });
    return z.NEVER;
  }
});

const correctionInput = z.strictObject({
  account: z
    .string()
    .trim()
    .regex(/^(wallet|voucher:\S+)$/, 'must be "wallet" or "voucher:<voucherId>"'),
  amountKrw: signedKrw,
  reason: z.string().trim().min(1).max(2000),
  usageRequestId: z.string().trim().min(1).max(200).nullable().optional(),
});

export interface CorrectionEntry {
  accountId: string;
  amountKrw: string;
}

export interface Correction {
  transactionId: string;
  kind: 'correction';
  organizationId: string;
  /** The organisation's account corrected: `wallet:{orgId}` or `voucher:{id}`. */
  accountId: string;
  amountKrw: string;
  /** The account's balance after the correction. */
  balanceKrw: string;
  reason: string;
  usageRequestId: string | null;
  createdAt: string;
  createdBy: string;
  entries: CorrectionEntry[];
}

export class CorrectionService {
  /**
   * Before the transaction, with the organisation's account: shared holds take a version
   * (limits/shared-admission.ts) returned as a token for `afterChange`. Null: nothing shared.
   */
  beforeChange: (organizationId: string, account: string) => Promise<string | null> = async () => null;
  /** After the commit: the account's shared counter moves by exactly `amount`; caches forget the funds. */
  afterChange: (
    organizationId: string,
    account: string,
    amount: MicroKrw,
    token: string | null,
  ) => Promise<void> = async () => {};

  constructor(
    private readonly db: Database,
    /** Resolves once every usage record, whichever replica wrote it, is in the ledger. */
    private readonly synced: () => Promise<void> = async () => {},
  ) {}

  async create(
    organizationId: string,
    input: unknown,
    trail: AuditTrail,
    actorId: string,
  ): Promise<Correction> {
    const v = parseInput(correctionInput, input);
    // every call a client saw complete is charged first: the floor below sees it, and so does the
    // request a correction names
    await this.synced();
    const org = await this.db.get<{ spend_mode: string }>(
      'SELECT spend_mode FROM organizations WHERE id = ?',
      [organizationId],
    );
    if (!org) throw new NotFoundError('organization', organizationId);
    const voucherId = v.account === 'wallet' ? null : v.account.slice('voucher:'.length);
    let programmeId: string | null = null;
    if (voucherId !== null) {
      const voucher = await this.db.get<{ programme_id: string }>(
        'SELECT programme_id FROM vouchers WHERE id = ? AND organization_id = ?',
        [voucherId, organizationId],
      );
      // another organisation's voucher reads as none, like a nonexistent one
      if (!voucher)
        throw ValidationError.of('account', `organization ${organizationId} has no voucher ${voucherId}`);
      programmeId = voucher.programme_id;
    }
    const usageRequestId = v.usageRequestId ?? null;
    if (usageRequestId !== null) {
      const usage = await this.db.get(
        'SELECT request_id FROM usage_events WHERE request_id = ? AND organization_id = ?',
        [usageRequestId, organizationId],
      );
      if (!usage)
        throw ValidationError.of(
          'usageRequestId',
          `organization ${organizationId} made no request ${usageRequestId}`,
        );
    }
    const account = voucherId === null ? accountId.wallet(organizationId) : accountId.voucher(voucherId);
    const counter = programmeId === null ? accountId.corrections : accountId.programme(programmeId);
    const amount = v.amountKrw;
    const memo = usageRequestId === null ? v.reason : `${v.reason} (request ${usageRequestId})`;
    const token = await this.beforeChange(organizationId, account);
    const now = Date.now();
    let correction: Correction;
    try {
      correction = await this.db.transaction(async (tx) => {
        // locked in id order (programme: < voucher: ; external: < wallet:), as an issue or a close does
        const balances = await lockBalances(tx, this.db.dialect, [counter, account]);
        const before = balances.get(account) ?? 0n;
        if (programmeId !== null) {
          if (
            await tx.get('SELECT programme_id FROM programme_closures WHERE programme_id = ?', [programmeId])
          )
            throw new ConflictError(
              'account',
              `programme ${programmeId} is closed: its vouchers are settled in its final report`,
              '종료된 지원사업의 바우처는 정정할 수 없습니다.',
            );
          const budget = balances.get(counter) ?? 0n;
          if (amount > budget)
            throw new ConflictError(
              'amountKrw',
              `amountKrw ${formatKrw(amount)} is more than the ${formatKrw(budget)} KRW the programme has left to issue`,
              '사업 예산이 부족합니다.',
            );
        }
        // a voucher never goes below zero; nor does a prepaid wallet through a correction
        const floored = voucherId !== null || org.spend_mode === 'prepaid';
        if (floored && amount < 0n && before + amount < 0n)
          throw new ConflictError(
            'amountKrw',
            `amountKrw ${formatKrw(amount)} would take ${account} below zero: it has ${formatKrw(before)} KRW`,
            '정정 금액이 잔액보다 큽니다.',
          );
        const transactionId = (await postTransaction(tx, this.db.dialect, {
          kind: 'correction',
          createdAtMs: now,
          actorId,
          memo,
          entries: [
            { accountId: account, amount },
            { accountId: counter, amount: -amount },
          ],
        }))!;
        const after = (await balancesOf(tx, [account])).get(account)!;
        const made: Correction = {
          transactionId,
          kind: 'correction',
          organizationId,
          accountId: account,
          amountKrw: formatKrw(amount),
          balanceKrw: formatKrw(after),
          reason: v.reason,
          usageRequestId,
          createdAt: new Date(now).toISOString(),
          createdBy: actorId,
          entries: [
            { accountId: account, amountKrw: formatKrw(amount) },
            { accountId: counter, amountKrw: formatKrw(-amount) },
          ],
        };
        await trail(tx, {
          entityId: organizationId,
          before: { accountId: account, balanceKrw: formatKrw(before) },
          after: {
            accountId: account,
            balanceKrw: made.balanceKrw,
            correctionKrw: made.amountKrw,
            counterAccountId: counter,
            reason: v.reason,
            usageRequestId,
            transactionId,
          },
        });
        return made;
      });
    } catch (error) {
      // the version was bumped: a refused correction moves nothing (amount 0), the counter stays exact
      await this.afterChange(organizationId, account, 0n, token);
      throw error;
    }
    await this.afterChange(organizationId, account, amount, token);
    return correction;
  }
}
