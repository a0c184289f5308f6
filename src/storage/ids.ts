import { randomBytes } from 'node:crypto';

/**
 * `org_0mhx3k2p9a7Qk1f…`: a readable prefix that names the kind, then a time part so ids sort by
 * creation, then 80 random bits so replicas never collide without talking to each other.
 */
export function newId(prefix: string): string {
  return `${prefix}_${Date.now().toString(36).padStart(9, '0')}${randomBytes(10).toString('base64url')}`;
}
