/**
 * Errors services return across their edge. The HTTP layer maps each kind once: to OpenAI's shape on
 * /v1 and to field-named JSON on /admin/v1.
 */
export interface FieldProblem {
  field: string;
  message: string;
}

export class ValidationError extends Error {
  override name = 'ValidationError';
  constructor(readonly fields: FieldProblem[]) {
    super(fields.map((f) => `${f.field}: ${f.message}`).join('; '));
  }
  static of(field: string, message: string): ValidationError {
    return new ValidationError([{ field, message }]);
  }
}

export class NotFoundError extends Error {
  override name = 'NotFoundError';
  constructor(
    readonly entity: string,
    readonly id: string,
  ) {
    super(`${entity} ${id} not found`);
  }
}

export class ConflictError extends Error {
  override name = 'ConflictError';
  /**
   * `korean`: what the user reads first; without it the conflict is a duplicate ("이미 존재합니다"),
   * which most are.
   */
  constructor(
    readonly field: string,
    message: string,
    readonly korean?: string,
  ) {
    super(message);
  }
}

/**
 * The caller may see the thing but not do this to it (an organisation member creating a key, a
 * supplier admin editing another supplier's public product). What the caller may not even see is a
 * NotFoundError instead, so that its existence does not leak (docs/roles.md).
 */
export class ForbiddenError extends Error {
  override name = 'ForbiddenError';
}
