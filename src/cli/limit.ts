import { readUserLimits, writeLimitOverride } from '../adapters/firestore/limit-override.js';
import { parseLimitSetting, userIdProblem, type UserLimits } from '../jobs/user-limits.js';
import { stringOpt } from './args.js';
import type { Command } from './command.js';
import { configOf, openSession } from './context.js';
import { EXIT, UsageError } from './exit-codes.js';

/**
 * A limit option: a whole number from 0 (no limit) to the limit's maximum, or `default` to
 * drop the override (the rule the console applies too: user-limits.ts).
 */
export function limitOpt(
  value: string | boolean | undefined,
  name: string,
  key: keyof UserLimits,
): number | 'default' | undefined {
  const text = stringOpt(value);
  if (text === undefined) return undefined;
  const parsed = parseLimitSetting(text, key, name);
  if ('problem' in parsed) throw new UsageError(parsed.problem);
  return parsed.value;
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
    const problem = userIdProblem(userId);
    if (problem) throw new UsageError(problem);
    const daily = limitOpt(values.daily, '--daily', 'dailyJobs');
    const active = limitOpt(values.active, '--active', 'maxActive');
    const config = configOf(io);
    const session = openSession(io, config);
    const now = io.now?.() ?? Date.now();
    try {
      if (daily !== undefined || active !== undefined) {
        await writeLimitOverride(
          session.db,
          userId,
          {
            ...(daily === undefined ? {} : { dailyJobs: daily }),
            ...(active === undefined ? {} : { maxActive: active }),
          },
          now,
        );
      }
      const view = await readUserLimits(
        session.db,
        userId,
        { dailyJobs: config.users.dailyJobLimit, maxActive: config.users.maxActive },
        now,
      );
      const show = (n: number) => (n === 0 ? 'no limit' : String(n));
      const source = (key: keyof UserLimits) =>
        view.override[key] === undefined ? 'configured' : 'override';
      io.out(`user            ${userId}`);
      io.out(`daily jobs      ${show(view.limits.dailyJobs)} (${source('dailyJobs')})`);
      io.out(`jobs at once    ${show(view.limits.maxActive)} (${source('maxActive')})`);
      io.out(
        `today (${view.day} UTC): ${view.today.jobs} jobs counted, ${view.today.credits} credits`,
      );
    } finally {
      await session.close();
    }
    return EXIT.OK;
  },
};
