import pino from 'pino';
import type { LogLevel } from '../config.ts';

export type Logger = pino.Logger;

/**
 * JSON lines on stdout. Authorization headers and supplier keys are redacted wherever they appear;
 * prompt and completion text is never passed to the logger unless KAIHUB_LOG_CONTENT is on.
 */
export function createLogger(level: LogLevel): Logger {
  return pino({
    level,
    base: { service: 'kaihub' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: ['authorization', '*.authorization', 'apiKey', '*.apiKey', 'key', '*.key'],
      censor: '[redacted]',
    },
  });
}
