import { createLogger } from '../../src/observability/logger.ts';

/** A logger exactly like the hub's own, writing its JSON lines into memory. */
export function captureLogs() {
  const lines: string[] = [];
  const logger = createLogger('info', {
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
