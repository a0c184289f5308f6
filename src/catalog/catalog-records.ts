import { z } from 'zod';
import { formatKrw, PriceFormatError, parseKrwPrice } from '../billing/money.ts';
import { ADAPTER_NAMES } from '../providers/registry.ts';
import type { DeploymentHealthView } from '../routing/health.ts';
import type { CredentialState } from './credentials.ts';
import { type PriceChangeView, type PriceRow, toPriceChangeView } from './product-prices.ts';

/**
 * The catalog's records: what the admin API accepts (zod schemas, which name each bad field), what
 * it returns, and how rows map to them. CatalogService holds the behaviour.
 */
export const PURPOSES = [
  'chat',
  'summarization',
  'translation',
  'embedding',
  'code',
  'reasoning',
  'legal',
  'medical',
  'finance',
  'public',
  'manufacturing',
  'education',
  'vision',
] as const;
export const MODALITIES = ['text', 'embedding', 'multimodal'] as const;
export const RESIDENCIES = ['domestic', 'foreign'] as const;
export const PRODUCT_STATUSES = ['active', 'inactive', 'retired'] as const;

const price = z.union([z.string(), z.number()]).transform((value, ctx) => {
  try {
    return parseKrwPrice(value);
  } catch (error) {
    ctx.addIssue({
      code: 'custom',
      message: error instanceof PriceFormatError ? error.message : String(error),
    });
    return z.NEVER;
  }
});
const name = z.string().trim().min(1).max(200);
const optionalText = z.string().trim().max(500).nullable().optional();

// No `.default()` in these schemas: zod keeps defaults through `.partial()`, so a PATCH that left
// `status` out would reset it to 'active'. The create methods apply the defaults instead.
export const supplierInput = z.strictObject({
  name,
  nameEn: optionalText,
  contactName: optionalText,
  contactEmail: z.email().nullable().optional(),
  website: z.url().nullable().optional(),
  status: z.enum(['active', 'suspended']).optional(),
});

const modelId = z
  .string()
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/,
    'letters, digits and . _ : / - only, at most 128 characters',
  );

/** Ordered public model ids tried when every deployment of a product failed before the first byte. */
export const fallbackModelsInput = z.array(modelId).max(8);

/** How a product picks among the deployments of one priority tier (routing/router.ts). */
export const ROUTING_STRATEGIES = ['weighted', 'least-in-flight', 'lowest-latency'] as const;
export type RoutingStrategy = (typeof ROUTING_STRATEGIES)[number];

const isoDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'a date, YYYY-MM-DD');
const decimalText = z.string().regex(/^\d+(\.\d+)?$/, 'a decimal number as text, e.g. "1.25"');

/** The public list price a product's price was set from: kept beside it, with where and when it was read. */
export const priceReferenceInput = z.strictObject({
  currency: z.string().regex(/^[A-Z]{3}$/, 'an ISO 4217 code, e.g. KRW or USD'),
  inputPer1M: decimalText.nullable(),
  outputPer1M: decimalText.nullable(),
  source: z.string().trim().min(1).max(2000),
  retrieved: isoDate,
  note: z.string().max(4000).optional(),
});
export type PriceReference = z.infer<typeof priceReferenceInput>;

/** How the product is usually deployed: what an operator fills in when adding a deployment with a key. */
export const suggestedDeploymentInput = z.strictObject({
  adapter: z.enum(ADAPTER_NAMES),
  baseUrl: z.union([z.url({ protocol: /^https?$/ }), z.literal('local:')]),
  upstreamModel: z.string().min(1).max(256),
});
export type SuggestedDeployment = z.infer<typeof suggestedDeploymentInput>;

export const productInput = z.strictObject({
  supplierId: z.string().min(1),
  model: modelId.refine((m) => m !== 'auto', '"auto" is reserved'),
  displayName: name,
  description: z.string().max(4000).nullable().optional(),
  parameters: z.number().int().positive().max(Number.MAX_SAFE_INTEGER).nullable().optional(),
  purposes: z.array(z.enum(PURPOSES)).min(1).max(PURPOSES.length),
  modality: z.enum(MODALITIES),
  contextWindow: z.number().int().positive().max(100_000_000),
  priceInputPer1M: price,
  priceOutputPer1M: price,
  residency: z.enum(RESIDENCIES),
  status: z.enum(PRODUCT_STATUSES).optional(),
  fallbackModels: fallbackModelsInput.optional(),
  routingStrategy: z.enum(ROUTING_STRATEGIES).optional(),
  priceReference: priceReferenceInput.nullable().optional(),
  suggestedDeployment: suggestedDeploymentInput.nullable().optional(),
});

/**
 * A PATCH of a product: any field, and when the prices given take effect (a KST date or an ISO 8601
 * instant; absent: now). Parsed by the service, which knows the time and the schedule.
 */
export const productPatchInput = productInput.partial().extend({
  pricesEffectiveFrom: z.string().optional(),
});

/** The base URL of a `local` deployment: the model runs in the hub's own process (providers/local). */
export const LOCAL_BASE_URL = 'local:';

const baseUrl = z.union([
  z.url({ protocol: /^https?$/ }).transform((u) => u.replace(/\/+$/, '')),
  z.literal(LOCAL_BASE_URL),
]);

export const deploymentInput = z.strictObject({
  productId: z.string().min(1),
  adapter: z.enum(ADAPTER_NAMES),
  baseUrl,
  apiKey: z.string().min(1).max(4096).nullable().optional(),
  upstreamModel: z.string().min(1).max(256).optional(),
  weight: z.number().int().min(0).max(1_000_000).optional(),
  priority: z.number().int().min(0).max(1000).optional(),
  status: z.enum(['active', 'disabled']).optional(),
  /** Calls in flight one replica sends this deployment at most; null: the hub's default. */
  maxConcurrent: z.number().int().min(1).max(1_000_000).nullable().optional(),
  /** Where this deployment runs, when not where its product says (null: the product's residency). */
  residency: z.enum(RESIDENCIES).nullable().optional(),
  /** The operator has seen its CSAP (cloud security assurance) certificate. */
  csapCertified: z.boolean().optional(),
});

export interface Supplier {
  id: string;
  name: string;
  nameEn: string | null;
  contactName: string | null;
  contactEmail: string | null;
  website: string | null;
  status: string;
  createdAt: string;
  updatedAt: string;
}

export interface Product {
  id: string;
  supplierId: string;
  model: string;
  displayName: string;
  description: string | null;
  parameters: number | null;
  purposes: string[];
  modality: string;
  contextWindow: number;
  /** KRW per 1M tokens in force now, exact decimal text (product_prices holds the schedule). */
  priceInputPer1M: string;
  priceOutputPer1M: string;
  /** The next scheduled price change, or null. */
  nextPriceChange: PriceChangeView | null;
  residency: string;
  status: string;
  /** Public model ids tried in order when this product cannot answer. */
  fallbackModels: string[];
  routingStrategy: RoutingStrategy;
  /** The published list price this product's price was set from, with its source and date. */
  priceReference: PriceReference | null;
  suggestedDeployment: SuggestedDeployment | null;
  createdAt: string;
  updatedAt: string;
}

export interface Deployment {
  id: string;
  productId: string;
  adapter: string;
  baseUrl: string;
  /**
   * Who last set `baseUrl`. A supplier admin's URL is reached only at public addresses and the
   * networks the operator allows (KAIHUB_SUPPLIER_NETWORKS); the operator's is trusted as it is.
   */
  baseUrlSetBy: UrlSetter;
  upstreamModel: string;
  /** The key itself is write-only; readers learn only whether one is set. */
  hasApiKey: boolean;
  /** Whether the hub can open the stored key, and under which secret key it is sealed ('none': no key). */
  credential: { state: CredentialState['state'] | 'none'; keyId: string | null };
  weight: number;
  priority: number;
  status: string;
  /** Its own concurrency cap, null when it uses the hub's default (KAIHUB_DEPLOYMENT_MAX_CONCURRENT). */
  maxConcurrent: number | null;
  /** Where it runs when not where its product says; null: the product's residency. */
  residency: string | null;
  /** The operator has seen its CSAP certificate (data policies may require it). */
  csapCertified: boolean;
  /** This replica's view (in memory, per replica): see routing/health.ts. */
  health?: DeploymentHealthView;
  /** This replica's load: calls in flight, the cap in force, calls waiting for a slot of its product. */
  load?: { inFlight: number; maxConcurrent: number; queued: number };
  createdAt: string;
  updatedAt: string;
}

const iso = (ms: unknown) => new Date(Number(ms)).toISOString();

export const SUPPLIER_COLUMNS =
  'id, name, name_en, contact_name, contact_email, website, status, created_at, updated_at';
export const PRODUCT_COLUMNS = `id, supplier_id, model, display_name, description, parameters, purposes, modality,
  context_window, CAST(price_input_micro_per_1m AS TEXT) AS price_in, CAST(price_output_micro_per_1m AS TEXT) AS price_out,
  residency, status, fallback_models, routing_strategy, price_reference, suggested_deployment, created_at, updated_at`;
export const DEPLOYMENT_COLUMNS = `id, product_id, adapter, base_url, upstream_model, api_key_sealed, weight, priority, status,
  created_at, updated_at, max_concurrent, base_url_set_by, residency, csap_certified`;

export type UrlSetter = 'operator' | 'supplier_admin';

type R = Record<string, unknown>;

export function toSupplier(r: R): Supplier {
  return {
    id: r.id as string,
    name: r.name as string,
    nameEn: (r.name_en as string | null) ?? null,
    contactName: (r.contact_name as string | null) ?? null,
    contactEmail: (r.contact_email as string | null) ?? null,
    website: (r.website as string | null) ?? null,
    status: r.status as string,
    createdAt: iso(r.created_at),
    updatedAt: iso(r.updated_at),
  };
}

/**
 * `schedule`: the product's price in force and next change (product_prices). Without it, or for a
 * product with no history row (only ever inserted by hand), the product row's own columns.
 */
export function toProduct(
  r: R,
  schedule: { inForce: PriceRow | undefined; next: PriceRow | undefined } = {
    inForce: undefined,
    next: undefined,
  },
): Product {
  const { inForce, next } = schedule;
  return {
    id: r.id as string,
    supplierId: r.supplier_id as string,
    model: r.model as string,
    displayName: r.display_name as string,
    description: (r.description as string | null) ?? null,
    parameters: r.parameters === null || r.parameters === undefined ? null : Number(r.parameters),
    purposes: JSON.parse(r.purposes as string) as string[],
    modality: r.modality as string,
    contextWindow: Number(r.context_window),
    priceInputPer1M: formatKrw(inForce ? inForce.inputMicroPer1M : BigInt(r.price_in as string)),
    priceOutputPer1M: formatKrw(inForce ? inForce.outputMicroPer1M : BigInt(r.price_out as string)),
    nextPriceChange: next ? toPriceChangeView(next) : null,
    residency: r.residency as string,
    status: r.status as string,
    fallbackModels: r.fallback_models ? (JSON.parse(r.fallback_models as string) as string[]) : [],
    routingStrategy: (r.routing_strategy as RoutingStrategy | null) ?? 'weighted',
    priceReference: r.price_reference ? (JSON.parse(r.price_reference as string) as PriceReference) : null,
    suggestedDeployment: r.suggested_deployment
      ? (JSON.parse(r.suggested_deployment as string) as SuggestedDeployment)
      : null,
    createdAt: iso(r.created_at),
    updatedAt: iso(r.updated_at),
  };
}

export function toDeployment(r: R, inspect: (sealed: string) => CredentialState): Deployment {
  const sealed = (r.api_key_sealed as string | null | undefined) ?? null;
  return {
    id: r.id as string,
    productId: r.product_id as string,
    adapter: r.adapter as string,
    baseUrl: r.base_url as string,
    baseUrlSetBy: r.base_url_set_by as UrlSetter,
    upstreamModel: r.upstream_model as string,
    hasApiKey: sealed !== null,
    credential: sealed === null ? { state: 'none', keyId: null } : inspect(sealed),
    weight: Number(r.weight),
    priority: Number(r.priority),
    status: r.status as string,
    maxConcurrent:
      r.max_concurrent === null || r.max_concurrent === undefined ? null : Number(r.max_concurrent),
    residency: (r.residency as string | null | undefined) ?? null,
    csapCertified: Number(r.csap_certified) === 1,
    createdAt: iso(r.created_at),
    updatedAt: iso(r.updated_at),
  };
}
