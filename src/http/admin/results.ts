import type { AdminResult } from './router.ts';

/** The three answers most admin routes give. */
export const ok = (body: unknown): AdminResult => ({ status: 200, body });
export const created = (body: unknown): AdminResult => ({ status: 201, body });
export const list = (data: unknown[]): AdminResult => ({ status: 200, body: { data } });
