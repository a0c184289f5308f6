import { z } from 'zod';
import type { AuditTrail } from '../audit/audit-log.ts';
import { kstDay } from '../billing/programmes.ts';
import { ConflictError, NotFoundError, ValidationError } from '../errors.ts';
import { DAY_MS, dayIndex, kstDate, kstDateStart } from '../kst.ts';
import { type Database, isUniqueViolation, type SqlExecutor } from '../storage/database.ts';
import { newId } from '../storage/ids.ts';
import { parseInput } from '../validation.ts';
import type { AllocationService } from './allocations.ts';
import type { CallService } from './calls.ts';
import { commitments } from './capacity.ts';
import { recordEvent } from './events.ts';
import { limitsOf } from './grants.ts';
import type { PoolService } from './pools.ts';
import { Ledger } from './ranking.ts';
import { type Clock, iso } from './values.ts';

const requestInput = z.strictObject({
  /** The new last day (inclusive). */
  endsOn: kstDay,
  reason: z.string({ error: 'required: say why' }).trim().min(1).max(5000),
});

const decisionInput = z.strictObject({
  reason: z.string({ error: 'required: say why' }).trim().min(1).max(2000),
});

export interface Extension {
  id: string;
  allocationId: string;
  endsOn: string;
  reason: string;
  status: 'requested' | 'approved' | 'rejected';
  decidedAt: string | null;
  decidedBy: string | null;
  decisionReason: string | null;
  createdAt: string;
}

function toExtension(r: Record<string, unknown>): Extension {
  return {
    id: r.id as string,
    allocationId: r.allocation_id as string,
    endsOn: kstDate(Number(r.ends_at) - DAY_MS),
    reason: r.reason as string,
    status: r.status as Extension['status'],
    decidedAt: iso(r.decided_at),
    decidedBy: (r.decided_by as string | null) ?? null,
    decisionReason: (r.decision_reason as string | null) ?? null,
    createdAt: iso(r.created_at)!,
  };
}

/**
 * Extensions (docs/compute.md): an organisation asks to keep its GPUs longer; the operator approves
 * (within the call's period and maximum grant length, with the pool and the call able to hold the
 * GPUs on the added days, checked under the same locks as selection) or rejects, with a reason.
 */
export class ExtensionService {
  constructor(
    private readonly db: Database,
    private readonly calls: CallService,
    private readonly pools: PoolService,
    private readonly allocations: AllocationService,
    private readonly clock: Clock,
  ) {}

  async request(allocationId: string, input: unknown, trail: AuditTrail): Promise<Extension> {
    const v = parseInput(requestInput, input);
    const id = newId('gex');
    return this.db.transaction(async (tx) => {
      const a = await this.allocations.row(allocationId, tx);
      if (!['scheduled', 'provisioning', 'active'].includes(a.status))
        throw new ConflictError(
          'status',
          `the allocation is ${a.status}: only a live one is extended`,
          '진행 중인 배정만 연장할 수 있습니다.',
        );
      const endsAt = v.endsOn + DAY_MS;
      if (endsAt <= a.endsAt)
        throw ValidationError.of('endsOn', `must be after the current end (${kstDate(a.endsAt - DAY_MS)})`);
      await this.checkTerms(tx, a.callId, a.startsAt, endsAt);
      try {
        await tx.run(
          `INSERT INTO compute_extensions (id, allocation_id, ends_at, reason, status, created_at) VALUES (?, ?, ?, ?, 'requested', ?)`,
          [id, allocationId, endsAt, v.reason, this.clock()],
        );
      } catch (error) {
        if (isUniqueViolation(error))
          throw new ConflictError(
            'allocationId',
            'an extension of this allocation is waiting for a decision',
            '심사 중인 연장 신청이 있습니다.',
          );
        throw error;
      }
      const after = await this.get(id, tx);
      await trail(tx, { entityId: id, after });
      return after;
    });
  }

  private async checkTerms(tx: SqlExecutor, callId: string, startsAt: number, endsAt: number): Promise<void> {
    const call = await this.calls.terms(callId, tx);
    if (endsAt > call.endsAt)
      throw ValidationError.of('endsOn', `must lie within the call (until ${call.endsOn})`);
    const days = Math.round((endsAt - startsAt) / DAY_MS);
    if (days > call.maxGrantDays)
      throw ValidationError.of('endsOn', `${days} days in all: the call grants at most ${call.maxGrantDays}`);
  }

  async get(id: string, db: SqlExecutor = this.db): Promise<Extension> {
    const row = await db.get('SELECT * FROM compute_extensions WHERE id = ?', [id]);
    if (!row) throw new NotFoundError('extension', id);
    return toExtension(row);
  }

  async ofAllocation(allocationId: string): Promise<Extension[]> {
    const rows = await this.db.all(
      'SELECT * FROM compute_extensions WHERE allocation_id = ? ORDER BY created_at',
      [allocationId],
    );
    return rows.map(toExtension);
  }

  async approve(id: string, input: unknown, trail: AuditTrail, actorId: string): Promise<Extension> {
    const v = parseInput(decisionInput, input);
    const head = await this.get(id);
    const allocation = await this.allocations.row(head.allocationId);
    return this.db.transaction(async (tx) => {
      const call = await this.calls.lock(tx, allocation.callId);
      const [pool] = await this.pools.lockAll(tx, [allocation.poolId]);
      const before = await this.get(id, tx);
      if (before.status !== 'requested')
        throw new ConflictError(
          'status',
          `the extension is ${before.status}`,
          '이미 결정된 연장 신청입니다.',
        );
      const a = await this.allocations.row(allocation.id, tx);
      if (!['scheduled', 'provisioning', 'active'].includes(a.status))
        throw new ConflictError(
          'status',
          `the allocation is ${a.status}`,
          '진행 중인 배정만 연장할 수 있습니다.',
        );
      const endsAt = kstDateStart(before.endsOn) + DAY_MS;
      await this.checkTerms(tx, a.callId, a.startsAt, endsAt);
      const track = await tx.get<{ track_id: string }>(
        'SELECT track_id FROM compute_applications WHERE id = ?',
        [a.applicationId],
      );
      const from = a.endsAt;
      const first = dayIndex(from);
      const end = dayIndex(endsAt - 1) + 1;
      const ledger = new Ledger(
        limitsOf(call, [pool!]),
        first,
        end,
        await commitments(tx, [pool!.id], call.id, from, endsAt, a.id),
      );
      if (ledger.overlaps(a.organizationId, a.poolId, first, end))
        throw ValidationError.of(
          'endsOn',
          'the added days overlap another allocation of the organization on this pool',
        );
      const short = ledger.shortfall(a.poolId, track?.track_id ?? '', first, end, a.gpus);
      if (short) throw new ConflictError('endsOn', short.english, short.korean);
      const now = this.clock();
      await tx.run('UPDATE compute_allocations SET ends_at = ?, updated_at = ? WHERE id = ?', [
        endsAt,
        now,
        a.id,
      ]);
      await tx.run(
        `UPDATE compute_extensions SET status = 'approved', decided_at = ?, decided_by = ?, decision_reason = ?
         WHERE id = ? AND status = 'requested'`,
        [now, actorId, v.reason, id],
      );
      await recordEvent(
        tx,
        { allocationId: a.id, poolId: a.poolId, kind: 'extended', detail: { endsOn: before.endsOn } },
        now,
      );
      const after = await this.get(id, tx);
      await trail(tx, { entityId: id, before, after });
      return after;
    });
  }

  async reject(id: string, input: unknown, trail: AuditTrail, actorId: string): Promise<Extension> {
    const v = parseInput(decisionInput, input);
    return this.db.transaction(async (tx) => {
      const before = await this.get(id, tx);
      if (before.status !== 'requested')
        throw new ConflictError(
          'status',
          `the extension is ${before.status}`,
          '이미 결정된 연장 신청입니다.',
        );
      await tx.run(
        `UPDATE compute_extensions SET status = 'rejected', decided_at = ?, decided_by = ?, decision_reason = ?
         WHERE id = ? AND status = 'requested'`,
        [this.clock(), actorId, v.reason, id],
      );
      const after = await this.get(id, tx);
      await trail(tx, { entityId: id, before, after });
      return after;
    });
  }
}
