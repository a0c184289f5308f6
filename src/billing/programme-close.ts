import { z } from 'zod';
import type { AuditTrail } from '../audit/audit-log.ts';
import { ConflictError, NotFoundError, ValidationError } from '../errors.ts';
import type { Database, SqlExecutor } from '../storage/database.ts';
import { parseInput } from '../validation.ts';
import { accountId, lockBalances, postTransaction } from './ledger.ts';
import { formatKrw, type MicroKrw } from './money.ts';

/**
 * Closing a programme (docs/billing.md#closing-a-programme): what every voucher left unspent goes back
 * to the programme's budget, in the ledger, and a final report per voucher (and the agreement it was
 * issued for) says what was granted, what the programme pays the supplier in tranches, what was used,
 * what the organisation co-paid and what was returned. Made once, kept as made.
 */

const closeInput = z.strictObject({
  /** How the programme pays suppliers: an advance and the rest, in percent of what it grants. */
  tranchePercents: z
    .array(z.number().int().min(1).max(100))
    .min(1)
    .max(5)
    .refine((p) => p.reduce((a, b) => a + b, 0) === 100, { message: 'must add up to 100' })
    .optional(),
  /** Close before the programme's last day (a programme ended early); the reason is required then. */
  early: z.boolean().optional(),
  reason: z.string().trim().min(1).max(2000).optional(),
});

export interface Tranche {
  label: string;
  percent: number;
  /** What the programme owes the supplier for this tranche; negative: the supplier pays back (환수). */
  amountKrw: string;
}

export interface VoucherReport {
  voucherId: string;
  organizationId: string;
  agreementId: string | null;
  supplierId: string | null;
  grantedKrw: string;
  /** What the calls paid by this voucher cost in all: the voucher's part and the organisation's. */
  usedKrw: string;
  voucherPaidKrw: string;
  coPaidKrw: string;
  returnedKrw: string;
  tranches: Tranche[];
}

export interface ProgrammeReport {
  programmeId: string;
  closedAt: string;
  closedBy: string;
  early: boolean;
  reason: string | null;
  tranchePercents: number[];
  vouchers: VoucherReport[];
  totals: { grantedKrw: string; voucherPaidKrw: string; coPaidKrw: string; returnedKrw: string };
}

const HUNDRED = 100n;

/**
 * Tranches of what the programme pays: each but the last is its percent of the grant, paid in advance;
 * the last is what the voucher really paid less the advances — negative when the advances exceeded it.
 */
export function tranchesOf(granted: MicroKrw, voucherPaid: MicroKrw, percents: readonly number[]): Tranche[] {
  const tranches: Tranche[] = [];
  let advanced = 0n;
  percents.forEach((percent, i) => {
    const last = i === percents.length - 1;
    const amount = last ? voucherPaid - advanced : (granted * BigInt(percent)) / HUNDRED;
    advanced += amount;
    tranches.push({
      label: last ? '잔금 / final payment' : i === 0 ? '선금 / advance' : `중도금 ${i} / interim ${i}`,
      percent,
      amountKrw: formatKrw(amount),
    });
  });
  return tranches;
}

export interface VoucherOf {
  organizationId: string;
  voucherId: string;
}

export class ProgrammeCloseService {
  /** Organisations whose vouchers changed: budget holds forget them. */
  onVouchersChanged: (organizationId: string) => void = () => {};
  /**
   * Before the closing transaction, with the programme's vouchers: shared holds take a version per
   * voucher account (limits/shared-admission.ts), returned as tokens for `afterClose`.
   */
  beforeClose: (vouchers: readonly VoucherOf[]) => Promise<Map<string, string | null>> = async () =>
    new Map();
  /** After it committed: what each voucher gave back, so shared counters move by exactly that. */
  afterClose: (
    returned: readonly (VoucherOf & { amount: MicroKrw })[],
    tokens: Map<string, string | null>,
  ) => Promise<void> = async () => {};

  constructor(
    private readonly db: Database,
    /** Resolves once every usage record this replica wrote is in the ledger. */
    private readonly synced: () => Promise<void> = async () => {},
  ) {}

  async close(
    programmeId: string,
    input: unknown,
    trail: AuditTrail,
    actorId: string,
  ): Promise<ProgrammeReport> {
    const v = parseInput(closeInput, input ?? {});
    if (v.early && !v.reason)
      throw ValidationError.of('reason', 'say why the programme closes before its end');
    const percents = v.tranchePercents ?? [70, 30];
    await this.synced();
    const known = await this.db.all<{ id: string; organization_id: string }>(
      'SELECT id, organization_id FROM vouchers WHERE programme_id = ? ORDER BY id',
      [programmeId],
    );
    const tokens = await this.beforeClose(
      known.map((r) => ({ voucherId: r.id, organizationId: r.organization_id })),
    );
    const now = Date.now();
    const returns: (VoucherOf & { amount: MicroKrw })[] = [];
    const report = await this.db.transaction(async (tx) => {
      returns.length = 0;
      const p = await tx.get<{ ends_at: number }>('SELECT ends_at FROM programmes WHERE id = ?', [
        programmeId,
      ]);
      if (!p) throw new NotFoundError('programme', programmeId);
      if (!v.early && now < Number(p.ends_at))
        throw ValidationError.of('early', 'the programme has not ended: close it early with a reason');
      // the programme's budget account is the lock: a second close, a selection or an issue waits here
      await lockBalances(tx, this.db.dialect, [accountId.programme(programmeId)]);
      if (await tx.get('SELECT programme_id FROM programme_closures WHERE programme_id = ?', [programmeId]))
        throw new ConflictError('programmeId', `programme ${programmeId} is closed already`);
      const vouchers = await this.vouchersOf(tx, programmeId);
      const balances = await lockBalances(
        tx,
        this.db.dialect,
        vouchers.map((x) => accountId.voucher(x.id)),
      );
      const reports: VoucherReport[] = [];
      const totals = { granted: 0n, voucherPaid: 0n, coPaid: 0n, returned: 0n };
      for (const x of vouchers) {
        const left = balances.get(accountId.voucher(x.id)) ?? 0n;
        if (left > 0n) {
          await postTransaction(tx, this.db.dialect, {
            kind: 'correction',
            createdAtMs: now,
            actorId,
            memo: `programme ${programmeId} closed: unspent balance of voucher ${x.id} returned`,
            entries: [
              { accountId: accountId.voucher(x.id), amount: -left },
              { accountId: accountId.programme(programmeId), amount: left },
            ],
          });
        }
        const paid = await this.paidBy(tx, x.id);
        const returned = left > 0n ? left : 0n;
        if (returned > 0n)
          returns.push({ voucherId: x.id, organizationId: x.organizationId, amount: -returned });
        totals.granted += x.amount;
        totals.voucherPaid += paid.voucher;
        totals.coPaid += paid.wallet;
        totals.returned += returned;
        reports.push({
          voucherId: x.id,
          organizationId: x.organizationId,
          agreementId: x.agreementId,
          supplierId: x.supplierId,
          grantedKrw: formatKrw(x.amount),
          usedKrw: formatKrw(paid.voucher + paid.wallet),
          voucherPaidKrw: formatKrw(paid.voucher),
          coPaidKrw: formatKrw(paid.wallet),
          returnedKrw: formatKrw(returned),
          tranches: tranchesOf(x.amount, paid.voucher, percents),
        });
      }
      const made: ProgrammeReport = {
        programmeId,
        closedAt: new Date(now).toISOString(),
        closedBy: actorId,
        early: v.early === true,
        reason: v.reason ?? null,
        tranchePercents: percents,
        vouchers: reports,
        totals: {
          grantedKrw: formatKrw(totals.granted),
          voucherPaidKrw: formatKrw(totals.voucherPaid),
          coPaidKrw: formatKrw(totals.coPaid),
          returnedKrw: formatKrw(totals.returned),
        },
      };
      await tx.run(
        'INSERT INTO programme_closures (programme_id, closed_at, closed_by, report_json) VALUES (?, ?, ?, ?)',
        [programmeId, now, actorId, JSON.stringify(made)],
      );
      await trail(tx, {
        entityId: programmeId,
        after: { totals: made.totals, vouchers: reports.length, early: made.early },
      });
      return made;
    });
    await this.afterClose(returns, tokens);
    for (const organizationId of new Set(report.vouchers.map((r) => r.organizationId)))
      this.onVouchersChanged(organizationId);
    return report;
  }

  async report(programmeId: string): Promise<ProgrammeReport> {
    const row = await this.db.get<{ report_json: string }>(
      'SELECT report_json FROM programme_closures WHERE programme_id = ?',
      [programmeId],
    );
    if (!row) throw new NotFoundError('programme final report', programmeId);
    return JSON.parse(row.report_json) as ProgrammeReport;
  }

  private async vouchersOf(tx: SqlExecutor, programmeId: string) {
    const rows = await tx.all<{
      id: string;
      organization_id: string;
      amount: string;
      agreement_id: string | null;
      supplier_id: string | null;
    }>(
      `SELECT v.id, v.organization_id, CAST(v.amount_micro_krw AS TEXT) AS amount, g.id AS agreement_id, g.supplier_id
       FROM vouchers v LEFT JOIN agreements g ON g.voucher_id = v.id
       WHERE v.programme_id = ? ORDER BY v.id`,
      [programmeId],
    );
    return rows.map((r) => ({
      id: r.id,
      organizationId: r.organization_id,
      amount: BigInt(r.amount),
      agreementId: r.agreement_id,
      supplierId: r.supplier_id,
    }));
  }

  /** What the charges of calls admitted against this voucher took from it and from the wallet. */
  private async paidBy(tx: SqlExecutor, voucherId: string): Promise<{ voucher: MicroKrw; wallet: MicroKrw }> {
    const row = await tx.get<{ voucher: string | null; wallet: string | null }>(
      `SELECT CAST(SUM(CASE WHEN e.account_id = ? THEN -e.amount_micro_krw ELSE 0 END) AS TEXT) AS voucher,
         CAST(SUM(CASE WHEN e.account_id LIKE 'wallet:%' THEN -e.amount_micro_krw ELSE 0 END) AS TEXT) AS wallet
       FROM usage_events u JOIN ledger_transactions t ON t.request_id = u.request_id AND t.kind = 'charge'
       JOIN ledger_entries e ON e.transaction_id = t.id
       WHERE u.voucher_id = ?`,
      [accountId.voucher(voucherId), voucherId],
    );
    return { voucher: BigInt(row?.voucher ?? '0'), wallet: BigInt(row?.wallet ?? '0') };
  }
}
