import type { RoutableDeployment, RoutableProduct } from '../catalog/catalog-snapshot.ts';
import { UpstreamError } from '../providers/adapter.ts';

/**
 * The order to try a product's deployments in: best priority tier first; within a tier, a weighted
 * random order so traffic spreads by weight and a failed deployment's share falls to its peers.
 */
export function orderDeployments(
  product: RoutableProduct,
  random: () => number = Math.random,
): RoutableDeployment[] {
  const all = product.deployments;
  if (all.length <= 1) return all;
  const out: RoutableDeployment[] = [];
  let i = 0;
  while (i < all.length) {
    const priority = all[i]!.priority;
    const tier: RoutableDeployment[] = [];
    while (i < all.length && all[i]!.priority === priority) tier.push(all[i++]!);
    let pool = tier.filter((d) => d.weight > 0);
    while (pool.length > 0) {
      let total = 0;
      for (const d of pool) total += d.weight;
      let pick = random() * total;
      let chosen = pool.length - 1;
      for (let j = 0; j < pool.length; j++) {
        pick -= pool[j]!.weight;
        if (pick < 0) {
          chosen = j;
          break;
        }
      }
      out.push(pool[chosen]!);
      pool = pool.filter((_, j) => j !== chosen);
    }
    // weight 0 means standby: tried only after every weighted peer of its tier
    for (const d of tier) if (d.weight === 0) out.push(d);
  }
  return out;
}

export interface Attempt {
  deploymentId: string;
  error: UpstreamError | null;
  durationMs: number;
}

/**
 * Calls the first deployment and moves to the next only when the call could not have reached the
 * model (no connection): nothing has been sent to the client yet, nothing was generated, so trying
 * elsewhere is safe. Richer retry and fallback policies belong here too.
 */
export async function callWithFailover<T>(
  candidates: readonly RoutableDeployment[],
  call: (deployment: RoutableDeployment) => Promise<T>,
  attempts: Attempt[],
): Promise<{ deployment: RoutableDeployment; result: T }> {
  if (candidates.length === 0) throw new UpstreamError('connect', 'this model has no active deployment');
  let last: UpstreamError | undefined;
  for (const deployment of candidates) {
    const started = performance.now();
    try {
      const result = await call(deployment);
      attempts.push({ deploymentId: deployment.id, error: null, durationMs: performance.now() - started });
      return { deployment, result };
    } catch (error) {
      if (!(error instanceof UpstreamError)) throw error;
      attempts.push({ deploymentId: deployment.id, error, durationMs: performance.now() - started });
      last = error;
      if (error.kind !== 'connect') break;
    }
  }
  throw last;
}
