import pino from 'pino';
import type { LogLevel } from '../config.ts';

export type Logger = pino.Logger;

/**
 * JSON lines on stdout. Authorization headers and supplier keys are redacted wherever they appear;
 * prompt and completion text is never passed to the logger unless KAIHUB_LOG_CONTENT is on.
 */
export function createLogger(level: LogLevel, destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service: 'kaihub' },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: ['authorization', '*.authorization', 'apiKey', '*.apiKey', 'key', '*.key'],
      censor: '[redacted]',
    },
  };
  // A destination lets tests (and embedders) capture exactly the lines the hub would print.
  return destination ? pino(options, destination) : pino(options);
}
