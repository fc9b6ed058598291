import type { Writable } from 'node:stream';
import winston from 'winston';
import { redactSecrets } from './redact.js';

export type Logger = winston.Logger;

export interface LoggerOptions {
  level: string;
  format: 'json' | 'pretty';
  /** Strings no line may contain (API key, private key): replaced as a safety net. */
  secrets: readonly string[];
  /** Where lines go; stdout by default (what Heroku and Render collect). */
  stream?: Writable;
}

/**
 * winston with one line per event: JSON objects in production (for log drains), aligned and
 * coloured lines in development. Events use stable names (`job.claimed`) as the message and
 * carry their facts as fields (characterId, stage, durationMs, code).
 */
export function createLogger(opts: LoggerOptions): Logger {
  const base = [winston.format.timestamp(), redactSecrets(opts.secrets)];
  const format =
    opts.format === 'json'
      ? winston.format.combine(...base, winston.format.json())
      : winston.format.combine(
          ...base,
          winston.format.colorize({ level: true }),
          winston.format.printf(({ timestamp, level, message, ...fields }) => {
            const rest = Object.entries(fields)
              .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
              .join(' ');
            return `${String(timestamp)} ${level.padEnd(15)} ${String(message).padEnd(24)} ${rest}`;
          }),
        );
  return winston.createLogger({
    level: opts.level,
    format,
    transports: [
      opts.stream
        ? new winston.transports.Stream({ stream: opts.stream })
        : new winston.transports.Console(),
    ],
  });
}

/** Resolves once every line written so far has reached the transport (before exit). */
export function flushLogger(logger: Logger): Promise<void> {
  return new Promise((resolve) => {
    logger.on('finish', () => resolve());
    logger.end();
  });
}
