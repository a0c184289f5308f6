import { z } from 'zod';
import type { AuditTrail } from '../audit/audit-log.ts';
import { NotFoundError } from '../errors.ts';
import type { Database } from '../storage/database.ts';
import { parseInput } from '../validation.ts';
import { accountId, balancesOf, postTransaction } from './ledger.ts';
import { formatKrw } from './money.ts';
import { krw, type ProgrammeService, type Voucher } from './programmes.ts';

const depositInput = z.strictObject({
  amountKrw: krw,
  /** e.g. the bank transfer's reference. */
  memo: z.string().trim().max(500).nullable().optional(),
});

const ledgerQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export interface Funds {
  organizationId: string;
  spendMode: 'postpaid' | 'prepaid';
  /** Negative: what the organisation owes. */
  walletKrw: string;
  vouchers: Voucher[];
}

export interface LedgerLine {
  transactionId: string;
  kind: string;
  requestId: string | null;
  accountId: string;
  amountKrw: string;
  createdAt: string;
  memo: string | null;
}

/**
 * An organisation's money: its wallet (deposits recorded by the operator; charges the vouchers do not
 * cover) and its vouchers, read from the ledger.
 */
export class FundsService {
  /** The organisation's funds changed (`deposit`: by a deposit): the budget holds must learn of it. */
  onChange: (
    organizationId: string,
    deposit?: { amount: bigint; token: string | null },
  ) => void | Promise<void> = () => {};
  /** Before a deposit's transaction (shared holds order it against their reads of the ledger). */
  beforeDeposit: (organizationId: string) => Promise<string | null> = async () => null;

  constructor(
    private readonly db: Database,
    private readonly programmes: ProgrammeService,
  ) {}

  async deposit(organizationId: string, input: unknown, trail: AuditTrail, actorId: string): Promise<Funds> {
    const v = parseInput(depositInput, input);
    const amount = v.amountKrw;
    const token = await this.beforeDeposit(organizationId);
    const now = Date.now();
    await this.db.transaction(async (tx) => {
      const org = await tx.get('SELECT id FROM organizations WHERE id = ?', [organizationId]);
      if (!org) throw new NotFoundError('organization', organizationId);
      const before = await balancesOf(tx, [accountId.wallet(organizationId)]);
      const transactionId = await postTransaction(tx, this.db.dialect, {
        kind: 'deposit',
        createdAtMs: now,
        actorId,
        memo: v.memo ?? null,
        entries: [
          { accountId: accountId.deposits, amount: -amount },
          { accountId: accountId.wallet(organizationId), amount },
        ],
      });
      const after = await balancesOf(tx, [accountId.wallet(organizationId)]);
      await trail(tx, {
        entityId: organizationId,
        before: { walletKrw: formatKrw(before.get(accountId.wallet(organizationId))!) },
        after: {
          walletKrw: formatKrw(after.get(accountId.wallet(organizationId))!),
          depositKrw: formatKrw(amount),
          transactionId,
        },
      });
    });
    await this.onChange(organizationId, { amount, token });
    return this.of(organizationId);
  }

  async of(organizationId: string): Promise<Funds> {
    const org = await this.db.get<{ spend_mode: string }>(
      'SELECT spend_mode FROM organizations WHERE id = ?',
      [organizationId],
    );
    if (!org) throw new NotFoundError('organization', organizationId);
    const wallet = await balancesOf(this.db, [accountId.wallet(organizationId)]);
    return {
      organizationId,
      spendMode: org.spend_mode as Funds['spendMode'],
      walletKrw: formatKrw(wallet.get(accountId.wallet(organizationId))!),
      vouchers: await this.programmes.vouchers({ organizationId }),
    };
  }

  /** The ledger entries of the organisation's wallet and vouchers, newest first. */
  async ledger(organizationId: string, query: unknown): Promise<LedgerLine[]> {
    const q = parseInput(ledgerQuery, query);
    const org = await this.db.get('SELECT id FROM organizations WHERE id = ?', [organizationId]);
    if (!org) throw new NotFoundError('organization', organizationId);
    const rows = await this.db.all(
      `SELECT e.transaction_id, t.kind, t.request_id, e.account_id, CAST(e.amount_micro_krw AS TEXT) AS amount,
         e.created_at, t.memo
       FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id
       WHERE e.account_id = ? OR e.account_id IN (SELECT 'voucher:' || id FROM vouchers WHERE organization_id = ?)
       ORDER BY e.created_at DESC, e.transaction_id DESC LIMIT ?`,
      [accountId.wallet(organizationId), organizationId, q.limit],
    );
    return rows.map((r) => ({
      transactionId: r.transaction_id as string,
      kind: r.kind as string,
      requestId: (r.request_id as string | null) ?? null,
      accountId: r.account_id as string,
      amountKrw: formatKrw(BigInt(r.amount as string)),
      createdAt: new Date(Number(r.created_at)).toISOString(),
      memo: (r.memo as string | null) ?? null,
    }));
  }
}
