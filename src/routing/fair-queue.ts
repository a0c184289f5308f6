/**
 * Calls waiting for a slot of a product's deployments, served round robin across organisations: when
 * a slot frees, the organisation that waited least recently served goes first, so one organisation
 * queueing a thousand calls delays another's by one turn, not a thousand. Within an organisation,
 * first come first served.
 */
export interface Waiter<D> {
  readonly organizationId: string;
  /** The deployments this call may use (its product's, the ones that can serve it). */
  readonly candidates: readonly D[];
}

export class FairQueue<D, W extends Waiter<D>> {
  /** Insertion order is the round: an organisation served goes to the back. */
  private readonly byOrganization = new Map<string, W[]>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  push(waiter: W): void {
    const list = this.byOrganization.get(waiter.organizationId);
    if (list) list.push(waiter);
    else this.byOrganization.set(waiter.organizationId, [waiter]);
    this.count++;
  }

  /** The next waiter, fairly, that can use `deployment`; removed from the queue. */
  take(deployment: D): W | undefined {
    for (const [organizationId, list] of this.byOrganization) {
      const i = list.findIndex((w) => w.candidates.includes(deployment));
      if (i === -1) continue;
      const [waiter] = list.splice(i, 1);
      this.byOrganization.delete(organizationId);
      if (list.length > 0) this.byOrganization.set(organizationId, list);
      this.count--;
      return waiter;
    }
    return undefined;
  }

  /** Takes a waiter out (it gave up: deadline or cancel); false when it was already served. */
  remove(waiter: W): boolean {
    const list = this.byOrganization.get(waiter.organizationId);
    const i = list ? list.indexOf(waiter) : -1;
    if (i === -1) return false;
    list!.splice(i, 1);
    if (list!.length === 0) this.byOrganization.delete(waiter.organizationId);
    this.count--;
    return true;
  }
}
