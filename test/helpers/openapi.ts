/**
 * Validates bodies against OpenAI's official OpenAPI spec (`<repo>/../shared/spec/openai/openapi.yaml`).
 *
 * The spec is OpenAPI 3.1 (JSON Schema 2020-12) but still carries OpenAPI 3.0 leftovers, so its schemas
 * are normalised before Ajv sees them: `nullable: true` becomes a union with null, boolean
 * `exclusiveMinimum`/`exclusiveMaximum` become the numeric 2020-12 form, and OpenAPI-only keywords
 * (`x-*`, `discriminator`, `example`, …) are registered as annotations Ajv ignores.
 *
 * Parsing the 3 MB YAML takes about two seconds, so the normalised schemas are cached as JSON in the OS
 * temp directory, keyed by a hash of the spec's bytes; each test process then loads them in milliseconds.
 */
import { AssertionError } from 'node:assert';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parse } from 'yaml';

export const CHAT_COMPLETION_RESPONSE = 'CreateChatCompletionResponse';
export const CHAT_COMPLETION_CHUNK = 'CreateChatCompletionStreamResponse';
export const EMBEDDING_RESPONSE = 'CreateEmbeddingResponse';
export const MODELS_LIST_RESPONSE = 'ListModelsResponse';
export const MODEL = 'Model';
export const ERROR_RESPONSE = 'ErrorResponse';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Where the spec is read from; `KAIHUB_OPENAI_SPEC` overrides it. */
export const OPENAI_SPEC_PATH =
  process.env.KAIHUB_OPENAI_SPEC ?? resolve(REPO_ROOT, '..', 'shared', 'spec', 'openai', 'openapi.yaml');

// Bump when normalise() changes so stale caches are not reused
const CACHE_FORMAT = 1;
const SPEC_ID = 'https://kaihub.invalid/openai-openapi.json';
const MAX_LISTED_ERRORS = 25;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

interface NormalisedSpec {
  schemas: JsonObject;
  annotationKeywords: string[];
  formats: string[];
}

let loaded: { ajv: Ajv2020; schemaNames: Set<string> } | undefined;
const validators = new Map<string, ValidateFunction>();

/** Throws an AssertionError listing every schema violation of `body` against `components.schemas[schemaName]`. */
export function assertMatchesSchema(schemaName: string, body: unknown): void {
  const errors = schemaErrors(schemaName, body);
  if (errors.length === 0) return;
  const shown = errors.slice(0, MAX_LISTED_ERRORS);
  const more = errors.length > shown.length ? `\n  … and ${errors.length - shown.length} more` : '';
  const bodyText = JSON.stringify(body);
  throw new AssertionError({
    message:
      `body does not match OpenAI schema ${schemaName} (${errors.length} error(s)):\n  ${shown.join('\n  ')}${more}\n` +
      `body: ${bodyText === undefined ? 'undefined' : truncate(bodyText, 2000)}`,
    actual: body,
    expected: schemaName,
    operator: 'assertMatchesSchema',
  });
}

/** The schema violations of `body`, one readable line each; empty when it matches. */
export function schemaErrors(schemaName: string, body: unknown): string[] {
  const validate = validatorFor(schemaName);
  if (validate(body)) return [];
  return (validate.errors ?? []).map(formatError);
}

/** Whether the spec defines `components.schemas[schemaName]`. */
export function hasSchema(schemaName: string): boolean {
  return load().schemaNames.has(schemaName);
}

function validatorFor(schemaName: string): ValidateFunction {
  const cached = validators.get(schemaName);
  if (cached !== undefined) return cached;
  const { ajv, schemaNames } = load();
  if (!schemaNames.has(schemaName)) {
    const lower = schemaName.toLowerCase();
    const near = [...schemaNames].filter((n) => n.toLowerCase().includes(lower)).slice(0, 10);
    throw new Error(
      `no schema '${schemaName}' in ${OPENAI_SPEC_PATH}` +
        (near.length > 0 ? `; similar: ${near.join(', ')}` : ''),
    );
  }
  const validate = ajv.getSchema(`${SPEC_ID}#/components/schemas/${escapePointer(schemaName)}`);
  if (validate === undefined) throw new Error(`could not compile schema '${schemaName}'`);
  validators.set(schemaName, validate);
  return validate;
}

function load(): { ajv: Ajv2020; schemaNames: Set<string> } {
  if (loaded !== undefined) return loaded;
  const spec = loadNormalisedSpec();
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateSchema: false });
  // Ajv already knows some (e.g. `nullable`, which normalise() has removed anyway)
  ajv.addVocabulary(spec.annotationKeywords.filter((k) => ajv.getKeyword(k) === false));
  const formats: Record<string, (v: string) => boolean> = {
    'date-time': (v) => !Number.isNaN(Date.parse(v)),
    date: (v) => /^\d{4}-\d{2}-\d{2}$/.test(v),
    uri: (v) => URL.canParse(v),
  };
  const numeric = new Set(['float', 'double', 'int32', 'int64', 'unixtime']);
  for (const name of spec.formats) {
    const validate = formats[name];
    if (validate !== undefined) ajv.addFormat(name, { type: 'string', validate });
    else if (numeric.has(name)) {
      const integer = name.startsWith('int') || name === 'unixtime';
      ajv.addFormat(name, {
        type: 'number',
        validate: (n: number) => (integer ? Number.isInteger(n) : true),
      });
    } else {
      // Formats like `binary` describe transport, not shape: accept anything rather than warn
      ajv.addFormat(name, true);
    }
  }
  ajv.addSchema({ $id: SPEC_ID, components: { schemas: spec.schemas } } as JsonObject);
  loaded = { ajv, schemaNames: new Set(Object.keys(spec.schemas)) };
  return loaded;
}

function loadNormalisedSpec(): NormalisedSpec {
  const bytes = readFileSync(OPENAI_SPEC_PATH);
  const hash = createHash('sha256').update(`${CACHE_FORMAT}\0`).update(bytes).digest('hex').slice(0, 24);
  const cacheDir = join(tmpdir(), 'kaihub-openapi-cache');
  const cacheFile = join(cacheDir, `${hash}.json`);
  try {
    return JSON.parse(readFileSync(cacheFile, 'utf8')) as NormalisedSpec;
  } catch {
    // No cache yet (or a corrupt one): parse the YAML below
  }
  const doc = parse(bytes.toString('utf8'), { maxAliasCount: -1 }) as {
    components?: { schemas?: JsonObject };
  };
  const rawSchemas = doc.components?.schemas;
  if (rawSchemas === undefined) throw new Error(`${OPENAI_SPEC_PATH} has no components.schemas`);
  const annotationKeywords = new Set(['discriminator', 'example', 'xml', 'externalDocs']);
  const formats = new Set<string>();
  const schemas: JsonObject = {};
  for (const [name, schema] of Object.entries(rawSchemas)) {
    schemas[name] = normalise(schema, annotationKeywords, formats);
  }
  const spec: NormalisedSpec = {
    schemas,
    annotationKeywords: [...annotationKeywords],
    formats: [...formats],
  };
  try {
    mkdirSync(cacheDir, { recursive: true });
    // Write then rename: parallel test processes must never read a half-written cache
    const tmp = `${cacheFile}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(spec));
    renameSync(tmp, cacheFile);
  } catch {
    // A read-only temp dir only costs speed
  }
  return spec;
}

const SCHEMA_MAP_KEYWORDS = ['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas'];
const SCHEMA_KEYWORDS = [
  'items',
  'additionalItems',
  'additionalProperties',
  'unevaluatedProperties',
  'unevaluatedItems',
  'contains',
  'propertyNames',
  'not',
  'if',
  'then',
  'else',
];
const SCHEMA_ARRAY_KEYWORDS = ['allOf', 'anyOf', 'oneOf', 'prefixItems'];

/** Rewrites one OpenAPI schema into plain JSON Schema 2020-12, walking only schema positions. */
function normalise(input: Json, annotations: Set<string>, formats: Set<string>): Json {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return input;
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(input)) {
    if (key.startsWith('x-')) annotations.add(key);
    if (SCHEMA_MAP_KEYWORDS.includes(key) && isJsonObject(value)) {
      out[key] = Object.fromEntries(
        Object.entries(value).map(([k, v]) => [k, normalise(v, annotations, formats)]),
      );
    } else if (SCHEMA_ARRAY_KEYWORDS.includes(key) && Array.isArray(value)) {
      out[key] = value.map((v) => normalise(v, annotations, formats));
    } else if (SCHEMA_KEYWORDS.includes(key)) {
      out[key] = Array.isArray(value)
        ? value.map((v) => normalise(v, annotations, formats))
        : normalise(value, annotations, formats);
    } else {
      out[key] = value;
    }
  }
  if (typeof out.format === 'string') formats.add(out.format);
  for (const [exclusive, bound] of [
    ['exclusiveMinimum', 'minimum'],
    ['exclusiveMaximum', 'maximum'],
  ] as const) {
    if (typeof out[exclusive] !== 'boolean') continue;
    if (out[exclusive] === true && typeof out[bound] === 'number') {
      out[exclusive] = out[bound];
      delete out[bound];
    } else {
      delete out[exclusive];
    }
  }
  const nullable = out.nullable;
  delete out.nullable;
  if (nullable !== true) return out;
  const composed = ['$ref', 'allOf', 'anyOf', 'oneOf', 'not', 'if'].some((k) => k in out);
  if (!composed && (typeof out.type === 'string' || Array.isArray(out.type))) {
    const types = typeof out.type === 'string' ? [out.type] : out.type;
    if (!types.includes('null')) out.type = [...types, 'null'];
    if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
    return out;
  }
  // `$ref` or a composition: null must be an alternative to the whole schema, not a sibling constraint
  return { anyOf: [out, { type: 'null' }] };
}

function isJsonObject(v: Json | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function escapePointer(segment: string): string {
  return encodeURIComponent(segment.replace(/~/g, '~0').replace(/\//g, '~1'));
}

function formatError(e: ErrorObject): string {
  const where = e.instancePath === '' ? '(root)' : e.instancePath;
  let detail = '';
  if (e.keyword === 'enum')
    detail = ` ${JSON.stringify((e.params as { allowedValues: unknown }).allowedValues)}`;
  else if (e.keyword === 'additionalProperties') {
    detail = ` '${(e.params as { additionalProperty: string }).additionalProperty}'`;
  }
  return `${where} ${e.message ?? e.keyword}${detail} (schema ${e.schemaPath})`;
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} chars)`;
}
