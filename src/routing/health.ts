import type { UpstreamError } from '../providers/adapter.ts';

/**
 * Per-replica health of deployments, in memory: a deployment that fails `failureThreshold` times in
 * a row cools down (is skipped) for a period that doubles with every failed probe, from
 * `baseCooldownMs` up to `maxCooldownMs`. When the period ends, one real request is let through as a
 * probe; its success makes the deployment healthy again, its failure starts a longer period.
 *
 * Healthy deployments have no entry at all: the success path is one map lookup, no allocation.
 */
export interface HealthOptions {
  /** 0: never cool down. */
  failureThreshold?: number;
  baseCooldownMs?: number;
  maxCooldownMs?: number;
  /** Milliseconds since the epoch; injectable for tests. */
  now?: () => number;
}

export interface DeploymentHealthView {
  state: 'healthy' | 'cooling_down';
  consecutiveFailures: number;
  /** ISO time the current cooldown ends (a probe is let through after it), null when healthy. */
  cooldownUntil: string | null;
  lastError: string | null;
}

interface Entry {
  consecutiveFailures: number;
  /** 0 while below the threshold. */
  cooldownUntil: number;
  /** Length of the last cooldown period, 0 before the first. */
  cooldownMs: number;
  lastError: string | null;
  /** A probe request is in flight: others keep skipping the deployment until it has a verdict. */
  probing: boolean;
}

export class DeploymentHealth {
  readonly failureThreshold: number;
  private readonly baseCooldownMs: number;
  private readonly maxCooldownMs: number;
  private readonly now: () => number;
  private readonly entries = new Map<string, Entry>();

  constructor(options: HealthOptions = {}) {
    this.failureThreshold = options.failureThreshold || (options.failureThreshold === 0 ? Infinity : 3);
    this.baseCooldownMs = options.baseCooldownMs ?? 5_000;
    this.maxCooldownMs = options.maxCooldownMs ?? 60_000;
    this.now = options.now ?? Date.now;
  }

  /** Whether a request may use the deployment now (healthy, or its cooldown is over and no probe runs). */
  isAvailable(id: string): boolean {
    const e = this.entries.get(id);
    if (e === undefined || e.consecutiveFailures < this.failureThreshold) return true;
    return !e.probing && this.now() >= e.cooldownUntil;
  }

  /** Called just before a call to the deployment: claims the probe when its cooldown is over. */
  begin(id: string): void {
    const e = this.entries.get(id);
    if (e !== undefined && e.consecutiveFailures >= this.failureThreshold && this.now() >= e.cooldownUntil)
      e.probing = true;
  }

  succeeded(id: string): void {
    if (this.entries.size !== 0) this.entries.delete(id);
  }

  failed(id: string, error: UpstreamError): void {
    let e = this.entries.get(id);
    if (e === undefined) {
      e = { consecutiveFailures: 0, cooldownUntil: 0, cooldownMs: 0, lastError: null, probing: false };
      this.entries.set(id, e);
    }
    e.consecutiveFailures++;
    e.lastError = describe(error);
    const now = this.now();
    // failures of calls that started before the cooldown do not extend it; a failed probe does
    if (e.consecutiveFailures >= this.failureThreshold && (e.probing || now >= e.cooldownUntil)) {
      e.cooldownMs =
        e.cooldownMs === 0 ? this.baseCooldownMs : Math.min(e.cooldownMs * 2, this.maxCooldownMs);
      e.cooldownUntil = now + e.cooldownMs;
    }
    e.probing = false;
  }

  /** The call ended without a verdict on the deployment (e.g. the client went away). */
  released(id: string): void {
    const e = this.entries.get(id);
    if (e !== undefined) e.probing = false;
  }

  isHealthy(id: string): boolean {
    const e = this.entries.get(id);
    return e === undefined || e.consecutiveFailures < this.failureThreshold;
  }

  view(id: string): DeploymentHealthView {
    const e = this.entries.get(id);
    if (e === undefined)
      return { state: 'healthy', consecutiveFailures: 0, cooldownUntil: null, lastError: null };
    const cooling = e.consecutiveFailures >= this.failureThreshold;
    return {
      state: cooling ? 'cooling_down' : 'healthy',
      consecutiveFailures: e.consecutiveFailures,
      cooldownUntil: cooling ? new Date(e.cooldownUntil).toISOString() : null,
      lastError: e.lastError,
    };
  }
}

function describe(error: UpstreamError): string {
  const status = error.details.status;
  return `${error.kind}${status !== undefined ? ` ${status}` : ''}: ${error.message.slice(0, 300)}`;
}
