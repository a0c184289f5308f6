import { Placement } from '../providers/features.ts';
import type { Database } from '../storage/database.ts';
import {
  allDataPolicies,
  DATA_POLICY_REVISION_SETTING,
  type DataPolicy,
  PII_MODES,
  type PiiMode,
  type PolicyScope,
} from './data-policies.ts';
import { PII_TYPES, type PiiType } from './pii/types.ts';

/** What every policy that applies to one organisation's calls to one product adds up to. */
export interface EffectivePolicy {
  /** The mode for each type, indexed like PII_TYPES. */
  readonly modes: readonly PiiMode[];
  /** The types whose mode is not `off`: what the detector looks for. */
  readonly active: ReadonlySet<PiiType>;
  /** The strictest of `modes`: `off` means the guard has nothing to do. */
  readonly strictest: PiiMode;
  /** Placement bits (providers/features.ts) every deployment serving the call must have. */
  readonly placement: number;
  /** The policies that applied, for the admin API's explanation. */
  readonly policyIds: readonly string[];
}

const rank = (mode: PiiMode): number => PII_MODES.indexOf(mode);

const ALL_OFF: readonly PiiMode[] = PII_TYPES.map(() => 'off');
export const NO_POLICY: EffectivePolicy = {
  modes: ALL_OFF,
  active: new Set(),
  strictest: 'off',
  placement: 0,
  policyIds: [],
};

/** The strictest combination of `policies`: per type the strictest mode, every placement rule. */
export function combinePolicies(policies: readonly DataPolicy[]): EffectivePolicy {
  if (policies.length === 0) return NO_POLICY;
  const modes = [...ALL_OFF];
  let placement = 0;
  for (const p of policies) {
    for (let i = 0; i < PII_TYPES.length; i++) {
      if (p.piiTypes !== null && !p.piiTypes.includes(PII_TYPES[i]!)) continue;
      if (rank(p.piiMode) > rank(modes[i]!)) modes[i] = p.piiMode;
    }
    if (p.residency === 'domestic') placement |= Placement.domestic;
    if (p.certifiedOnly) placement |= Placement.certified;
  }
  let strictest: PiiMode = 'off';
  for (const m of modes) if (rank(m) > rank(strictest)) strictest = m;
  const active = new Set(PII_TYPES.filter((_, i) => modes[i] !== 'off'));
  return { modes, active, strictest, placement, policyIds: policies.map((p) => p.id) };
}

const key = (scope: PolicyScope, id: string) => `${scope}\u0000${id}`;
const MAX_CACHED = 100_000;

/**
 * The data policies in memory, for the request path: which apply to an organisation's call to a
 * product, combined once per (organisation, product) and cached until the policies change. Rebuilt at
 * once after a change on this replica, and within `pollIntervalMs` after one on another (the policy
 * revision tells; with programme policies, so does a new voucher, which brings an organisation into a
 * programme).
 */
export class DataPolicySnapshot {
  private policies = new Map<string, DataPolicy>();
  /** Organisation → the programmes with a policy it holds a voucher of. */
  private programmesOf = new Map<string, string[]>();
  /** Organisation → product → combined policy: two lookups and no key string built per call. */
  private cache = new Map<string, Map<string, EffectivePolicy>>();
  private cached = 0;
  private fingerprint = '';
  private timer: NodeJS.Timeout | undefined;
  private reloading: Promise<void> | undefined;

  constructor(
    private readonly db: Database,
    private readonly pollIntervalMs = 1_000,
    private readonly onError: (error: unknown) => void = () => {},
  ) {}

  /** The policies in force for `organizationId` (of `organizationClass`) calling `productId`. */
  effective(organizationId: string, organizationClass: string, productId: string): EffectivePolicy {
    let byProduct = this.cache.get(organizationId);
    const hit = byProduct?.get(productId);
    if (hit !== undefined) return hit;
    const combined = combinePolicies(this.applying(organizationId, organizationClass, productId));
    if (this.cached >= MAX_CACHED) {
      this.cache.clear();
      this.cached = 0;
      byProduct = undefined;
    }
    if (byProduct === undefined) {
      byProduct = new Map();
      this.cache.set(organizationId, byProduct);
    }
    byProduct.set(productId, combined);
    this.cached++;
    return combined;
  }

  /** The policies that apply, most general first (class, organisation, programmes, product). */
  applying(organizationId: string, organizationClass: string, productId: string): DataPolicy[] {
    const found: DataPolicy[] = [];
    const add = (p: DataPolicy | undefined) => {
      if (p !== undefined) found.push(p);
    };
    add(this.policies.get(key('organization_class', organizationClass)));
    add(this.policies.get(key('organization', organizationId)));
    for (const programmeId of this.programmesOf.get(organizationId) ?? [])
      add(this.policies.get(key('programme', programmeId)));
    add(this.policies.get(key('product', productId)));
    return found;
  }

  start(): void {
    if (this.timer || this.pollIntervalMs <= 0) return;
    this.timer = setInterval(() => {
      this.refreshIfChanged().catch(this.onError);
    }, this.pollIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Reads every policy again; concurrent calls share one load. */
  reload(): Promise<void> {
    this.reloading ??= this.load().finally(() => {
      this.reloading = undefined;
    });
    return this.reloading;
  }

  private async refreshIfChanged(): Promise<void> {
    if ((await this.currentFingerprint()) !== this.fingerprint) await this.reload();
  }

  /**
   * The policy revision, and with programme policies the vouchers' count and latest issue: each read
   * before what it stands for, so that a change in between is seen at the next poll, never lost.
   */
  private async currentFingerprint(): Promise<string> {
    const revision = await this.revision();
    return `${revision}|${this.hasProgrammePolicies() ? await this.voucherMark() : ''}`;
  }

  private async revision(): Promise<string> {
    const row = await this.db.get<{ value: string }>('SELECT value FROM settings WHERE key = ?', [
      DATA_POLICY_REVISION_SETTING,
    ]);
    return row?.value ?? '';
  }

  private async voucherMark(): Promise<string> {
    const row = await this.db.get<{ n: number; latest: number | null }>(
      'SELECT COUNT(*) AS n, MAX(created_at) AS latest FROM vouchers',
    );
    return `${row?.n ?? 0}:${row?.latest ?? 0}`;
  }

  private hasProgrammePolicies(): boolean {
    for (const p of this.policies.values()) if (p.scope === 'programme') return true;
    return false;
  }

  private async load(): Promise<void> {
    const revision = await this.revision();
    const policies = await allDataPolicies(this.db);
    const byKey = new Map<string, DataPolicy>();
    for (const p of policies) byKey.set(key(p.scope, p.scopeId), p);
    const programmeIds = policies.filter((p) => p.scope === 'programme').map((p) => p.scopeId);
    const programmesOf = new Map<string, string[]>();
    let vouchers = '';
    if (programmeIds.length > 0) {
      vouchers = await this.voucherMark();
      const rows = await this.db.all<{ organization_id: string; programme_id: string }>(
        `SELECT DISTINCT organization_id, programme_id FROM vouchers
          WHERE programme_id IN (${programmeIds.map(() => '?').join(', ')})`,
        programmeIds,
      );
      for (const r of rows) {
        const list = programmesOf.get(r.organization_id);
        if (list) list.push(r.programme_id);
        else programmesOf.set(r.organization_id, [r.programme_id]);
      }
    }
    this.policies = byKey;
    this.programmesOf = programmesOf;
    this.cache = new Map();
    this.cached = 0;
    this.fingerprint = `${revision}|${vouchers}`;
  }
}
