import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './exit-codes.js';

export type Options = NonNullable<ParseArgsConfig['options']>;

export interface Parsed {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

/** node's parseArgs, strict, with its errors turned into UsageError (exit 64). */
export function parse(args: string[], options: Options): Parsed {
  try {
    const { values, positionals } = parseArgs({
      args,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
    return { values: values, positionals };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export function positiveInt(value: string | boolean | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (typeof value !== 'string' || !/^\d+$/.test(value) || n < 1) {
    throw new UsageError(`${name} must be a whole number of at least 1, not "${String(value)}"`);
  }
  return n;
}

export function stringOpt(value: string | boolean | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

const UNIT_MS: Record<string, number> = {
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/**
 * `--since`: a duration back from now (`90s`, `30m`, `24h`, `7d`, `2w`) or an ISO date
 * (`2025-01-31`, `2025-01-31T12:00:00Z`). Returns the instant, in ms epoch.
 */
export function sinceInstant(value: string, now: number): number {
  const duration = /^(\d+)([smhdw])$/.exec(value.trim());
  if (duration) return now - Number(duration[1]) * (UNIT_MS[duration[2] ?? 's'] ?? 1_000);
  if (/^\d{4}-\d{2}-\d{2}/.test(value)) {
    const at = Date.parse(value);
    if (Number.isFinite(at)) return at;
  }
  throw new UsageError(
    `--since must be a duration like 30m, 24h, 7d or an ISO date like 2025-01-31, not "${value}"`,
  );
}
