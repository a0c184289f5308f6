import type { Redis } from 'ioredis';
import type { Logger } from '../observability/logger.ts';
import type { Script } from './redis-scripts.ts';

/**
 * A Redis connection for the request path: every command has a short timeout and none waits in a
 * queue while the connection is down (it fails at once), so a slow or absent Redis costs a request at
 * most `commandTimeoutMs`, never an unbounded wait. Reconnection goes on in the background. The client
 * is loaded only here: a hub without REDIS_URL never loads it (≈ 10 MB of resident memory).
 */
export async function connectRedis(url: string, commandTimeoutMs: number, logger: Logger): Promise<Redis> {
  const { Redis } = await import('ioredis');
  const redis = new Redis(url, {
    commandTimeout: commandTimeoutMs,
    connectTimeout: Math.max(1000, commandTimeoutMs),
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    lazyConnect: true,
    retryStrategy: (times) => Math.min(100 * 2 ** times, 2000),
  });
  let down = false;
  redis.on('error', (error: Error) => {
    // ioredis repeats the error on every reconnection attempt: one line when it goes, one when it is back
    if (!down)
      logger.error({ err: error }, 'Redis unreachable: prepaid calls are refused (503) until it is back');
    down = true;
  });
  redis.on('ready', () => {
    if (down) logger.warn('Redis reachable again');
    down = false;
  });
  return redis;
}

/** Waits for the first connection, at most `ms`; a hub starts without Redis and keeps trying. */
export async function firstConnection(redis: Redis, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      redis.connect(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('timeout')), ms);
      }),
    ]);
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/** EVALSHA, and EVAL once when the server does not know the script yet (a restart, a new server). */
export async function runScript(
  redis: Redis,
  script: Script,
  keys: readonly string[],
  args: readonly (string | number)[],
): Promise<unknown> {
  try {
    return await redis.evalsha(script.sha, keys.length, ...keys, ...args);
  } catch (error) {
    if (error instanceof Error && error.message.startsWith('NOSCRIPT'))
      return redis.eval(script.lua, keys.length, ...keys, ...args);
    throw error;
  }
}
