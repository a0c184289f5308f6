import type {
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  RbacAuthorizationV1Api,
  V1ResourceQuota,
  V1RoleBinding,
} from '@kubernetes/client-node';
import type { AccountState, AccountTarget, JobUsage, Provisioner } from '../provisioner.ts';
import { SchedulerError } from '../provisioner.ts';

export interface KubernetesSettings {
  server: string;
  token?: string;
  caData?: string;
  insecureSkipTlsVerify: boolean;
  kueue: { resourceFlavor: string; cohort?: string } | null;
  cancelJobsAtEnd?: boolean;
  /** Prometheus HTTP API with DCGM metrics, for usage. */
  prometheusUrl?: string;
}

export const QUOTA_NAME = 'kaihub-gpu';
export const ROLE_BINDING_NAME = 'kaihub-users';
export const GPU_REQUESTS = 'requests.nvidia.com/gpu';
const KUEUE = { group: 'kueue.x-k8s.io', version: 'v1beta1' } as const;

/** A namespace name (RFC 1123 label): lowercase letters, digits and `-`, at most 63. */
export function namespaceName(prefix: string, organizationId: string): string {
  const name = `${prefix}${organizationId}`
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .replace(/-+$/, '');
  if (name.length > 63)
    throw new SchedulerError('kubernetes', `namespace name too long: ${name.slice(0, 20)}…`, false);
  return name;
}

interface Apis {
  core: CoreV1Api;
  rbac: RbacAuthorizationV1Api;
  custom: CustomObjectsApi;
}

const statusOf = (error: unknown): number | undefined => {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
};

/**
 * A Kubernetes cluster through the official client (docs/compute.md "Kubernetes"): per organisation a
 * namespace with a ResourceQuota `kaihub-gpu` on `requests.nvidia.com/gpu` (0 when nothing is granted),
 * a RoleBinding giving its users the `edit` ClusterRole there, and optionally a Kueue ClusterQueue
 * of the same name whose nominal quota is the grant, with a LocalQueue in the namespace. Kubernetes
 * has no GPU-hour budget: one is recorded and counted by the hub, not enforced by the cluster.
 */
export class KubernetesProvisioner implements Provisioner {
  readonly engine = 'kubernetes' as const;
  readonly byHand = false;
  readonly reportsUtilisation = true;
  readonly enforcesBudget = false;
  private apis: Promise<Apis> | undefined;

  constructor(private readonly settings: KubernetesSettings) {}

  private connect(): Promise<Apis> {
    this.apis ??= (async () => {
      // loaded only for a hub with a Kubernetes pool: the client is large
      const k8s = await import('@kubernetes/client-node');
      const kc: KubeConfig = new k8s.KubeConfig();
      kc.loadFromOptions({
        clusters: [
          {
            name: 'pool',
            server: this.settings.server,
            caData: this.settings.caData,
            // the client refuses plain http unless told there is no certificate to check
            skipTLSVerify: this.settings.insecureSkipTlsVerify || this.settings.server.startsWith('http:'),
          },
        ],
        users: [{ name: 'kaihub', token: this.settings.token }],
        contexts: [{ name: 'pool', cluster: 'pool', user: 'kaihub' }],
        currentContext: 'pool',
      });
      return {
        core: kc.makeApiClient(k8s.CoreV1Api),
        rbac: kc.makeApiClient(k8s.RbacAuthorizationV1Api),
        custom: kc.makeApiClient(k8s.CustomObjectsApi),
      };
    })();
    return this.apis;
  }

  /** Runs one API call; a refusal or an unreachable server becomes a SchedulerError. */
  private async call<T>(what: string, fn: (apis: Apis) => Promise<T>): Promise<T> {
    const apis = await this.connect();
    try {
      return await fn(apis);
    } catch (error) {
      const status = statusOf(error);
      if (status === undefined)
        throw new SchedulerError(
          'kubernetes',
          `Kubernetes API에 연결할 수 없습니다 / the Kubernetes API is unreachable: ${what}: ${(error as Error).message}`,
          true,
        );
      throw new SchedulerError(
        'kubernetes',
        `Kubernetes가 거부했습니다 / Kubernetes refused ${what}: HTTP ${status}`,
        status >= 500,
      );
    }
  }

  private async read<T>(what: string, fn: (apis: Apis) => Promise<T>): Promise<T | undefined> {
    try {
      return await this.call(what, fn);
    } catch (error) {
      if (error instanceof SchedulerError && /HTTP 404$/.test(error.message)) return undefined;
      throw error;
    }
  }

  async apply(target: AccountTarget): Promise<void> {
    const namespace = target.account;
    const exists = await this.read(`read namespace ${namespace}`, (a) =>
      a.core.readNamespace({ name: namespace }),
    );
    if (!exists && target.gpus === 0) return;
    if (!exists)
      await this.call(`create namespace ${namespace}`, (a) =>
        a.core.createNamespace({
          body: {
            metadata: {
              name: namespace,
              labels: {
                'app.kubernetes.io/managed-by': 'kaihub',
                'kaihub.kr/organization': target.organizationId,
              },
            },
          },
        }),
      );
    const lowering = target.gpus === 0;
    if (lowering) await this.setQuota(namespace, target.gpus);
    if (target.gpus > 0) await this.setUsers(namespace, target.users);
    if (!lowering) await this.setQuota(namespace, target.gpus);
  }

  private async setQuota(namespace: string, gpus: number): Promise<void> {
    const body: V1ResourceQuota = {
      metadata: { name: QUOTA_NAME, namespace },
      spec: { hard: { [GPU_REQUESTS]: String(gpus) } },
    };
    const current = await this.read(`read quota in ${namespace}`, (a) =>
      a.core.readNamespacedResourceQuota({ name: QUOTA_NAME, namespace }),
    );
    if (!current)
      await this.call(`create quota in ${namespace}`, (a) =>
        a.core.createNamespacedResourceQuota({ namespace, body }),
      );
    else if (current.spec?.hard?.[GPU_REQUESTS] !== String(gpus))
      await this.call(`replace quota in ${namespace}`, (a) =>
        a.core.replaceNamespacedResourceQuota({
          name: QUOTA_NAME,
          namespace,
          body: {
            ...body,
            metadata: { ...body.metadata, resourceVersion: current.metadata?.resourceVersion },
          },
        }),
      );
    if (this.settings.kueue) await this.setQueues(namespace, gpus);
  }

  private async setQueues(namespace: string, gpus: number): Promise<void> {
    const kueue = this.settings.kueue!;
    const spec = {
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': namespace } },
      ...(kueue.cohort && { cohort: kueue.cohort }),
      resourceGroups: [
        {
          coveredResources: ['nvidia.com/gpu'],
          flavors: [
            { name: kueue.resourceFlavor, resources: [{ name: 'nvidia.com/gpu', nominalQuota: gpus }] },
          ],
        },
      ],
    };
    const cq = { ...KUEUE, plural: 'clusterqueues', name: namespace };
    const current = await this.read(`read ClusterQueue ${namespace}`, (a) =>
      a.custom.getClusterCustomObject(cq),
    );
    const body = {
      apiVersion: `${KUEUE.group}/${KUEUE.version}`,
      kind: 'ClusterQueue',
      metadata: { name: namespace, ...(current && { resourceVersion: current.metadata?.resourceVersion }) },
      spec,
    };
    if (!current)
      await this.call(`create ClusterQueue ${namespace}`, (a) =>
        a.custom.createClusterCustomObject({ ...KUEUE, plural: 'clusterqueues', body }),
      );
    else if (nominalQuota(current) !== gpus)
      await this.call(`replace ClusterQueue ${namespace}`, (a) =>
        a.custom.replaceClusterCustomObject({ ...cq, body }),
      );
    const lq = { ...KUEUE, plural: 'localqueues', namespace, name: 'default' };
    const local = await this.read(`read LocalQueue in ${namespace}`, (a) =>
      a.custom.getNamespacedCustomObject(lq),
    );
    if (!local)
      await this.call(`create LocalQueue in ${namespace}`, (a) =>
        a.custom.createNamespacedCustomObject({
          ...KUEUE,
          plural: 'localqueues',
          namespace,
          body: {
            apiVersion: `${KUEUE.group}/${KUEUE.version}`,
            kind: 'LocalQueue',
            metadata: { name: 'default', namespace },
            spec: { clusterQueue: namespace },
          },
        }),
      );
  }

  private async setUsers(namespace: string, users: readonly string[]): Promise<void> {
    const subjects = [...new Set(users)].sort().map((name) => ({
      kind: 'User',
      apiGroup: 'rbac.authorization.k8s.io',
      name,
    }));
    const body: V1RoleBinding = {
      metadata: { name: ROLE_BINDING_NAME, namespace },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'edit' },
      subjects,
    };
    const current = await this.read(`read role binding in ${namespace}`, (a) =>
      a.rbac.readNamespacedRoleBinding({ name: ROLE_BINDING_NAME, namespace }),
    );
    if (!current)
      await this.call(`create role binding in ${namespace}`, (a) =>
        a.rbac.createNamespacedRoleBinding({ namespace, body }),
      );
    else if (usersOf(current).join('\u0000') !== subjects.map((s) => s.name).join('\u0000'))
      await this.call(`replace role binding in ${namespace}`, (a) =>
        a.rbac.replaceNamespacedRoleBinding({
          name: ROLE_BINDING_NAME,
          namespace,
          body: {
            ...body,
            metadata: { ...body.metadata, resourceVersion: current.metadata?.resourceVersion },
          },
        }),
      );
  }

  async stopJobs(account: string): Promise<void> {
    if (this.settings.cancelJobsAtEnd === false) return;
    await this.call(`delete pods in ${account}`, (a) =>
      a.core.deleteCollectionNamespacedPod({ namespace: account }),
    );
  }

  async observe(accounts: readonly string[]): Promise<Map<string, AccountState>> {
    const out = new Map<string, AccountState>();
    for (const namespace of accounts) {
      const ns = await this.read(`read namespace ${namespace}`, (a) =>
        a.core.readNamespace({ name: namespace }),
      );
      if (!ns) {
        out.set(namespace, { account: namespace, exists: false, gpus: null, gpuMinutes: null, users: [] });
        continue;
      }
      const quota = await this.read(`read quota in ${namespace}`, (a) =>
        a.core.readNamespacedResourceQuota({ name: QUOTA_NAME, namespace }),
      );
      const hard = quota?.spec?.hard?.[GPU_REQUESTS];
      let gpus: number | null = hard === undefined ? null : Number(hard);
      if (this.settings.kueue && gpus !== null) {
        const cq = await this.read(`read ClusterQueue ${namespace}`, (a) =>
          a.custom.getClusterCustomObject({ ...KUEUE, plural: 'clusterqueues', name: namespace }),
        );
        // the queue and the quota must agree; when they do not, neither is what the hub asked
        if (!cq || nominalQuota(cq) !== gpus) gpus = null;
      }
      const binding = await this.read(`read role binding in ${namespace}`, (a) =>
        a.rbac.readNamespacedRoleBinding({ name: ROLE_BINDING_NAME, namespace }),
      );
      out.set(namespace, {
        account: namespace,
        exists: true,
        gpus,
        gpuMinutes: null,
        users: binding ? usersOf(binding) : [],
      });
    }
    return out;
  }

  /**
   * Per namespace, from DCGM's per-GPU series (dcgm-exporter labels each GPU with the namespace of the
   * pod that holds it), sampled every 60 s: the GPU-seconds held (a GPU seen in a sample counts 60 s)
   * and the GPU-seconds busy (each sample's DCGM_FI_DEV_GPU_UTIL, 0–100 %, times 60 s) — so a pod that
   * holds a GPU and leaves it idle counts as held but not busy. One line per namespace and window
   * (jobId `<namespace>@<window start>`).
   */
  async usage(fromMs: number, toMs: number, accounts: readonly string[]): Promise<JobUsage[]> {
    if (!this.settings.prometheusUrl || accounts.length === 0 || toMs <= fromMs) return [];
    const seconds = Math.round((toMs - fromMs) / 1000);
    const names = accounts.map((a) => a.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|');
    const series = `DCGM_FI_DEV_GPU_UTIL{namespace=~"${names}"}[${seconds}s:60s]`;
    const held = await this.query(`sum by (namespace) (count_over_time(${series}))`, toMs);
    const busy = await this.query(`sum by (namespace) (sum_over_time(${series}))`, toMs);
    return [...held].flatMap(([namespace, samples]) => {
      if (samples <= 0) return [];
      const gpuSeconds = Math.round(samples) * 60;
      // utilisation is a percentage per sample; never more busy than held
      const busyGpuSeconds = Math.min(gpuSeconds, Math.round(((busy.get(namespace) ?? 0) * 60) / 100));
      return [
        {
          jobId: `${namespace}@${new Date(fromMs).toISOString()}`,
          account: namespace,
          user: '',
          gpus: 0,
          gpuSeconds,
          busyGpuSeconds: Math.max(0, busyGpuSeconds),
          state: 'SAMPLED',
          startMs: fromMs,
        },
      ];
    });
  }

  /** An instant query's vector, by namespace. */
  private async query(query: string, atMs: number): Promise<Map<string, number>> {
    const url = new URL('/api/v1/query', this.settings.prometheusUrl);
    url.searchParams.set('query', query);
    url.searchParams.set('time', String(atMs / 1000));
    let body: {
      status?: string;
      data?: { result?: { metric: { namespace?: string }; value: [number, string] }[] };
    };
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(30_000) });
      if (!res.ok)
        throw new SchedulerError(
          'kubernetes',
          `Prometheus가 거부했습니다 / Prometheus refused the query: HTTP ${res.status}`,
          false,
        );
      body = (await res.json()) as typeof body;
    } catch (error) {
      if (error instanceof SchedulerError) throw error;
      throw new SchedulerError(
        'kubernetes',
        `Prometheus에 연결할 수 없습니다 / Prometheus is unreachable: ${(error as Error).message}`,
        true,
      );
    }
    const out = new Map<string, number>();
    for (const r of body.data?.result ?? []) {
      const value = Number(r.value[1]);
      if (r.metric.namespace && Number.isFinite(value)) out.set(r.metric.namespace, value);
    }
    return out;
  }
}

function usersOf(binding: V1RoleBinding): string[] {
  return (binding.subjects ?? [])
    .filter((s) => s.kind === 'User')
    .map((s) => s.name)
    .sort();
}

function nominalQuota(clusterQueue: unknown): number | null {
  const groups = (clusterQueue as { spec?: { resourceGroups?: unknown[] } }).spec?.resourceGroups ?? [];
  for (const g of groups as { flavors?: { resources?: { name: string; nominalQuota: unknown }[] }[] }[])
    for (const f of g.flavors ?? [])
      for (const r of f.resources ?? []) if (r.name === 'nvidia.com/gpu') return Number(r.nominalQuota);
  return null;
}
