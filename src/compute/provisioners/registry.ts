import { isAbsolute } from 'node:path';
import { z } from 'zod';
import type { CredentialBox } from '../../catalog/credentials.ts';
import { ValidationError } from '../../errors.ts';
import { parseInput } from '../../validation.ts';
import { KubernetesProvisioner, namespaceName } from './kubernetes/kubernetes.ts';
import { ManualProvisioner } from './manual/manual.ts';
import type { Provisioner, ProvisionerEngine } from './provisioner.ts';
import { commandRunner, type SlurmRunner } from './slurm/commands.ts';
import { SlurmProvisioner, slurmAccountName } from './slurm/slurm.ts';

/**
 * The provisioners, registered in one place (as providers/registry.ts registers adapters): each
 * engine's configuration, how a pool's configuration is checked and stored, and the provisioner a
 * pool gets. The configuration names what the hub runs or calls, so only the operator sets it.
 */

const absolutePath = z
  .string()
  .min(1)
  .max(1000)
  .refine((p) => isAbsolute(p), { message: 'an absolute path on the hub’s machine' });

const slurmConfig = z.strictObject({
  /** ClusterName in its slurm.conf. */
  cluster: z.string().regex(/^[A-Za-z0-9_-]{1,40}$/, 'letters, digits, - and _ (at most 40)'),
  /** slurm.conf the clients read (controller and slurmdbd addresses). */
  slurmConf: absolutePath,
  binDir: absolutePath.optional(),
  /** Accounts are `<prefix><organization id>`; two pools on one cluster need different prefixes. */
  accountPrefix: z
    .string()
    .regex(/^[a-z][a-z0-9_]{0,15}$/, 'lowercase letters, digits and _ (at most 16)')
    .default('kh_'),
  cancelJobsAtEnd: z.boolean().default(true),
  timeoutMs: z.number().int().min(1000).max(600_000).default(30_000),
});

const kubernetesConfig = z.strictObject({
  /** The API server, e.g. https://10.0.0.1:6443. */
  server: z.url({ protocol: /^https?$/ }).max(2000),
  /** A service account's bearer token: sealed before it is stored, never shown again. */
  token: z.string().min(1).max(20_000).optional(),
  /** The cluster's CA, base64 PEM (as in a kubeconfig's certificate-authority-data). */
  caData: z.string().max(20_000).optional(),
  insecureSkipTlsVerify: z.boolean().default(false),
  namespacePrefix: z
    .string()
    .regex(/^[a-z][a-z0-9-]{0,19}$/, 'lowercase letters, digits and - (at most 20)')
    .default('kh-'),
  /** Also a Kueue ClusterQueue (nominal quota = the grant) and a LocalQueue in the namespace. */
  kueue: z
    .strictObject({
      resourceFlavor: z.string().regex(/^[a-z0-9][a-z0-9.-]{0,62}$/),
      cohort: z
        .string()
        .regex(/^[a-z0-9][a-z0-9.-]{0,62}$/)
        .optional(),
    })
    .nullable()
    .default(null),
  cancelJobsAtEnd: z.boolean().default(true),
  /** Prometheus HTTP API with dcgm-exporter's metrics: where usage comes from. */
  prometheusUrl: z
    .url({ protocol: /^https?$/ })
    .max(2000)
    .optional(),
});

const manualConfig = z.strictObject({
  /** How the supplier hands over (shown to the organisation). */
  instructions: z.string().trim().max(5000).optional(),
});

export type SlurmConfig = z.infer<typeof slurmConfig>;
export type KubernetesConfig = z.infer<typeof kubernetesConfig>;

const SCHEMAS = { slurm: slurmConfig, kubernetes: kubernetesConfig, manual: manualConfig } as const;

/** What is stored: the engine's configuration with its secret sealed. */
export function storedConfig(
  engine: ProvisionerEngine,
  input: unknown,
  credentials: CredentialBox,
  previous?: Record<string, unknown>,
): Record<string, unknown> {
  let config: Record<string, unknown>;
  try {
    config = parseInput(SCHEMAS[engine], input ?? {}) as Record<string, unknown>;
  } catch (error) {
    if (error instanceof ValidationError)
      throw new ValidationError(error.fields.map((f) => ({ ...f, field: `provisionerConfig.${f.field}` })));
    throw error;
  }
  if (engine === 'kubernetes') {
    const { token, ...rest } = config;
    if (typeof token === 'string') return { ...rest, tokenSealed: credentials.seal(token) };
    // an update that does not repeat the token keeps the stored one
    if (previous?.tokenSealed !== undefined) return { ...rest, tokenSealed: previous.tokenSealed };
    return rest;
  }
  return config;
}

/** What anyone allowed to see the pool's configuration sees: no secret, only that there is one. */
export function shownConfig(config: Record<string, unknown>): Record<string, unknown> {
  const { tokenSealed, ...rest } = config;
  return tokenSealed === undefined ? rest : { ...rest, token: '[sealed]' };
}

/** The scheduler account of an organisation on a pool: its Slurm account or Kubernetes namespace. */
export function accountFor(
  engine: ProvisionerEngine,
  config: Record<string, unknown>,
  organizationId: string,
): string {
  if (engine === 'slurm') return slurmAccountName((config as SlurmConfig).accountPrefix, organizationId);
  if (engine === 'kubernetes')
    return namespaceName((config as KubernetesConfig).namespacePrefix, organizationId);
  return organizationId;
}

export interface PoolProvisioning {
  id: string;
  provisioner: ProvisionerEngine;
  config: Record<string, unknown>;
  updatedAt: number;
}

export interface ProvisionerOverrides {
  /** Runs Slurm's clients; tests record or fake them. */
  slurmRunner?: (config: SlurmConfig) => SlurmRunner;
}

/** Provisioners per pool, made once per version of the pool's configuration. */
export class ProvisionerRegistry {
  private readonly made = new Map<string, { version: number; provisioner: Provisioner }>();

  constructor(
    private readonly credentials: CredentialBox,
    private readonly overrides: ProvisionerOverrides = {},
  ) {}

  for(pool: PoolProvisioning): Provisioner {
    const cached = this.made.get(pool.id);
    if (cached && cached.version === pool.updatedAt) return cached.provisioner;
    const provisioner = this.make(pool);
    this.made.set(pool.id, { version: pool.updatedAt, provisioner });
    return provisioner;
  }

  private make(pool: PoolProvisioning): Provisioner {
    if (pool.provisioner === 'slurm') {
      const c = pool.config as SlurmConfig;
      const runner =
        this.overrides.slurmRunner?.(c) ??
        commandRunner({ slurmConf: c.slurmConf, binDir: c.binDir, timeoutMs: c.timeoutMs });
      return new SlurmProvisioner(runner, { cluster: c.cluster, cancelJobsAtEnd: c.cancelJobsAtEnd });
    }
    if (pool.provisioner === 'kubernetes') {
      const c = pool.config as KubernetesConfig & { tokenSealed?: string };
      return new KubernetesProvisioner({
        server: c.server,
        token: c.tokenSealed === undefined ? undefined : this.credentials.open(c.tokenSealed),
        caData: c.caData,
        insecureSkipTlsVerify: c.insecureSkipTlsVerify,
        kueue: c.kueue,
        cancelJobsAtEnd: c.cancelJobsAtEnd,
        prometheusUrl: c.prometheusUrl,
      });
    }
    return new ManualProvisioner();
  }
}
