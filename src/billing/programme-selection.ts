import { z } from 'zod';
import type { AuditTrail } from '../audit/audit-log.ts';
import { ConflictError, NotFoundError, ValidationError } from '../errors.ts';
import { DAY_MS, kstDate, kstDateStart } from '../kst.ts';
import type { Database, SqlExecutor } from '../storage/database.ts';
import { newId } from '../storage/ids.ts';
import { parseInput } from '../validation.ts';
import { accountId, lockBalances } from './ledger.ts';
import { formatKrw, parseKrwAmount } from './money.ts';
import type { Application, ApplicationService } from './programme-applications.ts';
import { krw, kstDay, type ProgrammeService, selectedCount } from './programmes.ts';
import { costCategoriesInput } from './supplier-pool.ts';

const selectInput = z.strictObject({
  /** What the agreement grants: at most what was requested. */
  amountKrw: krw,
  /** The agreement's period; defaults: the programme's. */
  startsOn: kstDay.optional(),
  endsOn: kstDay.optional(),
  /** What the agreement pays for; default: what was requested. */
  costCategories: costCategoriesInput.optional(),
  reason: z.string().trim().max(2000).optional(),
});

const rejectInput = z.strictObject({
  reason: z.string({ error: 'required: say why the application is rejected' }).trim().min(1).max(2000),
});

/**
 * The operator's decision on a submitted application. Selecting makes the agreement (협약) and issues
 * its voucher in one transaction with the programme's budget account locked, so neither the capacity
 * nor the budget is ever exceeded, two operators selecting at the same moment included: the second
 * waits for the first to commit, then counts again (docs/billing.md).
 */
export class SelectionService {
  constructor(
    private readonly db: Database,
    private readonly programmes: ProgrammeService,
    private readonly applications: ApplicationService,
  ) {}

  /**
   * `voucherTrail` records the voucher issued (its own audit entry, in the same transaction).
   */
  async select(
    applicationId: string,
    input: unknown,
    trail: AuditTrail,
    voucherTrail: AuditTrail,
    actorId: string,
  ): Promise<Application> {
    const v = parseInput(selectInput, input);
    const after = await this.db.transaction(async (tx) => {
      const head = await tx.get<{ programme_id: string }>(
        'SELECT programme_id FROM programme_applications WHERE id = ?',
        [applicationId],
      );
      if (!head) throw new NotFoundError('application', applicationId);
      const programmeId = head.programme_id;
      // Lock first, read after: on PostgreSQL every statement after the lock sees what the selection
      // that held it before us committed; SQLite's write transaction already runs alone.
      await lockBalances(tx, this.db.dialect, [accountId.programme(programmeId)]);
      const before = await this.applications.get(applicationId, tx);
      if (before.status !== 'submitted')
        throw new ConflictError(
          'status',
          `the application is ${before.status}: only a submitted application is selected`,
          '제출 상태의 신청서만 선정할 수 있습니다.',
        );
      const programme = await this.programmes.get(programmeId, tx);
      if (v.amountKrw > parseKrwAmount(before.requestedKrw))
        throw ValidationError.of('amountKrw', `at most what was requested: ${before.requestedKrw} KRW`);
      const programmeStarts = kstDateStart(programme.startsOn);
      const programmeEnds = kstDateStart(programme.endsOn) + DAY_MS;
      const startsAt = v.startsOn ?? programmeStarts;
      const endsAt = v.endsOn === undefined ? programmeEnds : v.endsOn + DAY_MS;
      if (startsAt < programmeStarts || startsAt >= programmeEnds)
        throw ValidationError.of('startsOn', 'must lie within the programme period');
      if (endsAt > programmeEnds) throw ValidationError.of('endsOn', 'must lie within the programme period');
      if (endsAt <= startsAt) throw ValidationError.of('endsOn', 'must not be before startsOn');
      if (programme.capacity !== null) {
        const selected = await selectedCount(tx, programmeId);
        if (selected >= programme.capacity)
          throw new ConflictError(
            'capacity',
            `the programme selects at most ${programme.capacity} organizations and has selected ${selected}`,
            `정원(${programme.capacity}개 기관)이 모두 찼습니다.`,
          );
      }
      // the budget and the cap per organisation are the voucher's to check, under the same lock
      const voucher = await this.programmes.issueVoucherIn(
        tx,
        programmeId,
        {
          organizationId: before.organizationId,
          amountKrw: formatKrw(v.amountKrw),
          validFrom: kstDate(startsAt),
          validUntil: kstDate(endsAt - DAY_MS),
        },
        voucherTrail,
        actorId,
      );
      const now = Date.now();
      await tx.run(
        `INSERT INTO agreements (id, application_id, programme_id, organization_id, supplier_id, voucher_id,
           amount_micro_krw, starts_at, ends_at, cost_categories, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [
          newId('agr'),
          applicationId,
          programmeId,
          before.organizationId,
          before.supplierId,
          voucher.id,
          v.amountKrw,
          startsAt,
          endsAt,
          JSON.stringify(v.costCategories ?? before.costCategories),
          now,
        ],
      );
      await this.decide(tx, applicationId, 'selected', v.reason ?? null, now);
      const after = await this.applications.get(applicationId, tx);
      await trail(tx, { entityId: applicationId, before, after });
      return after;
    });
    this.programmes.onVoucherIssued(after.organizationId);
    return after;
  }

  async reject(applicationId: string, input: unknown, trail: AuditTrail): Promise<Application> {
    const v = parseInput(rejectInput, input);
    return this.db.transaction(async (tx) => {
      const before = await this.applications.get(applicationId, tx);
      if (before.status !== 'submitted')
        throw new ConflictError(
          'status',
          `the application is ${before.status}: only a submitted application is rejected`,
          '제출 상태의 신청서만 탈락 처리할 수 있습니다.',
        );
      await this.decide(tx, applicationId, 'rejected', v.reason, Date.now());
      const after = await this.applications.get(applicationId, tx);
      await trail(tx, { entityId: applicationId, before, after });
      return after;
    });
  }

  private async decide(
    tx: SqlExecutor,
    applicationId: string,
    status: 'selected' | 'rejected',
    reason: string | null,
    now: number,
  ): Promise<void> {
    // conditional, so that of two decisions racing on one application only one lands
    const changed = await tx.run(
      `UPDATE programme_applications SET status = ?, decision_reason = ?, decided_at = ?, updated_at = ?
       WHERE id = ? AND status = 'submitted'`,
      [status, reason, now, now, applicationId],
    );
    if (changed !== 1)
      throw new ConflictError('status', 'the application was decided meanwhile', '이미 결정된 신청서입니다.');
  }
}
