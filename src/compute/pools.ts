import { z } from 'zod';
import type { AuditTrail } from '../audit/audit-log.ts';
import { formatKrw } from '../billing/money.ts';
import type { CredentialBox } from '../catalog/credentials.ts';
import { ConflictError, NotFoundError, ValidationError } from '../errors.ts';
import { type Database, isUniqueViolation, type SqlExecutor, type SqlValue } from '../storage/database.ts';
import { newId } from '../storage/ids.ts';
import { parseInput } from '../validation.ts';
import { peakHeld } from './capacity.ts';
import type { ProvisionerEngine } from './provisioners/provisioner.ts';
import { type PoolProvisioning, shownConfig, storedConfig } from './provisioners/registry.ts';
import { type Clock, idText, iso, krwPerGpuHour, REGIONS, type Region } from './values.ts';

export const ENGINES = ['manual', 'slurm', 'kubernetes'] as const;

const poolFields = {
  name: z.string().trim().min(1).max(200),
  /** A100, H100, H200, B200, a domestic NPU (e.g. "Rebellions ATOM"). */
  gpuModel: z.string().trim().min(1).max(100),
  /** Whole teraflops per GPU, at the precision the programme counts in. */
  tfPerGpu: z.number().int().min(1).max(1_000_000),
  tfPrecision: z.string().trim().min(1).max(20),
  gpuCount: z.number().int().min(0).max(1_000_000),
  gpusPerServer: z.number().int().min(1).max(256),
  region: z.enum(REGIONS),
  pricePerGpuHourKrw: krwPerGpuHour,
};

const poolInput = z.strictObject({
  supplierId: idText,
  ...poolFields,
  gpusPerServer: poolFields.gpusPerServer.default(8),
  tfPrecision: poolFields.tfPrecision.default('bf16'),
  provisioner: z.enum(ENGINES).default('manual'),
  provisionerConfig: z.unknown().optional(),
});

const poolUpdate = z.strictObject({
  ...Object.fromEntries(Object.entries(poolFields).map(([k, v]) => [k, v.optional()])),
  provisioner: z.enum(ENGINES).optional(),
  provisionerConfig: z.unknown().optional(),
  status: z.enum(['active', 'retired']).optional(),
}) as z.ZodType<{
  name?: string;
  gpuModel?: string;
  tfPerGpu?: number;
  tfPrecision?: string;
  gpuCount?: number;
  gpusPerServer?: number;
  region?: Region;
  pricePerGpuHourKrw?: bigint;
  provisioner?: ProvisionerEngine;
  provisionerConfig?: unknown;
  status?: 'active' | 'retired';
}>;

/** What a compute supplier's admin changes on their pool; the provisioner is the operator's. */
export const SUPPLIER_POOL_FIELDS = [
  'name',
  'gpuModel',
  'tfPerGpu',
  'tfPrecision',
  'gpuCount',
  'gpusPerServer',
  'status',
];

export interface Pool {
  id: string;
  supplierId: string;
  name: string;
  gpuModel: string;
  tfPerGpu: number;
  tfPrecision: string;
  gpuCount: number;
  gpusPerServer: number;
  region: Region;
  pricePerGpuHourKrw: string;
  provisioner: ProvisionerEngine;
  /** Shown to the operator and the supplier's admins only (secrets never). */
  provisionerConfig?: Record<string, unknown>;
  status: 'active' | 'retired';
  createdAt: string;
  updatedAt: string;
}

/** A pool row as the compute services use it (price as µ₩, config as stored). */
export interface PoolRow extends PoolProvisioning {
  supplierId: string;
  name: string;
  gpuCount: number;
  gpusPerServer: number;
  tfPerGpu: number;
  region: Region;
  priceMicroKrwPerGpuHour: bigint;
  status: 'active' | 'retired';
}

const COLUMNS = `id, supplier_id, name, gpu_model, tf_per_gpu, tf_precision, gpu_count, gpus_per_server, region,
  CAST(price_micro_krw_per_gpu_hour AS TEXT) AS price, provisioner, provisioner_config, status, created_at, updated_at`;

function toRow(r: Record<string, unknown>): PoolRow & { raw: Record<string, unknown> } {
  return {
    id: r.id as string,
    supplierId: r.supplier_id as string,
    name: r.name as string,
    gpuCount: Number(r.gpu_count),
    gpusPerServer: Number(r.gpus_per_server),
    tfPerGpu: Number(r.tf_per_gpu),
    region: r.region as Region,
    priceMicroKrwPerGpuHour: BigInt(r.price as string),
    provisioner: r.provisioner as ProvisionerEngine,
    config: JSON.parse(r.provisioner_config as string) as Record<string, unknown>,
    status: r.status as 'active' | 'retired',
    updatedAt: Number(r.updated_at),
    raw: r,
  };
}

function toPool(row: ReturnType<typeof toRow>, withConfig: boolean): Pool {
  const r = row.raw;
  return {
    id: row.id,
    supplierId: row.supplierId,
    name: row.name,
    gpuModel: r.gpu_model as string,
    tfPerGpu: row.tfPerGpu,
    tfPrecision: r.tf_precision as string,
    gpuCount: row.gpuCount,
    gpusPerServer: row.gpusPerServer,
    region: row.region,
    pricePerGpuHourKrw: formatKrw(row.priceMicroKrwPerGpuHour),
    provisioner: row.provisioner,
    ...(withConfig && { provisionerConfig: shownConfig(row.config) }),
    status: row.status,
    createdAt: iso(r.created_at)!,
    updatedAt: iso(r.updated_at)!,
  };
}

/**
 * GPU pools of compute suppliers (docs/compute.md "Pools"). A compute supplier is a supplier of the
 * catalogue; its admins keep their pools' descriptions, the operator sets price, count and the
 * provisioner (the routes check who). A pool's GPU count can shrink only as far as what is committed
 * on any future day allows.
 */
export class PoolService {
  constructor(
    private readonly db: Database,
    private readonly credentials: CredentialBox,
    private readonly clock: Clock,
  ) {}

  async create(input: unknown, trail: AuditTrail): Promise<Pool> {
    const v = parseInput(poolInput, input);
    const config = storedConfig(v.provisioner, v.provisionerConfig, this.credentials);
    const id = newId('gpl');
    const now = Date.now();
    return this.db.transaction(async (tx) => {
      const supplier = await tx.get('SELECT id FROM suppliers WHERE id = ?', [v.supplierId]);
      if (!supplier) throw ValidationError.of('supplierId', `no supplier ${v.supplierId}`);
      await this.checkSlurmPrefix(tx, id, v.provisioner, config);
      try {
        await tx.run(
          `INSERT INTO compute_pools (id, supplier_id, name, gpu_model, tf_per_gpu, tf_precision, gpu_count,
             gpus_per_server, region, price_micro_krw_per_gpu_hour, provisioner, provisioner_config, status,
             created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ?)`,
          [
            id,
            v.supplierId,
            v.name,
            v.gpuModel,
            v.tfPerGpu,
            v.tfPrecision,
            v.gpuCount,
            v.gpusPerServer,
            v.region,
            v.pricePerGpuHourKrw,
            v.provisioner,
            JSON.stringify(config),
            now,
            now,
          ],
        );
      } catch (error) {
        if (isUniqueViolation(error)) throw new ConflictError('name', 'a pool with this name exists');
        throw error;
      }
      const after = await this.get(id, true, tx);
      await trail(tx, { entityId: id, after });
      return after;
    });
  }

  /** Two Slurm pools on one cluster must not share account names. */
  private async checkSlurmPrefix(
    tx: SqlExecutor,
    id: string,
    engine: ProvisionerEngine,
    config: Record<string, unknown>,
  ): Promise<void> {
    if (engine !== 'slurm') return;
    const others = await tx.all<{ id: string; provisioner_config: string }>(
      "SELECT id, provisioner_config FROM compute_pools WHERE provisioner = 'slurm' AND id <> ?",
      [id],
    );
    for (const o of others) {
      const c = JSON.parse(o.provisioner_config) as Record<string, unknown>;
      if (c.cluster === config.cluster && c.accountPrefix === config.accountPrefix)
        throw new ConflictError(
          'provisionerConfig.accountPrefix',
          `pool ${o.id} uses this cluster with the same account prefix`,
          '같은 클러스터의 다른 풀이 같은 계정 접두어를 씁니다.',
        );
    }
  }

  async get(id: string, withConfig: boolean, db: SqlExecutor = this.db): Promise<Pool> {
    return toPool(await this.row(id, db), withConfig);
  }

  async row(id: string, db: SqlExecutor = this.db): Promise<PoolRow & { raw: Record<string, unknown> }> {
    const r = await db.get(`SELECT ${COLUMNS} FROM compute_pools WHERE id = ?`, [id]);
    if (!r) throw new NotFoundError('pool', id);
    return toRow(r);
  }

  /** `configFor`: the supplier ids whose pools' configuration the caller may see (null: every one). */
  async list(query: { supplierId?: string }, configFor: ReadonlySet<string> | null): Promise<Pool[]> {
    const params: SqlValue[] = [];
    let where = '';
    if (query.supplierId !== undefined) {
      where = 'WHERE supplier_id = ?';
      params.push(query.supplierId);
    }
    const rows = await this.db.all(
      `SELECT ${COLUMNS} FROM compute_pools ${where} ORDER BY created_at, id`,
      params,
    );
    return rows.map((r) => {
      const row = toRow(r);
      return toPool(row, configFor === null || configFor.has(row.supplierId));
    });
  }

  async rowsByEngine(engines: readonly ProvisionerEngine[]): Promise<PoolRow[]> {
    const rows = await this.db.all(
      `SELECT ${COLUMNS} FROM compute_pools WHERE status = 'active' AND provisioner IN (${engines.map(() => '?').join(', ')})`,
      [...engines],
    );
    return rows.map(toRow);
  }

  async update(id: string, input: unknown, trail: AuditTrail): Promise<Pool> {
    const v = parseInput(poolUpdate, input);
    return this.db.transaction(async (tx) => {
      // locked like selection locks it: a smaller count is checked against a stable commitment
      const current = await this.lock(tx, id);
      const before = toPool(current, true);
      const engine = v.provisioner ?? current.provisioner;
      let config: Record<string, unknown> | undefined;
      if (v.provisionerConfig !== undefined || v.provisioner !== undefined) {
        config = storedConfig(
          engine,
          v.provisionerConfig ?? (v.provisioner === undefined ? current.config : {}),
          this.credentials,
          current.config,
        );
        await this.checkSlurmPrefix(tx, id, engine, config);
        if (engine !== current.provisioner) {
          const live = await tx.get<{ n: number | string }>(
            `SELECT COUNT(*) AS n FROM compute_allocations WHERE pool_id = ?
               AND status IN ('provisioning', 'active', 'ending')`,
            [id],
          );
          if (Number(live?.n ?? 0) > 0)
            throw new ConflictError(
              'provisioner',
              'the pool has live allocations: end them before changing its provisioner',
              '진행 중인 배정이 있어 프로비저너를 바꿀 수 없습니다.',
            );
        }
      }
      if (v.gpuCount !== undefined && v.gpuCount < current.gpuCount) {
        const peak = await peakHeld(tx, 'pool_id', id, this.clock());
        if (v.gpuCount < peak)
          throw ValidationError.of(
            'gpuCount',
            `${peak} GPUs are committed on a day to come: at least ${peak}`,
          );
      }
      const sets: string[] = [];
      const params: SqlValue[] = [];
      const set = (column: string, value: SqlValue | undefined) => {
        if (value === undefined) return;
        sets.push(`${column} = ?`);
        params.push(value);
      };
      set('name', v.name);
      set('gpu_model', v.gpuModel);
      set('tf_per_gpu', v.tfPerGpu);
      set('tf_precision', v.tfPrecision);
      set('gpu_count', v.gpuCount);
      set('gpus_per_server', v.gpusPerServer);
      set('region', v.region);
      set('price_micro_krw_per_gpu_hour', v.pricePerGpuHourKrw);
      set('provisioner', v.provisioner);
      set('provisioner_config', config === undefined ? undefined : JSON.stringify(config));
      set('status', v.status);
      sets.push('updated_at = ?');
      params.push(Math.max(Date.now(), current.updatedAt + 1));
      try {
        await tx.run(`UPDATE compute_pools SET ${sets.join(', ')} WHERE id = ?`, [...params, id]);
      } catch (error) {
        if (isUniqueViolation(error)) throw new ConflictError('name', 'a pool with this name exists');
        throw error;
      }
      const after = await this.get(id, true, tx);
      await trail(tx, { entityId: id, before, after });
      return after;
    });
  }

  /**
   * Locks pools for a change of what they commit (PostgreSQL: in id order, so that selections and
   * approvals queue instead of deadlocking; SQLite's write transaction is already alone).
   */
  async lock(tx: SqlExecutor, id: string): Promise<PoolRow & { raw: Record<string, unknown> }> {
    return (await this.lockAll(tx, [id]))[0]!;
  }

  async lockAll(
    tx: SqlExecutor,
    ids: readonly string[],
  ): Promise<(PoolRow & { raw: Record<string, unknown> })[]> {
    const sorted = [...new Set(ids)].sort();
    if (sorted.length === 0) return [];
    const rows = await tx.all(
      `SELECT ${COLUMNS} FROM compute_pools WHERE id IN (${sorted.map(() => '?').join(', ')}) ORDER BY id${
        this.db.dialect === 'postgres' ? ' FOR UPDATE' : ''
      }`,
      sorted,
    );
    if (rows.length !== sorted.length) {
      const found = new Set(rows.map((r) => r.id));
      throw new NotFoundError('pool', sorted.find((id) => !found.has(id))!);
    }
    return rows.map(toRow);
  }
}
