import type { LogLevel } from '../../src/config.ts';
import { createLogger } from '../../src/observability/logger.ts';

/** A logger exactly like the hub's own, writing its JSON lines into memory. */
export function captureLogs(level: LogLevel = 'info') {
  const lines: string[] = [];
  const logger = createLogger(level, {
    write(line: string) {
      lines.push(line);
    },
  });
  return {
    logger,
    lines,
    records: () => lines.map((l) => JSON.parse(l) as Record<string, any>),
    text: () => lines.join(''),
  };
}
