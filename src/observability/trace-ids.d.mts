export interface IdGenerator {
  /** 32 lowercase hex characters, not all zeros. */
  traceId(): string;
  /** 16 lowercase hex characters, not all zeros. */
  spanId(): string;
}

export function createIdGenerator(fill?: (buffer: Buffer) => unknown): IdGenerator;
export const newTraceId: () => string;
export const newSpanId: () => string;
