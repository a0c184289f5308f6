import type { AuditTrail } from '../audit/audit-log.ts';
import { ConflictError, NotFoundError } from '../errors.ts';
import { DAY_MS, dayIndex, dayStartMs, dayText } from '../kst.ts';
import type { Database } from '../storage/database.ts';
import { newId } from '../storage/ids.ts';
import type { Allocation, AllocationService } from './allocations.ts';
import type { CallService } from './calls.ts';
import { commitments } from './capacity.ts';
import { notifyOrganization, recordEvent } from './events.ts';
import { insertAllocations, limitsOf } from './grants.ts';
import type { PoolService } from './pools.ts';
import { Ledger } from './ranking.ts';
import type { Clock } from './values.ts';

export interface Offer {
  allocationId: string;
  applicationId: string;
  organizationId: string;
  gpus: number;
  startsOn: string;
  endsOn: string;
  expiresAt: string;
}

/**
 * The waiting list (docs/compute.md "Reclaim and the waiting list"). GPUs that come back to a pool
 * (reclaimed, ended early, an offer declined, a pool or call grown) are offered to the call's
 * waitlisted applications in rank order: an `offered` allocation that holds the GPUs, from today (or
 * the start asked) to the end asked, until the organisation accepts it (it becomes `scheduled`),
 * declines it, or the call's offer days pass. An application is offered at most once at a time.
 */
export class OfferService {
  /** Allocations accepted: the lifecycle may start them. */
  onAccepted: (id: string) => void = () => {};

  constructor(
    private readonly db: Database,
    private readonly calls: CallService,
    private readonly pools: PoolService,
    private readonly allocations: AllocationService,
    private readonly clock: Clock,
  ) {}

  /** Offers what fits to every call's waiting list; returns the offers made. */
  async offerFreed(): Promise<Offer[]> {
    const calls = await this.db.all<{ call_id: string }>(
      `SELECT DISTINCT call_id FROM compute_applications a WHERE status = 'waitlisted'
         AND NOT EXISTS (SELECT 1 FROM compute_allocations l WHERE l.application_id = a.id) ORDER BY call_id`,
    );
    const out: Offer[] = [];
    for (const { call_id } of calls) out.push(...(await this.offerCall(call_id)));
    return out;
  }

  private async offerCall(callId: string): Promise<Offer[]> {
    return this.db.transaction(async (tx) => {
      const call = await this.calls.lock(tx, callId);
      const pools = await this.pools.lockAll(tx, call.poolIds);
      const now = this.clock();
      const today = dayIndex(now);
      const waiting = await tx.all<{
        id: string;
        organization_id: string;
        pool_id: string;
        track_id: string;
        gpus: number;
        starts_at: number | string;
        ends_at: number | string;
        scheduler_users: string;
      }>(
        `SELECT id, organization_id, pool_id, track_id, gpus, starts_at, ends_at, scheduler_users FROM compute_applications a
         WHERE call_id = ? AND status = 'waitlisted' AND rank IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM compute_allocations l WHERE l.application_id = a.id)
         ORDER BY rank, id`,
        [callId],
      );
      if (waiting.length === 0) return [];
      const spans = waiting.map((w) => ({
        w,
        startDay: Math.max(dayIndex(Number(w.starts_at)), today),
        endDay: dayIndex(Number(w.ends_at) - 1) + 1,
      }));
      const live = spans.filter((s) => s.endDay > s.startDay);
      if (live.length === 0) return [];
      const first = Math.min(...live.map((s) => s.startDay));
      const end = Math.max(...live.map((s) => s.endDay));
      const ledger = new Ledger(
        limitsOf(call, pools),
        first,
        end,
        await commitments(tx, call.poolIds, callId, dayStartMs(first), dayStartMs(end)),
      );
      const poolById = new Map(pools.map((p) => [p.id, p]));
      const offers: Offer[] = [];
      const expiresAt = now + call.reclaimPolicy.offerDays * DAY_MS;
      for (const { w, startDay, endDay } of live) {
        const gpus = Number(w.gpus);
        if (ledger.overlaps(w.organization_id, w.pool_id, startDay, endDay)) continue;
        if (ledger.shortfall(w.pool_id, w.track_id, startDay, endDay, gpus)) continue;
        ledger.commit({
          organizationId: w.organization_id,
          poolId: w.pool_id,
          callId,
          trackId: w.track_id,
          gpus,
          startDay,
          endDay,
        });
        const id = newId('gal');
        await insertAllocations(
          tx,
          [
            {
              id,
              applicationId: w.id,
              call,
              pool: poolById.get(w.pool_id)!,
              organizationId: w.organization_id,
              gpus,
              startsAt: dayStartMs(startDay),
              endsAt: dayStartMs(endDay),
              gpuHourBudget: null,
              schedulerUsers: w.scheduler_users,
              status: 'offered',
              offerExpiresAt: expiresAt,
            },
          ],
          now,
        );
        const offer: Offer = {
          allocationId: id,
          applicationId: w.id,
          organizationId: w.organization_id,
          gpus,
          startsOn: dayText(startDay),
          endsOn: dayText(endDay - 1),
          expiresAt: new Date(expiresAt).toISOString(),
        };
        await recordEvent(tx, { allocationId: id, poolId: w.pool_id, kind: 'offered', detail: offer }, now);
        await notifyOrganization(tx, w.organization_id, 'compute.offer', `compute:offer:${id}`, offer, now);
        offers.push(offer);
      }
      return offers;
    });
  }

  /** The organisation takes the offer: the allocation is scheduled and the application selected. */
  async accept(allocationId: string, trail: AuditTrail): Promise<Allocation> {
    const after = await this.answer(allocationId, true, trail);
    this.onAccepted(allocationId);
    return after;
  }

  async decline(allocationId: string, trail: AuditTrail): Promise<Allocation> {
    return this.answer(allocationId, false, trail);
  }

  private async answer(allocationId: string, accept: boolean, trail: AuditTrail): Promise<Allocation> {
    return this.db.transaction(async (tx) => {
      const before = await this.allocations.get(allocationId, tx);
      if (before.status !== 'offered')
        throw new ConflictError(
          'status',
          `the allocation is ${before.status}: there is no open offer`,
          '열린 제안이 없습니다.',
        );
      const now = this.clock();
      if (accept && before.offerExpiresAt !== null && Date.parse(before.offerExpiresAt) <= now)
        throw new ConflictError('offerExpiresAt', 'the offer has expired', '제안 기한이 지났습니다.');
      const reason = accept
        ? '대기 순번으로 반환된 GPU를 제안받아 수락 / offered freed GPUs from the waiting list and accepted'
        : '대기 순번 제안을 거절 / declined the offer from the waiting list';
      await tx.run(
        `UPDATE compute_allocations SET status = ?, end_reason = ?, updated_at = ? WHERE id = ? AND status = 'offered'`,
        [accept ? 'scheduled' : 'declined', accept ? null : reason, now, allocationId],
      );
      const changed = await tx.run(
        `UPDATE compute_applications SET status = ?, decision_reason = ?, decided_at = ?, updated_at = ?
         WHERE id = ? AND status = 'waitlisted'`,
        [accept ? 'selected' : 'rejected', reason, now, now, before.applicationId],
      );
      if (changed !== 1) throw new NotFoundError('application', before.applicationId);
      await recordEvent(
        tx,
        { allocationId, poolId: before.poolId, kind: accept ? 'offer_accepted' : 'offer_declined' },
        now,
      );
      const after = await this.allocations.get(allocationId, tx);
      await trail(tx, { entityId: allocationId, before, after });
      return after;
    });
  }

  /** Offers past their days lapse, and their applications leave the list (so the next in line is offered). */
  async expire(): Promise<string[]> {
    const now = this.clock();
    const rows = await this.db.all<{ id: string; application_id: string; pool_id: string }>(
      "SELECT id, application_id, pool_id FROM compute_allocations WHERE status = 'offered' AND offer_expires_at <= ?",
      [now],
    );
    const expired: string[] = [];
    for (const r of rows) {
      await this.db.transaction(async (tx) => {
        const changed = await tx.run(
          `UPDATE compute_allocations SET status = 'declined', end_reason = ?, updated_at = ? WHERE id = ? AND status = 'offered'`,
          ['제안 기한 만료 / the offer expired', now, r.id],
        );
        if (changed !== 1) return;
        // not offered again: an application whose offer lapsed leaves the list
        await tx.run(
          `UPDATE compute_applications SET status = 'rejected', decision_reason = ?, decided_at = ?, updated_at = ?
           WHERE id = ? AND status = 'waitlisted'`,
          ['제안 기한 만료 / the offer from the waiting list expired', now, now, r.application_id],
        );
        await recordEvent(tx, { allocationId: r.id, poolId: r.pool_id, kind: 'offer_expired' }, now);
        expired.push(r.id);
      });
    }
    return expired;
  }
}
