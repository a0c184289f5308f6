import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

/** The Redis the shared-limits suites use (test/redis/*; scripts/test.mjs runs them when it is up). */
export const TEST_REDIS_URL = process.env.KAIHUB_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A key prefix of its own, so that suites running at once on one Redis never meet. */
export function testRedisPrefix(): string {
  return `kaihub-test-${randomBytes(5).toString('hex')}:`;
}

/** Deletes every key under `prefix`. */
export async function dropRedisPrefix(prefix: string): Promise<void> {
  const redis = new Redis(TEST_REDIS_URL);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}
