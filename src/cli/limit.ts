import { FieldValue, Timestamp } from 'firebase-admin/firestore';
import { USAGE_COLLECTION } from '../adapters/firestore/usage-docs.js';
import {
  MAX_DAILY_LIMIT,
  parseOverride,
  resolveLimits,
  usageDocId,
  utcDay,
} from '../jobs/user-limits.js';
import { stringOpt } from './args.js';
import type { Command } from './command.js';
import { configOf, openSession } from './context.js';
import { EXIT, UsageError } from './exit-codes.js';

/**
 * A limit option: a whole number from 0 (no limit) to `max`, or `default` to drop the override.
 */
export function limitOpt(
  value: string | boolean | undefined,
  name: string,
  max = Number.MAX_SAFE_INTEGER,
): number | 'default' | undefined {
  const text = stringOpt(value);
  if (text === undefined) return undefined;
  if (text === 'default') return 'default';
  if (!/^\d+$/.test(text)) {
    throw new UsageError(
      `${name} must be a whole number (0 = no limit) or "default", not "${text}"`,
    );
  }
  const n = Number(text);
  if (n > max) throw new UsageError(`${name} must be at most ${max}; for more, 0 (no limit)`);
  return n;
}

export const limit: Command = {
  name: 'limit',
  summary: "show or override one user's limits (daily jobs, jobs at once)",
  help: `Usage: showcase-worker limit <userId> [--daily N|default] [--active N|default]

Without options: the user's limits (configured, overridden) and today's usage.
With options: sets the user's override in showcaseUsage/limits-<userId> (no restart): a raised
limit applies to the user's next job, a lowered one within 10 s (workers keep an override that
long). --daily replaces USER_DAILY_JOB_LIMIT and --active USER_MAX_ACTIVE for this user; 0 means
no limit (--daily: at most 10000), "default" drops the override. An --active override applies
only while USER_MAX_ACTIVE is set (above 0) for the fleet.

Exit codes: 0 shown or set; 2 invalid configuration; 3 Firestore failed; 64 usage error.`,
  options: { daily: { type: 'string' }, active: { type: 'string' } },
  async run({ positionals, values }, io) {
    const userId = positionals[0];
    if (userId === undefined || positionals.length > 1) throw new UsageError('give one user id');
    if (userId.includes('/') || userId === '.' || userId === '..' || userId.length > 128) {
      throw new UsageError(`"${userId}" is not a valid user id`);
    }
    const daily = limitOpt(values.daily, '--daily', MAX_DAILY_LIMIT);
    const active = limitOpt(values.active, '--active');
    const config = configOf(io);
    const session = openSession(io, config);
    const now = io.now?.() ?? Date.now();
    try {
      const usage = session.db.collection(USAGE_COLLECTION);
      const ref = usage.doc(usageDocId.limits(userId));
      if (daily !== undefined || active !== undefined) {
        const field = (v: number | 'default') => (v === 'default' ? FieldValue.delete() : v);
        await ref.set(
          {
            userId,
            ...(daily === undefined ? {} : { dailyJobs: field(daily) }),
            ...(active === undefined ? {} : { maxActive: field(active) }),
            updatedAt: Timestamp.fromMillis(now),
          },
          { merge: true },
        );
      }
      const [override, today] = await Promise.all([
        ref.get(),
        usage.doc(usageDocId.daily(userId, utcDay(now))).get(),
      ]);
      const configured = {
        dailyJobs: config.users.dailyJobLimit,
        maxActive: config.users.maxActive,
      };
      const parsed = parseOverride(override.data());
      const limits = resolveLimits(configured, parsed);
      const show = (n: number) => (n === 0 ? 'no limit' : String(n));
      const source = (key: 'dailyJobs' | 'maxActive') =>
        parsed[key] === undefined ? 'configured' : 'override';
      const day = today.data() as { jobs?: number; credits?: number } | undefined;
      io.out(`user            ${userId}`);
      io.out(`daily jobs      ${show(limits.dailyJobs)} (${source('dailyJobs')})`);
      io.out(`jobs at once    ${show(limits.maxActive)} (${source('maxActive')})`);
      io.out(
        `today (${utcDay(now)} UTC): ${day?.jobs ?? 0} jobs counted, ${day?.credits ?? 0} credits`,
      );
    } finally {
      await session.close();
    }
    return EXIT.OK;
  },
};
