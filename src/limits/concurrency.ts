/**
 * Calls in progress per organisation on this replica, with a cap: one organisation's thousands of
 * open streams must not take every slot a shared deployment has. Per replica, in memory, also with
 * Redis (decision 0019): a cap of N with R replicas lets an organisation hold up to N·R calls; what
 * Redis shares is money and per-minute limits. One map lookup per call start and end.
 */
export class OrganizationConcurrency {
  private readonly open = new Map<string, number>();

  /** Takes a slot unless the organisation already holds `limit`; false when refused. */
  enter(organizationId: string, limit: number): boolean {
    const n = this.open.get(organizationId) ?? 0;
    if (n >= limit) return false;
    this.open.set(organizationId, n + 1);
    return true;
  }

  /** Gives back a slot `enter` took; once per successful `enter`. */
  leave(organizationId: string): void {
    const n = this.open.get(organizationId) ?? 0;
    if (n <= 1) this.open.delete(organizationId);
    else this.open.set(organizationId, n - 1);
  }

  inProgress(organizationId: string): number {
    return this.open.get(organizationId) ?? 0;
  }
}
