import type { UsageRecord } from '../billing/usage-journal.ts';
import type { RoutableProduct } from '../catalog/catalog-snapshot.ts';
import type {
  Admission,
  AdmissionDecision,
  AdmissionRefusal,
  AdmissionRequest,
  AdmissionTicket,
} from './admission.ts';
import type { BudgetHolds } from './budget-holds.ts';
import { type RateLimits, RateReservation } from './rate-limits.ts';

/** Both halves of one admitted call: its rate-limit reservation and its budget hold. */
class HubTicket implements AdmissionTicket {
  constructor(
    private readonly rate: RateReservation,
    private readonly budget: AdmissionTicket,
  ) {}
  get voucherId(): string | null {
    return this.budget.voucherId ?? null;
  }
  get responseHeaders(): Readonly<Record<string, string>> | null {
    return this.rate.headers;
  }
  reroute(product: RoutableProduct): AdmissionRefusal | null {
    return this.budget.reroute?.(product) ?? null;
  }
  settle(record: UsageRecord): void {
    this.rate.settle(record);
    this.budget.settle(record);
  }
  release(): void {
    this.rate.release();
    this.budget.release();
  }
}

/**
 * The hub's admission: rate limits first (cheap, and a refusal there must not hold money), then the
 * budget hold; a call the budget refuses gives its rate-limit tokens back.
 */
export class HubAdmission implements Admission {
  constructor(
    private readonly rateLimits: RateLimits,
    private readonly budget: BudgetHolds,
  ) {}

  admit(request: AdmissionRequest): AdmissionDecision | Promise<AdmissionDecision> {
    const rate = this.rateLimits.check(request);
    if (!(rate instanceof RateReservation)) return { admitted: false, ...rate };
    const decision = this.budget.admit(request);
    if (decision instanceof Promise) return decision.then((d) => this.combine(rate, d));
    return this.combine(rate, decision);
  }

  private combine(rate: RateReservation, decision: AdmissionDecision): AdmissionDecision {
    if (!decision.admitted) {
      rate.cancel();
      return decision;
    }
    if (rate.headers === null) return decision;
    return { admitted: true, ticket: new HubTicket(rate, decision.ticket) };
  }
}
