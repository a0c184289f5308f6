// Types of json-limits.mjs (plain JavaScript so that the parse workers load it without a TypeScript loader).

export declare const MAX_JSON_DEPTH: number;

export type JsonLimitCode = 'nesting_too_deep' | 'invalid_number';

export interface JsonLimitViolation {
  code: JsonLimitCode;
  /** Where, as a field path: `messages[0].content[1].weight`, `logit_bias["50256"]`. */
  path: string;
}

export declare function findJsonLimitViolation(root: unknown, maxDepth?: number): JsonLimitViolation | null;

export declare class JsonBodyFailure {
  constructor(code: 'invalid_json' | JsonLimitCode, message: string, path: string | null);
  readonly code: 'invalid_json' | JsonLimitCode;
  readonly message: string;
  /** The field path for a limit; null when the body as a whole is wrong. */
  readonly path: string | null;
}

export declare function parseJsonObjectText(
  text: string,
  maxDepth?: number,
): Record<string, unknown> | JsonBodyFailure;
